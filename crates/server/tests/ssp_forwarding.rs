//! Consumer → SSP → provider over plain HTTP: what is forwarded, and that the
//! provider's answer comes back unchanged.

// A test crate sees every dev-dependency of its package, and uses only some.
#![allow(unused_crate_dependencies)]
// Helpers outside `#[test]` functions panic on purpose too: a failure is the test's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod ssp_support;

use gpc_domain::audit::{AuditFilter, SspAuditFilter};
use gpc_server::ServerConfig;
use gpc_server::ssp::SspConfig;
use gpc_store::Store;
use gpc_testkit::*;
use ssp_support::*;

/// A server whose Spine registry lists its providers at `provider_base`.
async fn ssp_for(provider_base: &str) -> TestServer {
    let config = ServerConfig {
        ssp: SspConfig {
            provider_base: Some(provider_base.to_owned()),
            ..SspConfig::default()
        },
        ..ServerConfig::default()
    };
    TestServer::start_with(tempfile::tempdir().unwrap(), config).await
}

#[tokio::test]
async fn a_task_created_through_the_ssp_is_the_providers_answer() {
    let s = TestServer::start().await;
    let root = s.root("GPC001");
    let (status, headers, body) = send(
        client()
            .post(ssp_url(&s.base, &format!("{root}/Order")))
            .headers(hub_to_gpc001(CREATE))
            .header("content-type", JSON)
            .body(dawes_order().to_string()),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().unwrap();
    assert_eq!(body["resourceType"], "Order");
    assert_eq!(
        headers["location"],
        format!("{root}/Order/{id}/_history/1").as_str()
    );
    assert_eq!(headers["etag"], "W/\"1\"");
    assert!(headers.contains_key("last-modified"));
    assert_eq!(headers["cache-control"], "no-store, no-cache");
    assert_eq!(
        headers["content-type"],
        "application/json+fhir;charset=utf-8"
    );
    let dir = s.stop().await;

    let store = gpc_store::SqliteStore::open(dir.path()).unwrap();
    let ssp = store.ssp_audit(SspAuditFilter::default()).await.unwrap();
    assert_eq!(ssp.len(), 1, "{ssp:?}");
    let row = &ssp[0];
    assert_eq!(row.status, 201);
    assert_eq!(row.refusal, None);
    assert_eq!(row.method, "POST");
    assert_eq!(row.from_asid.as_deref(), Some(Y00001_ASID));
    assert_eq!(row.to_asid.as_deref(), Some(GPC001_ASID));
    assert_eq!(row.interaction.as_deref(), Some(CREATE));
    assert_eq!(row.target, format!("{root}/Order"));
    assert!(row.duration_us > 0);
    // The provider saw the consumer's request, not the SSP's prefix.
    let provider = store.audit(AuditFilter::default()).await.unwrap();
    assert_eq!(provider.len(), 1);
    assert_eq!(provider[0].path, "/GPC001/DSTU2/1/Order");
    assert_eq!(provider[0].task_id.as_deref(), Some(id));
    assert_eq!(provider[0].trace_id, row.trace_id);
}

/// Everything but the Date header, in order.
fn comparable(h: &reqwest::header::HeaderMap) -> Vec<(String, Vec<u8>)> {
    h.iter()
        .filter(|(n, _)| n.as_str() != "date")
        .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
        .collect()
}

#[tokio::test]
async fn look_ups_through_the_ssp_match_direct_answers_byte_for_byte() {
    let s = TestServer::start().await;
    let root = s.root("GPC001");
    let search = format!("/Patient?identifier={NHS_SYSTEM}|9476719931");
    for (path, interaction, encoding) in [
        ("/metadata", METADATA, None),
        ("/metadata", METADATA, Some("gzip")),
        ("/Patient/2", READ_PATIENT, None),
        ("/Patient/999", READ_PATIENT, None),
    ] {
        let headers = hub_to_gpc001(interaction);
        let with_encoding = |req: reqwest::RequestBuilder| match encoding {
            Some(e) => req.header("accept-encoding", e),
            None => req,
        };
        let direct = with_encoding(
            client()
                .get(format!("{root}{path}"))
                .headers(headers.clone()),
        )
        .send()
        .await
        .unwrap();
        let proxied = with_encoding(
            client()
                .get(ssp_url(&s.base, &format!("{root}{path}")))
                .headers(headers),
        )
        .send()
        .await
        .unwrap();
        assert_eq!(proxied.status(), direct.status(), "{path}");
        assert_eq!(
            comparable(proxied.headers()),
            comparable(direct.headers()),
            "{path} {encoding:?}"
        );
        let (direct, proxied) = (
            direct.bytes().await.unwrap(),
            proxied.bytes().await.unwrap(),
        );
        assert!(!proxied.is_empty());
        assert_eq!(proxied, direct, "{path} {encoding:?}");
    }
    // A search answer has a fresh id each time, so only its status is compared.
    let (status, _, bundle) = send(
        client()
            .get(ssp_url(&s.base, &format!("{root}{search}")))
            .headers(hub_to_gpc001(SEARCH_PATIENT)),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(bundle["total"], 1);
    let dir = s.stop().await;
    let store = gpc_store::SqliteStore::open(dir.path()).unwrap();
    let rows = store.ssp_audit(SspAuditFilter::default()).await.unwrap();
    assert_eq!(rows.len(), 5);
    for row in rows {
        // Queries (which can hold NHS numbers) are never stored.
        assert!(!row.target.contains('?'), "{}", row.target);
        assert!(!row.target.contains("9476719931"), "{}", row.target);
    }
}

#[tokio::test]
async fn the_providers_answer_is_passed_back_unchanged() {
    let body: Vec<u8> = [
        &b"<Bundle xmlns=\"http://hl7.org/fhir\"/>"[..],
        &[0xff, 0x00, 0xfe],
    ]
    .concat();
    let mut answer = format!(
        "HTTP/1.1 422 Unprocessable Entity\r\n\
         Content-Type: application/xml+fhir;charset=utf-8\r\n\
         X-Custom: a\r\n\
         X-Custom: b\r\n\
         ETag: W/\"7\"\r\n\
         Cache-Control: no-store, no-cache\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    answer.extend_from_slice(&body);
    let provider = FakeProvider::start(answer).await;
    let s = ssp_for(&provider.base).await;
    let target = format!("{}/GPC001/DSTU2/1/metadata", provider.base);
    let response = client()
        .get(ssp_url(&s.base, &target))
        .headers(hub_to_gpc001(METADATA))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    let h = response.headers();
    let custom: Vec<&str> = h
        .get_all("x-custom")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(custom, ["a", "b"]);
    assert_eq!(h["content-type"], "application/xml+fhir;charset=utf-8");
    assert_eq!(h["etag"], "W/\"7\"");
    assert_eq!(h["cache-control"], "no-store, no-cache");
    assert_eq!(h["content-length"], body.len().to_string().as_str());
    assert_eq!(response.bytes().await.unwrap(), body);
}

#[tokio::test]
async fn method_path_query_and_body_are_forwarded() {
    let provider =
        FakeProvider::start(b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok".to_vec()).await;
    let s = ssp_for(&provider.base).await;
    let body = dawes_order().to_string();
    let target = format!("{}/GPC001/DSTU2/1/Order", provider.base);
    let response = client()
        .post(format!("{}?_format=json", ssp_url(&s.base, &target)))
        .headers(hub_to_gpc001(CREATE))
        .header("content-type", JSON)
        .header("x-end-to-end", "kept")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    assert_eq!(response.bytes().await.unwrap(), "ok");
    let received = provider.received().await;
    assert_eq!(received.len(), 1);
    let request = &received[0];
    assert!(
        request.starts_with("POST /GPC001/DSTU2/1/Order?_format=json HTTP/1.1\r\n"),
        "{request}"
    );
    let lower = request.to_ascii_lowercase();
    assert!(lower.contains(&format!("host: {}\r\n", authority(&provider.base))));
    assert!(lower.contains(&format!("content-length: {}\r\n", body.len())));
    assert!(lower.contains("content-type: application/json+fhir\r\n"));
    assert!(lower.contains("x-end-to-end: kept\r\n"));
    assert!(lower.contains(&format!("ssp-from: {Y00001_ASID}\r\n")));
    assert!(lower.contains("authorization: bearer "));
    assert!(request.ends_with(&format!("\r\n\r\n{body}")), "{request}");

    // A GET carries no body, and other verbs go through as they are.
    for method in [
        reqwest::Method::GET,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
    ] {
        let target = format!("{}/GPC001/DSTU2/1/Order/1", provider.base);
        let response = client()
            .request(method.clone(), ssp_url(&s.base, &target))
            .headers(hub_to_gpc001(CREATE))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "{method}");
    }
    let received = provider.received().await;
    assert!(received[1].starts_with("GET /GPC001/DSTU2/1/Order/1 HTTP/1.1\r\n"));
    assert!(
        !received[1]
            .to_ascii_lowercase()
            .contains("transfer-encoding")
    );
    assert!(received[2].starts_with("PUT /GPC001/DSTU2/1/Order/1 HTTP/1.1\r\n"));
    assert!(received[3].starts_with("DELETE /GPC001/DSTU2/1/Order/1 HTTP/1.1\r\n"));
}

#[tokio::test]
async fn hop_by_hop_headers_are_removed_both_ways() {
    let answer = b"HTTP/1.1 200 OK\r\n\
        Connection: X-Provider-Hop\r\n\
        X-Provider-Hop: secret\r\n\
        Keep-Alive: timeout=5\r\n\
        Proxy-Authenticate: Basic realm=\"p\"\r\n\
        X-End-To-End: kept\r\n\
        Content-Type: application/json+fhir;charset=utf-8\r\n\
        Transfer-Encoding: chunked\r\n\r\n\
        5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
        .to_vec();
    let provider = FakeProvider::start(answer).await;
    let s = ssp_for(&provider.base).await;
    let target = format!("{}/GPC001/DSTU2/1/metadata", provider.base);
    let head = format!(
        "GET /ssp/{target} HTTP/1.1\r\n\
         Host: {}\r\n\
         {}\r\n\
         Connection: X-Consumer-Hop\r\n\
         X-Consumer-Hop: secret\r\n\
         Keep-Alive: timeout=300\r\n\
         Proxy-Authorization: Basic eA==\r\n\
         Proxy-Connection: keep-alive\r\n\
         TE: trailers\r\n\
         Upgrade: example/1\r\n\
         X-End-To-End: kept",
        authority(&s.base),
        header_lines(&hub_to_gpc001(METADATA)),
    );
    let answer = raw_request(authority(&s.base), &head, b"").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, b"hello world");
    assert_eq!(answer.header("x-end-to-end"), Some("kept"));
    for gone in ["x-provider-hop", "keep-alive", "proxy-authenticate"] {
        assert_eq!(answer.header(gone), None, "{gone}");
    }
    let received = provider.received().await;
    let request = received[0].to_ascii_lowercase();
    for gone in [
        "x-consumer-hop",
        "keep-alive",
        "proxy-authorization",
        "proxy-connection",
        "te:",
        "upgrade",
        "connection: close",
    ] {
        assert!(!request.contains(gone), "{gone} forwarded: {request}");
    }
    assert!(request.contains("x-end-to-end: kept\r\n"));
    assert!(request.contains(&format!("host: {}\r\n", authority(&provider.base))));
    assert!(!request.contains(&format!("host: {}\r\n", authority(&s.base))));
}

#[tokio::test]
async fn redirects_from_the_provider_are_passed_back_not_followed() {
    let decoy = Decoy::start().await;
    let answer = format!(
        "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:{}/elsewhere\r\nContent-Length: 0\r\n\r\n",
        decoy.port
    );
    let provider = FakeProvider::start(answer.into_bytes()).await;
    let s = ssp_for(&provider.base).await;
    let target = format!("{}/GPC001/DSTU2/1/metadata", provider.base);
    let response = client()
        .get(ssp_url(&s.base, &target))
        .headers(hub_to_gpc001(METADATA))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 302);
    assert_eq!(
        response.headers()["location"],
        format!("http://127.0.0.1:{}/elsewhere", decoy.port).as_str()
    );
    assert_eq!(provider.received().await.len(), 1);
    assert_eq!(decoy.settled_hits().await, 0, "the redirect was followed");
}

#[tokio::test]
async fn a_search_for_an_invalid_nhs_number_gets_the_providers_answer_through_the_ssp() {
    // The token's requested_record carries the same invalid number: the SSP
    // checks the requesting organisation, not the record, so it forwards,
    // and the provider's INVALID_NHS_NUMBER comes back.
    let s = TestServer::start().await;
    let root = s.root("GPC001");
    let mut h = hub_to_gpc001(SEARCH_PATIENT);
    let jwt = Jwt::new("patient/*.read", patient_record("9000000184")).encode();
    h.insert("authorization", format!("Bearer {jwt}").parse().unwrap());
    let target = format!("{root}/Patient?identifier={NHS_SYSTEM}|9000000184");
    expect_error(
        client().get(ssp_url(&s.base, &target)).headers(h),
        400,
        "INVALID_NHS_NUMBER",
    )
    .await;
}
