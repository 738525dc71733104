//! Every refusal of the SSP (spec §7), in order, with its status, code and
//! diagnostics, and the audit row each request leaves.

// A test crate sees every dev-dependency of its package, and uses only some.
#![allow(unused_crate_dependencies)]
// Helpers outside `#[test]` functions panic on purpose too: a failure is the test's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod ssp_support;

use gpc_domain::audit::SspAuditFilter;
use gpc_server::ServerConfig;
use gpc_server::ssp::SspConfig;
use gpc_store::Store;
use gpc_testkit::*;
use reqwest::header::{HeaderMap, HeaderValue};
use ssp_support::*;
use std::time::{Duration, Instant};

fn with(mut h: HeaderMap, name: &'static str, value: &str) -> HeaderMap {
    h.insert(name, HeaderValue::from_str(value).unwrap());
    h
}

fn without(mut h: HeaderMap, name: &str) -> HeaderMap {
    h.remove(name);
    h
}

#[tokio::test]
async fn malformed_spine_headers_are_refused() {
    let s = TestServer::start().await;
    let target = ssp_url(&s.base, &format!("{}/metadata", s.root("GPC001")));
    let good = hub_to_gpc001(METADATA);
    let cases = [
        without(good.clone(), "ssp-traceid"),
        without(good.clone(), "ssp-from"),
        without(good.clone(), "ssp-to"),
        without(good.clone(), "ssp-interactionid"),
        with(good.clone(), "ssp-traceid", " "),
        with(good.clone(), "ssp-traceid", "not-a-uuid"),
        with(good.clone(), "ssp-from", "20000000037O"),
        with(good.clone(), "ssp-to", "-200000000359"),
        with(good.clone(), "ssp-interactionid", "read:metadata"),
    ];
    for headers in cases {
        expect_refusal(
            client().get(&target).headers(headers.clone()),
            400,
            "MISSING_OR_INVALID_HEADER",
            "invalid",
        )
        .await;
    }
    // The same headers, untouched, go through.
    let (status, _, _) = send(client().get(&target).headers(good)).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn unregistered_systems_are_refused() {
    let s = TestServer::start().await;
    let target = ssp_url(&s.base, &format!("{}/metadata", s.root("GPC001")));
    let body = expect_refusal(
        client()
            .get(&target)
            .headers(with(hub_to_gpc001(METADATA), "ssp-from", UNREGISTERED_ASID)),
        403,
        "ASID_CHECK_FAILED_MESSAGESENDER",
        "forbidden",
    )
    .await;
    assert!(
        body["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains(UNREGISTERED_ASID)
    );
    expect_refusal(
        client()
            .get(&target)
            .headers(with(hub_to_gpc001(METADATA), "ssp-to", UNREGISTERED_ASID)),
        403,
        "ASID_CHECK_FAILED_MESSAGERECEIVER",
        "forbidden",
    )
    .await;
}

#[tokio::test]
async fn the_jwt_organisation_must_own_the_sending_system() {
    let s = TestServer::start().await;
    let target = ssp_url(&s.base, &format!("{}/metadata", s.root("GPC001")));
    // Y00001's token, sent as if from R1A14's system.
    let as_r1a14 = with(hub_to_gpc001(METADATA), "ssp-from", R1A14_ASID);
    expect_refusal(
        client().get(&target).headers(as_r1a14),
        403,
        "ORGANISATION_CHECK_FAILED",
        "forbidden",
    )
    .await;
    // R1A14's token from Y00001's system.
    let headers = spine_headers(METADATA, "R1A14", Y00001_ASID, "GPC001", GPC001_ASID);
    expect_refusal(
        client().get(&target).headers(headers),
        403,
        "ORGANISATION_CHECK_FAILED",
        "forbidden",
    )
    .await;
    // No token, or one that cannot be read: nothing to check against.
    for headers in [
        without(hub_to_gpc001(METADATA), "authorization"),
        with(hub_to_gpc001(METADATA), "authorization", "Bearer x.y.z"),
    ] {
        expect_refusal(
            client().get(&target).headers(headers),
            403,
            "ORGANISATION_CHECK_FAILED",
            "forbidden",
        )
        .await;
    }
}

#[tokio::test]
async fn the_target_must_be_under_the_receivers_endpoint() {
    let s = TestServer::start().await;
    // GPC001's ASID, R1A14's endpoint.
    let other = ssp_url(&s.base, &format!("{}/metadata", s.root("R1A14")));
    expect_refusal(
        client().get(&other).headers(hub_to_gpc001(METADATA)),
        400,
        "ENDPOINT_VARIES_FROM_TARGETURL",
        "invalid",
    )
    .await;
    // A system that receives no tasks has an endpoint too (for task
    // updates, task-lifecycle.md §2), and a target outside it is refused.
    let headers = spine_headers(METADATA, "Y00001", Y00001_ASID, "X11101", X11101_ASID);
    let elsewhere = ssp_url(&s.base, &format!("{}/metadata", s.root("GPC001")));
    expect_refusal(
        client().get(&elsewhere).headers(headers.clone()),
        400,
        "ENDPOINT_VARIES_FROM_TARGETURL",
        "invalid",
    )
    .await;
    let own = ssp_url(&s.base, &format!("{}/metadata", s.root("X11101")));
    let (status, _, body) = send(client().get(&own).headers(headers)).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn xoa001_has_no_task_agreement_either_way_but_look_ups_are_open() {
    let s = TestServer::start().await;
    // Y00001 → XOA001: a task is refused, a look-up goes through.
    let to_xoa =
        |interaction| spine_headers(interaction, "Y00001", Y00001_ASID, "XOA001", XOA001_ASID);
    let order = order("15", "5", "12", "2", "Please call the patient.");
    let body = expect_refusal(
        client()
            .post(ssp_url(&s.base, &format!("{}/Order", s.root("XOA001"))))
            .headers(to_xoa(CREATE))
            .header("content-type", JSON)
            .body(order.to_string()),
        403,
        "FOT_CHECK_FAILED",
        "forbidden",
    )
    .await;
    assert!(
        body["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("sharing agreement")
    );
    let (status, _, conformance) = send(
        client()
            .get(ssp_url(&s.base, &format!("{}/metadata", s.root("XOA001"))))
            .headers(to_xoa(METADATA)),
    )
    .await;
    assert_eq!(status, 200, "{conformance}");
    assert_eq!(conformance["resourceType"], "Conformance");

    // XOA001 → GPC001: the same.
    let from_xoa =
        |interaction| spine_headers(interaction, "XOA001", XOA001_ASID, "GPC001", GPC001_ASID);
    expect_refusal(
        client()
            .post(ssp_url(&s.base, &format!("{}/Order", s.root("GPC001"))))
            .headers(from_xoa(CREATE))
            .header("content-type", JSON)
            .body(dawes_order().to_string()),
        403,
        "FOT_CHECK_FAILED",
        "forbidden",
    )
    .await;
    let (status, _, _) = send(
        client()
            .get(ssp_url(&s.base, &format!("{}/metadata", s.root("GPC001"))))
            .headers(from_xoa(METADATA)),
    )
    .await;
    assert_eq!(status, 200);

    // No task reached either inbox.
    let dir = s.stop().await;
    let store = gpc_store::SqliteStore::open(dir.path()).unwrap();
    assert_eq!(
        store
            .count_tasks(&gpc_domain::OdsCode::parse("XOA001").unwrap())
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .count_tasks(&gpc_domain::OdsCode::parse("GPC001").unwrap())
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn interactions_no_system_is_registered_for_are_refused() {
    let s = TestServer::start().await;
    let target = ssp_url(&s.base, &format!("{}/Appointment", s.root("GPC001")));
    let headers = with(
        hub_to_gpc001(METADATA),
        "ssp-interactionid",
        "urn:nhs:names:services:gpconnect:fhir:rest:create:appointment",
    );
    expect_refusal(
        client().post(&target).headers(headers),
        403,
        "FOT_CHECK_FAILED",
        "forbidden",
    )
    .await;
}

#[tokio::test]
async fn verbs_other_than_get_post_put_delete_are_refused() {
    let s = TestServer::start().await;
    let target = ssp_url(&s.base, &format!("{}/metadata", s.root("GPC001")));
    for method in ["PATCH", "OPTIONS", "HEAD", "TRACE"] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let (status, headers, body) = send(
            client()
                .request(method.clone(), &target)
                .headers(hub_to_gpc001(METADATA)),
        )
        .await;
        assert_eq!(status, 405, "{method}");
        assert_eq!(headers["allow"], "GET, POST, PUT, DELETE");
        if method != reqwest::Method::HEAD {
            check_refusal(
                status,
                &headers,
                &body,
                405,
                "METHOD_NOT_ALLOWED",
                "not-supported",
            );
        }
    }
}

/// One request failing every check; fixing them one at a time shows each
/// check in the order of spec §7.
#[tokio::test]
async fn checks_run_in_the_order_of_the_spec() {
    let s = TestServer::start().await;
    let good_target = ssp_url(&s.base, &format!("{}/Order", s.root("GPC001")));
    let bad_target = ssp_url(&s.base, &format!("{}/Order", s.root("R1A14")));
    // A task from XOA001's system needs an agreement it does not have.
    let xoa = spine_headers(CREATE, "XOA001", XOA001_ASID, "GPC001", GPC001_ASID);
    let steps: [(HeaderMap, &str, reqwest::Method, &str, u16); 7] = [
        (
            without(
                with(xoa.clone(), "ssp-from", UNREGISTERED_ASID),
                "ssp-traceid",
            ),
            bad_target.as_str(),
            reqwest::Method::PATCH,
            "MISSING_OR_INVALID_HEADER",
            400,
        ),
        (
            with(
                with(xoa.clone(), "ssp-from", UNREGISTERED_ASID),
                "ssp-to",
                UNREGISTERED_ASID,
            ),
            bad_target.as_str(),
            reqwest::Method::PATCH,
            "ASID_CHECK_FAILED_MESSAGESENDER",
            403,
        ),
        (
            with(
                with(xoa.clone(), "ssp-from", Y00001_ASID),
                "ssp-to",
                UNREGISTERED_ASID,
            ),
            bad_target.as_str(),
            reqwest::Method::PATCH,
            "ASID_CHECK_FAILED_MESSAGERECEIVER",
            403,
        ),
        (
            with(xoa.clone(), "ssp-from", Y00001_ASID),
            bad_target.as_str(),
            reqwest::Method::PATCH,
            "ORGANISATION_CHECK_FAILED",
            403,
        ),
        (
            xoa.clone(),
            bad_target.as_str(),
            reqwest::Method::PATCH,
            "ENDPOINT_VARIES_FROM_TARGETURL",
            400,
        ),
        (
            xoa.clone(),
            good_target.as_str(),
            reqwest::Method::PATCH,
            "FOT_CHECK_FAILED",
            403,
        ),
        (
            hub_to_gpc001(CREATE),
            good_target.as_str(),
            reqwest::Method::PATCH,
            "METHOD_NOT_ALLOWED",
            405,
        ),
    ];
    for (headers, target, method, code, status) in steps {
        let (got, _, body) = send(client().request(method, target).headers(headers)).await;
        assert_eq!((got, error_code(&body).as_str()), (status, code), "{body}");
    }
}

#[tokio::test]
async fn an_unreachable_provider_is_a_502() {
    let port = closed_port().await;
    let base = format!("http://127.0.0.1:{port}");
    let config = ServerConfig {
        ssp: SspConfig {
            provider_base: Some(base.clone()),
            ..SspConfig::default()
        },
        ..ServerConfig::default()
    };
    let s = TestServer::start_with(tempfile::tempdir().unwrap(), config).await;
    let target = ssp_url(&s.base, &format!("{base}/GPC001/DSTU2/1/metadata"));
    expect_refusal(
        client().get(&target).headers(hub_to_gpc001(METADATA)),
        502,
        "ERROR_COMMUNICATING_TO_ENDPOINT",
        "transient",
    )
    .await;
}

#[tokio::test]
async fn a_provider_that_never_answers_is_a_504_within_the_timeout() {
    let decoy = Decoy::start().await;
    let base = format!("http://127.0.0.1:{}", decoy.port);
    let timeout = Duration::from_millis(300);
    let config = ServerConfig {
        ssp: SspConfig {
            provider_base: Some(base.clone()),
            timeout,
            ..SspConfig::default()
        },
        ..ServerConfig::default()
    };
    let s = TestServer::start_with(tempfile::tempdir().unwrap(), config).await;
    let target = ssp_url(&s.base, &format!("{base}/GPC001/DSTU2/1/Order"));
    let started = Instant::now();
    expect_refusal(
        client()
            .post(&target)
            .headers(hub_to_gpc001(CREATE))
            .header("content-type", JSON)
            .body(dawes_order().to_string()),
        504,
        "ENDPOINT_TIMEOUT",
        "transient",
    )
    .await;
    let took = started.elapsed();
    assert!(took >= timeout, "{took:?}");
    // The decoy holds the connection for 60 s: well before that, however
    // busy the machine, the SSP has given up on its own.
    assert!(took < Duration::from_secs(30), "{took:?}");
    assert_eq!(decoy.settled_hits().await, 1);
}

#[tokio::test]
async fn every_request_leaves_an_audit_row() {
    let s = TestServer::start().await;
    let target = format!("{}/metadata", s.root("GPC001"));
    let ok = hub_to_gpc001(METADATA);
    send(client().get(ssp_url(&s.base, &target)).headers(ok.clone())).await;
    let refused = with(ok.clone(), "ssp-from", UNREGISTERED_ASID);
    send(client().get(ssp_url(&s.base, &target)).headers(refused)).await;
    let no_trace = without(ok.clone(), "ssp-traceid");
    send(
        client()
            .get(format!(
                "{}?identifier={NHS_SYSTEM}|9476719931",
                ssp_url(&s.base, &target)
            ))
            .headers(no_trace),
    )
    .await;
    let dir = s.stop().await;

    let store = gpc_store::SqliteStore::open(dir.path()).unwrap();
    let rows = store.ssp_audit(SspAuditFilter::default()).await.unwrap();
    assert_eq!(rows.len(), 3, "{rows:?}");
    let (missing, sender, forwarded) = (&rows[0], &rows[1], &rows[2]);
    assert_eq!(forwarded.status, 200);
    assert_eq!(forwarded.refusal, None);
    assert_eq!(
        forwarded.trace_id.as_deref(),
        ok["ssp-traceid"].to_str().ok()
    );
    assert_eq!(forwarded.target, target);
    assert_eq!(forwarded.interaction.as_deref(), Some(METADATA));
    assert_eq!(sender.status, 403);
    assert_eq!(
        sender.refusal.as_deref(),
        Some("ASID_CHECK_FAILED_MESSAGESENDER")
    );
    assert_eq!(sender.from_asid.as_deref(), Some(UNREGISTERED_ASID));
    assert_eq!(missing.status, 400);
    assert_eq!(
        missing.refusal.as_deref(),
        Some("MISSING_OR_INVALID_HEADER")
    );
    assert_eq!(missing.trace_id, None);
    // The query, with its NHS number, is not kept.
    assert_eq!(missing.target, target);
    for row in &rows {
        assert_eq!(row.method, "GET");
        assert_eq!(row.to_asid.as_deref(), Some(GPC001_ASID));
    }
}
