//! The operator's listener (`metrics_listen`): `/livez`, `/readyz`, and
//! `/metrics` scraped after known traffic, whose counts it must show, with
//! no label carrying an ODS code, an NHS number, a task id or text.
//!
//! One test in this binary: the `metrics` recorder is the process's, so a
//! second server here would add to the same counts.

// A test crate sees every dev-dependency of its package, and uses only some.
#![allow(unused_crate_dependencies)]
// Helpers outside `#[test]` functions panic on purpose too: a failure is the test's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gpc_domain::lifecycle::{Actor, Change, Party, TaskChange};
use gpc_domain::task::TaskType;
use gpc_server::{ConsumerConfig, ServerConfig};
use gpc_testkit::*;

/// The value of the sample `name{labels}` (labels in any order), if shown.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (n, rest) = series.split_once('{').unwrap_or((series, "}"));
            if n != name {
                return None;
            }
            let mut shown: Vec<(&str, &str)> = rest
                .trim_end_matches('}')
                .split(',')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap();
                    (k, v.trim_matches('"'))
                })
                .collect();
            let mut wanted = labels.to_vec();
            shown.sort_unstable();
            wanted.sort_unstable();
            (shown == wanted).then(|| value.parse().unwrap())
        })
}

async fn scrape(client: &reqwest::Client, ops: &str) -> String {
    let response = client.get(format!("{ops}/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    response.text().await.unwrap()
}

/// Waits until the sample reaches `want`, then checks it is exactly that.
async fn expect(
    client: &reqwest::Client,
    ops: &str,
    name: &str,
    labels: &[(&str, &str)],
    want: f64,
) {
    let what = format!("{name}{labels:?} = {want}");
    wait_for(PATIENCE, &what, async || {
        let text = scrape(client, ops).await;
        match sample(&text, name, labels) {
            Some(v) if v >= want => Ok(v),
            other => Err(other),
        }
    })
    .await;
    let text = scrape(client, ops).await;
    assert_eq!(sample(&text, name, labels), Some(want), "{what}\n{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_known_traffic_and_health_answers() {
    let config = ServerConfig {
        consumer: Some(ConsumerConfig::default()),
        metrics_listen: Some("127.0.0.1:0".parse().unwrap()),
        ..ServerConfig::default()
    };
    let s = TestServer::start_with(tempfile::tempdir().unwrap(), config).await;
    let ops = format!("http://{}", s.metrics_addr.expect("a metrics listener"));
    let client = reqwest::Client::new();

    let live = client.get(format!("{ops}/livez")).send().await.unwrap();
    assert_eq!(live.status(), 200);
    let ready = client.get(format!("{ops}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(ready.text().await.unwrap(), "ready\n");

    // Known traffic: two reads, a create and its repeat, a create refused,
    // a request the SSP refuses, and a task sent through the SSP.
    for _ in 0..2 {
        let (status, _, _) = send(s.get("/metadata", METADATA)).await;
        assert_eq!(status, 200);
    }
    // Refused by the header limits, before the provider runs: counted too.
    let mut crowded = s.get("/metadata", METADATA);
    for i in 0..120 {
        crowded = crowded.header(format!("x-extra-{i}"), "1");
    }
    let (status, _, _) = send(crowded).await;
    assert_eq!(status, 400);
    let order = dawes_order();
    let (status, headers, _) = send(s.post_order("GPC001", GPC001_ASID, &order)).await;
    assert_eq!(status, 201);
    let location = headers["location"].to_str().unwrap().to_owned();
    let task_id = location
        .split("/Order/")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let (status, _, _) = send(s.post_order("GPC001", GPC001_ASID, &order)).await;
    assert_eq!(status, 200, "the repeat finds the first");
    let mut bad = dawes_order();
    bad["subject"] = serde_json::json!({"reference": "Patient/nobody"});
    let (status, _, body) = send(s.post_order("GPC001", GPC001_ASID, &bad)).await;
    assert!(status >= 400, "{status} {body}");
    let refused_code = error_code(&body);
    let (status, _, body) = send(s.client.get(format!(
        "{}/ssp/{}/metadata",
        s.base,
        s.root("GPC001")
    )))
    .await;
    assert_eq!(status, 400, "{body}");
    let refusal = error_code(&body);
    let engine = s.state.engine.clone().expect("an engine");
    let sent = engine
        .send(gpc_consumer::SendRequest {
            user: gpc_consumer::Who::Sds("G11111116".into()),
            from: Some("Y00001".into()),
            patient: "9476719966".into(),
            task_type: TaskType::InformationOnly,
            text: "Secret words of the task.".into(),
            to: None,
        })
        .await
        .expect("the hub sends");
    // The received task moves from received to accepted.
    let take = TaskChange {
        change: Change::Take,
        by: Actor {
            sds_user_id: "G13579135".into(),
            name: "Dr Nichole GILBERT".into(),
            role_code: "R0260".into(),
            role_display: "General Medical Practitioner".into(),
            organisation: gpc_domain::OdsCode::parse("GPC001").unwrap(),
        },
        party: Party::Receiver,
        text: Some("A note nobody may see in a metric.".into()),
        expected_version: Some(1),
        at: jiff::Timestamp::now(),
        wire: gpc_domain::updates::Wire::outgoing(),
    };
    let changed = s
        .state
        .store
        .change_task(
            &gpc_domain::OdsCode::parse("GPC001").unwrap(),
            &task_id,
            take,
        )
        .await
        .unwrap();
    assert!(
        matches!(changed, Some(gpc_store::ChangeOutcome::Changed { .. })),
        "{changed:?}"
    );

    expect(
        &client,
        &ops,
        "gpc_deliveries_total",
        &[("outcome", "delivered")],
        1.0,
    )
    .await;
    let text = scrape(&client, &ops).await;
    let count = |name: &str, labels: &[(&str, &str)]| sample(&text, name, labels);
    let metadata = [("route", "/{ods}/DSTU2/1/metadata"), ("method", "GET")];
    assert_eq!(
        count(
            "gpc_http_requests_total",
            &[metadata[0], metadata[1], ("status", "200")]
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        count(
            "gpc_http_requests_total",
            &[metadata[0], metadata[1], ("status", "400")]
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        count("gpc_http_request_duration_seconds_count", &metadata),
        Some(3.0)
    );
    let order_route = [("route", "/{ods}/DSTU2/1/Order"), ("method", "POST")];
    // The direct create and the engine's, which came through the SSP.
    assert_eq!(
        count(
            "gpc_http_requests_total",
            &[order_route[0], order_route[1], ("status", "201")]
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        count("gpc_provider_creates_total", &[("outcome", "created")]),
        Some(2.0)
    );
    assert_eq!(
        count("gpc_provider_creates_total", &[("outcome", "duplicate")]),
        Some(1.0)
    );
    assert_eq!(
        count(
            "gpc_provider_creates_total",
            &[("outcome", refused_code.as_str())]
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        count("gpc_ssp_refusals_total", &[("code", refusal.as_str())]),
        Some(1.0)
    );
    assert_eq!(
        count("gpc_ssp_forwards_total", &[("status", "201")]),
        Some(1.0),
        "{text}"
    );
    let through_ssp = text
        .lines()
        .filter(|l| l.starts_with("gpc_http_requests_total{") && l.contains("route=\"/ssp/*\""))
        .count();
    assert!(through_ssp > 0, "{text}");
    assert_eq!(
        count(
            "gpc_task_transitions_total",
            &[("from", "received"), ("to", "accepted")]
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        count("gpc_outbox_depth", &[("kind", "task")]),
        Some(0.0),
        "{text}"
    );
    assert!(
        count("gpc_outbox_depth", &[("kind", "update")]).is_some(),
        "{text}"
    );
    // Recorded after each commit of the writer, which runs on meanwhile.
    for histogram in [
        "gpc_store_batch_size_count",
        "gpc_store_commit_duration_seconds_count",
    ] {
        assert!(count(histogram, &[]).unwrap_or(0.0) >= 1.0, "{text}");
    }
    assert!(
        text.contains("gpc_store_commit_duration_seconds_bucket{le=\"0.001\"}"),
        "{text}"
    );

    // Nothing of a patient, a task or an organisation in any label.
    for secret in [
        "GPC001",
        "R1A14",
        "Y00001",
        "9476719931",
        "9476719966",
        task_id.as_str(),
        sent.id.as_str(),
        "Secret",
        "nobody",
        "GILBERT",
    ] {
        assert!(!text.contains(secret), "{secret} in\n{text}");
    }
    s.stop().await;
}
