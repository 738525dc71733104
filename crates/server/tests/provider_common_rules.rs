//! Spec §3.1, §3.2 and §3.5: the Spine headers, interaction ids, paths,
//! verbs and the headers on every response.

// A test crate sees every dev-dependency of its package, and uses only some.
#![allow(unused_crate_dependencies)]
// Helpers outside `#[test]` functions panic on purpose too: a failure is the test's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gpc_testkit::*;

#[tokio::test]
async fn valid_metadata_request_succeeds_with_cache_headers() {
    let s = TestServer::start().await;
    let (status, headers, body) = send(s.get("/metadata", METADATA)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["resourceType"], "Conformance");
    assert_eq!(headers["cache-control"], "no-store, no-cache");
    assert_eq!(headers["expires"], "0");
    assert_eq!(headers["pragma"], "no-cache");
    assert_eq!(
        headers["content-type"],
        "application/json+fhir;charset=utf-8"
    );
}

#[tokio::test]
async fn each_missing_or_empty_header_is_bad_request() {
    let s = TestServer::start().await;
    for name in [
        "Ssp-TraceID",
        "Ssp-From",
        "Ssp-To",
        "Ssp-InteractionID",
        "Authorization",
    ] {
        let mut h = headers(
            METADATA,
            GPC001_ASID,
            &Jwt::new("organization/*.read", org_record("GPC001")).encode(),
        );
        h.remove(name);
        let url = format!("{}/metadata", s.root("GPC001"));
        expect_error(s.client.get(&url).headers(h.clone()), 400, "BAD_REQUEST").await;
        h.insert(
            reqwest::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            "".parse().unwrap(),
        );
        expect_error(s.client.get(&url).headers(h), 400, "BAD_REQUEST").await;
    }
}

#[tokio::test]
async fn header_names_are_case_insensitive_and_extra_headers_accepted() {
    let s = TestServer::start().await;
    let jwt = Jwt::new("organization/*.read", org_record("GPC001")).encode();
    let (status, _, body) = send(
        s.client
            .get(format!("{}/metadata", s.root("GPC001")))
            .header("ssp-traceid", uuid::Uuid::new_v4().to_string())
            .header("SSP-FROM", Y00001_ASID)
            .header("sSp-To", GPC001_ASID)
            .header("ssp-interactionid", METADATA)
            .header("authorization", format!("Bearer {jwt}"))
            .header("X-Something-Else", "fine"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn malformed_header_values_are_bad_request() {
    let s = TestServer::start().await;
    let url = format!("{}/metadata", s.root("GPC001"));
    let jwt = Jwt::new("organization/*.read", org_record("GPC001")).encode();
    // Each with what its diagnostics must say, so that one failure cannot
    // pass for another.
    let cases = [
        ("Ssp-TraceID", "not-a-uuid", "Ssp-TraceID must be a UUID"),
        ("Ssp-From", "20000000035X", "Ssp-From must be an ASID"),
        ("Ssp-To", "ASID-1", "Ssp-To must be an ASID"),
        // Another endpoint's ASID: this request is not for GPC001.
        (
            "Ssp-To",
            R1A14_ASID,
            "Ssp-To is not the ASID of this endpoint",
        ),
    ];
    for (name, value, said) in cases {
        let mut h = headers(METADATA, GPC001_ASID, &jwt);
        h.insert(
            reqwest::header::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
        let body = expect_error(s.client.get(&url).headers(h), 400, "BAD_REQUEST").await;
        let diagnostics = body["issue"][0]["diagnostics"].as_str().unwrap();
        assert!(diagnostics.contains(said), "{name}: {value}: {diagnostics}");
    }
}

#[tokio::test]
async fn interaction_id_must_match_path_and_verb_exactly() {
    let s = TestServer::start().await;
    let jwt = Jwt::new("organization/*.read", org_record("GPC001")).encode();
    let url = format!("{}/metadata", s.root("GPC001"));
    for id in [
        "urn:nhs:names:services:gpconnect:fhir:rest:read:metadatas",
        "URN:NHS:NAMES:SERVICES:GPCONNECT:FHIR:REST:READ:METADATA",
        "urn:nhs:names:services:gpconnect:fhir:rest:read:patient",
        "urn:nhs:names:services:gpconnect:fhir:operation:gpc.getcarerecord",
    ] {
        expect_error(
            s.client.get(&url).headers(headers(id, GPC001_ASID, &jwt)),
            400,
            "BAD_REQUEST",
        )
        .await;
    }
    // GET /Order with the create id, POST /Order with the create-appointment id.
    let order_url = format!("{}/Order", s.root("GPC001"));
    let wjwt = Jwt::new("organization/*.write", org_record("GPC001")).encode();
    expect_error(
        s.client
            .get(&order_url)
            .headers(headers(CREATE, GPC001_ASID, &wjwt)),
        400,
        "BAD_REQUEST",
    )
    .await;
    expect_error(
        s.client
            .post(&order_url)
            .headers(headers(
                "urn:nhs:names:services:gpconnect:fhir:rest:create:appointment",
                GPC001_ASID,
                &wjwt,
            ))
            .header("content-type", JSON)
            .body(dawes_order().to_string()),
        400,
        "BAD_REQUEST",
    )
    .await;
}

#[tokio::test]
async fn unknown_paths_are_404_operation_outcomes() {
    let s = TestServer::start().await;
    for path in [
        "/Orders",
        "/Metadata",
        "/metadatas",
        "/Patients",
        "/Order/1",
    ] {
        expect_error(s.get(path, METADATA), 404, "REFERENCE_NOT_FOUND").await;
    }
    // A first path segment that is no tenant, an organisation without a
    // Spine system, and a look-up at a root that receives no tasks (whose
    // metadata and task updates are served: provider_order_response.rs).
    for url in [
        format!("{}/NOPE01/DSTU2/1/metadata", s.base),
        format!("{}/X11101/DSTU2/1/Patient/1", s.base),
        format!("{}/Y12345/DSTU2/1/metadata", s.base),
        format!("{}/GPC001/DSTU2/2/metadata", s.base),
        format!("{}/", s.base),
    ] {
        let jwt = Jwt::new("organization/*.read", org_record("GPC001")).encode();
        expect_error(
            s.client
                .get(&url)
                .headers(headers(METADATA, GPC001_ASID, &jwt)),
            404,
            "REFERENCE_NOT_FOUND",
        )
        .await;
    }
}

#[tokio::test]
async fn unsupported_verbs_fail_with_operation_outcome() {
    let s = TestServer::start().await;
    let jwt = Jwt::new("organization/*.write", org_record("GPC001")).encode();
    let url = format!("{}/Order", s.root("GPC001"));
    for method in ["PATCH", "DELETE", "OPTIONS", "PUT"] {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let (status, headers, body) = send(s.client.request(m, &url).headers(headers(
            CREATE,
            GPC001_ASID,
            &jwt,
        )))
        .await;
        assert_eq!(status, 405, "{method}: {body}");
        assert_eq!(body["resourceType"], "OperationOutcome");
        assert_eq!(headers["pragma"], "no-cache");
    }
    // With an interaction id of another path, the interaction check fails first.
    let m = reqwest::Method::DELETE;
    expect_error(
        s.client
            .request(m, &url)
            .headers(headers(METADATA, GPC001_ASID, &jwt)),
        400,
        "BAD_REQUEST",
    )
    .await;
}

#[tokio::test]
async fn every_tenant_checks_its_own_asid() {
    let s = TestServer::start().await;
    let tenants = [
        ("GPC001", "200000000359"),
        ("R1A14", "200000000361"),
        ("R3B46", "200000000362"),
        ("R1A17", "200000000363"),
        ("Y00001", "200000000370"),
        ("XPH001", "200000000373"),
        ("XCM001", "200000000376"),
        ("XOA001", "200000000380"),
    ];
    for (ods, asid) in tenants {
        let jwt = Jwt::new("organization/*.read", org_record(ods)).encode();
        let url = format!("{}/metadata", s.root(ods));
        let (status, _, body) =
            send(s.client.get(&url).headers(headers(METADATA, asid, &jwt))).await;
        assert_eq!(status, 200, "{ods}: {body}");
        assert_eq!(body["url"], format!("{url}"));
        let other = if asid == GPC001_ASID {
            R1A14_ASID
        } else {
            GPC001_ASID
        };
        expect_error(
            s.client.get(&url).headers(headers(METADATA, other, &jwt)),
            400,
            "BAD_REQUEST",
        )
        .await;
    }
}

#[tokio::test]
async fn conformance_describes_the_capability() {
    let s = TestServer::start().await;
    let (status, _, c) = send(s.get("/metadata", METADATA)).await;
    assert_eq!(status, 200);
    assert_eq!(c["fhirVersion"], "1.0.2");
    assert_eq!(c["acceptUnknown"], "both");
    assert_eq!(
        c["format"],
        serde_json::json!(["application/json+fhir", "application/xml+fhir"])
    );
    assert_eq!(c["software"]["name"], "gpc-tasks");
    assert!(c["software"]["version"].is_string());
    let resources = c["rest"][0]["resource"].as_array().unwrap();
    for kind in ["Patient", "Organization", "Practitioner"] {
        let r = resources
            .iter()
            .find(|r| r["type"] == kind)
            .unwrap_or_else(|| panic!("{kind}"));
        let codes: Vec<_> = r["interaction"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["code"].as_str().unwrap())
            .collect();
        assert_eq!(codes, ["read", "search-type"]);
        assert_eq!(r["searchParam"][0]["name"], "identifier");
    }
    let order = resources.iter().find(|r| r["type"] == "Order").unwrap();
    assert_eq!(order["interaction"][0]["code"], "create");
    assert_eq!(
        order["profile"]["reference"],
        "http://fhir.nhs.net/StructureDefinition/gpconnect-task-order-1"
    );
}
