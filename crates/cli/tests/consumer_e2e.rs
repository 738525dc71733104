//! Spec §10 end to end: `gpc-tasks send` against real running servers (the
//! SSP and directory in one, the provider apart where it must go down or
//! answer too slowly), for every scenario of the capability.

// A test crate sees every dev-dependency of its package, and uses only some.
#![allow(unused_crate_dependencies)]
// Helpers outside `#[test]` functions panic on purpose too: a failure is the test's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gpc_domain::audit::SspAuditFilter;
use gpc_server::ServerConfig;
use gpc_store::{SqliteStore, Store};
use gpc_testkit::{DelayProxy, TestServer};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_gpc-tasks");

/// Runs a consumer command against `server`, with short retry delays.
fn consumer(args: &[&str], server: &str, data_dir: &Path, extra_env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env("GPC_SERVER", server)
        .env("GPC_RETRY_DELAYS_MS", "100,200,300")
        .env("GPC_REQUEST_TIMEOUT_MS", "5000")
        .env("RUST_LOG", "warn");
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    // The servers run on this test's runtime: let them keep running while
    // this thread waits for the child.
    tokio::task::block_in_place(|| cmd.output().expect("gpc-tasks runs"))
}

fn send(
    server: &str,
    data_dir: &Path,
    user: &str,
    nhs: &str,
    kind: &str,
    to: Option<&str>,
) -> Output {
    let mut args = vec![
        "send",
        "--as",
        user,
        "--patient",
        nhs,
        "--type",
        kind,
        "--text",
        "Please review the medication.",
    ];
    if let Some(to) = to {
        args.extend(["--to", to]);
    }
    consumer(&args, server, data_dir, &[])
}

fn text(out: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The sent tasks of an organisation, newest first, as the CLI reports them.
fn sent(data_dir: &Path, from: &str) -> Vec<Value> {
    let out = consumer(
        &["sent", "--from", from, "--json"],
        "http://127.0.0.1:1",
        data_dir,
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

async fn inbox(provider_dir: &Path, ods: &str) -> Vec<gpc_domain::task::ReceivedTask> {
    let store = SqliteStore::open(provider_dir).unwrap();
    let ods = gpc_domain::OdsCode::parse(ods).unwrap();
    store.inbox(&ods, 100, None).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_care_setting_reaches_the_registered_practice() {
    let s = TestServer::start().await;
    let c = tempfile::tempdir().unwrap();
    // (user, setting, patient, recipient, type)
    let scenarios = [
        (
            "G13579135",
            "GP practice to its hub",
            "9476719931",
            Some("Y00001"),
            "Y00001",
            "action",
        ),
        (
            "G11111116",
            "hub to the patient's own practice",
            "9476719966",
            None,
            "R1A14",
            "action",
        ),
        ("G30000001", "111", "9476719915", None, "GPC001", "info"),
        ("G30000002", "A&E", "9476718870", None, "R1A14", "action"),
        ("G30000003", "physio", "9476718889", None, "R1A17", "info"),
        ("G30000004", "acute", "9476719923", None, "R1A14", "action"),
        (
            "G30000005",
            "social care",
            "9476719958",
            None,
            "GPC001",
            "info",
        ),
        (
            "G30000006",
            "community",
            "9476718919",
            None,
            "R1A17",
            "action",
        ),
    ];
    for (user, setting, nhs, to, recipient, kind) in scenarios {
        let out = send(&s.base, c.path(), user, nhs, kind, to);
        assert_eq!(out.status.code(), Some(0), "{setting}: {}", text(&out));
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("Delivered"), "{setting}: {stdout}");
        let received = inbox(s.dir.path(), recipient).await;
        let task = received
            .iter()
            .find(|t| t.provenance.practitioner_sds_id == user)
            .unwrap_or_else(|| panic!("{setting}: not in {recipient}'s inbox"));
        assert_eq!(task.nhs_number.as_digits(), nhs, "{setting}");
        let code = if kind == "action" { "2" } else { "1" };
        assert_eq!(task.task_type.code(), code, "{setting}");
        assert_eq!(task.text, "Please review the medication.");
    }
    // The sent list shows the provider's id and one attempt.
    let hub = sent(c.path(), "Y00001");
    assert_eq!(hub.len(), 1);
    assert_eq!(hub[0]["status"], "Delivered");
    assert_eq!(hub[0]["attempts"], 1);
    assert!(hub[0]["provider_task_id"].is_string());
    assert_eq!(hub[0]["attempt_log"][0]["http_status"], 201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_reported_in_plain_words() {
    let s = TestServer::start().await;
    let c = tempfile::tempdir().unwrap();
    // TOWERS is registered at XOA001, which has no sharing agreement.
    let out = send(&s.base, c.path(), "G11111116", "9476718900", "action", None);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("No data-sharing agreement"),
        "{}",
        text(&out)
    );
    // And XOA001 cannot send either.
    let out = send(
        &s.base,
        c.path(),
        "G30000007",
        "9476719931",
        "action",
        Some("GPC001"),
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    // EAVE's NHS number is not verified.
    let out = send(&s.base, c.path(), "G11111116", "9476718927", "action", None);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("demographics are not verified"),
        "{}",
        text(&out)
    );
    // Jane SMITH's practice has no electronic route: the telephone at once.
    let out = send(&s.base, c.path(), "G11111116", "9000000009", "info", None);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("No electronic route") && stdout.contains("01632 960030"),
        "{stdout}"
    );
    let hub = sent(c.path(), "Y00001");
    let statuses: Vec<&str> = hub.iter().map(|t| t["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["No electronic route", "Rejected", "Rejected"]);
    assert_eq!(hub[0]["attempts"], 0, "no attempt for no route");
    // Nothing reached any inbox.
    for ods in ["XOA001", "R1A17", "GPC001"] {
        assert!(inbox(s.dir.path(), ods).await.is_empty(), "{ods}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_clear_message() {
    let s = TestServer::start().await;
    let c = tempfile::tempdir().unwrap();
    let cases = [
        (
            send(&s.base, c.path(), "G11111116", "9000000184", "action", None),
            "not a valid NHS number",
        ),
        (
            send(&s.base, c.path(), "G99999999", "9476719931", "action", None),
            "no user with SDS user id G99999999",
        ),
        (
            send(
                &s.base,
                c.path(),
                "G11111116",
                "9476719931",
                "action",
                Some("NOPE99"),
            ),
            "no organisation NOPE99",
        ),
        (
            send(&s.base, c.path(), "G11111116", "9999999999", "action", None),
            "no patient with NHS number 999 999 9999",
        ),
        (
            send(&s.base, c.path(), "G11111116", "9476719931", "urgent", None),
            "not a task type",
        ),
    ];
    for (out, message) in cases {
        assert_eq!(out.status.code(), Some(1), "{message}: {}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(message),
            "{message}: {}",
            text(&out)
        );
    }
    assert!(sent(c.path(), "Y00001").is_empty(), "nothing queued");
}

/// A provider on a port of its own, with the SSP and directory in another server.
async fn spine_for(provider_base: &str, ssp_timeout: Duration) -> TestServer {
    let mut config = ServerConfig::default();
    config.ssp.provider_base = Some(provider_base.to_owned());
    config.ssp.timeout = ssp_timeout;
    TestServer::start_with(tempfile::tempdir().unwrap(), config).await
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn provider_on(port: u16, dir: tempfile::TempDir) -> TestServer {
    let config = ServerConfig {
        listen: format!("127.0.0.1:{port}").parse().unwrap(),
        parts: gpc_server::Parts::PROVIDER,
        ..ServerConfig::default()
    };
    TestServer::start_with(dir, config).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn provider_down_fails_after_three_retries_then_a_manual_retry_delivers_once() {
    let port = free_port();
    let provider = provider_on(port, tempfile::tempdir().unwrap()).await;
    let provider_base = provider.base.clone();
    let spine = spine_for(&provider_base, Duration::from_secs(5)).await;
    let c = tempfile::tempdir().unwrap();
    let provider_dir = provider.stop().await;

    let out = send(
        &spine.base,
        c.path(),
        "G11111116",
        "9476719931",
        "action",
        None,
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Retrying at"), "{stdout}");
    assert!(
        stdout.contains("gpc-tasks retry") && stdout.contains("01632 960001"),
        "{stdout}"
    );
    let task = &sent(c.path(), "Y00001")[0];
    assert_eq!(task["status"], "Failed");
    assert_eq!(
        task["attempts"], 4,
        "one attempt and three automatic retries"
    );
    assert!(task["next_attempt_at"].is_null());
    for a in task["attempt_log"].as_array().unwrap() {
        assert_eq!(a["outcome"], "Failed");
        assert_eq!(a["http_status"], 502);
    }

    let provider = provider_on(port, provider_dir).await;
    let id = task["id"].as_str().unwrap();
    let out = consumer(&["retry", id], &spine.base, c.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let task = &sent(c.path(), "Y00001")[0];
    assert_eq!(task["status"], "Delivered");
    assert_eq!(task["attempts"], 5);
    assert_eq!(inbox(provider.dir.path(), "GPC001").await.len(), 1);
    // A second manual retry of a delivered task is refused.
    let out = consumer(&["retry", id], &spine.base, c.path(), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be retried"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_too_slow_is_retried_and_stored_once() {
    let provider = provider_on(free_port(), tempfile::tempdir().unwrap()).await;
    // The provider stores the first POST at once but its answer comes too late.
    let slow = DelayProxy::start(&provider.base, 1, Duration::from_secs(3)).await;
    let spine = spine_for(&slow.base, Duration::from_millis(800)).await;
    let c = tempfile::tempdir().unwrap();

    let out = send(
        &spine.base,
        c.path(),
        "G11111116",
        "9476719931",
        "action",
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(slow.posts(), 2, "the identifier was sent twice");
    let task = &sent(c.path(), "Y00001")[0];
    let log = task["attempt_log"].as_array().unwrap();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0]["outcome"], "Failed");
    assert_eq!(log[0]["http_status"], 504);
    assert_eq!(log[1]["outcome"], "Delivered");
    assert_eq!(
        log[1]["http_status"], 200,
        "the provider answered with the task it already held"
    );
    let received = inbox(provider.dir.path(), "GPC001").await;
    assert_eq!(received.len(), 1, "exactly one copy");
    assert_eq!(task["provider_task_id"], received[0].id.as_str());
    // The SSP audited both attempts' POSTs.
    let store = SqliteStore::open(spine.dir.path()).unwrap();
    let audit = store.ssp_audit(SspAuditFilter::default()).await.unwrap();
    assert!(
        audit.iter().filter(|r| r.status == 504).count() == 1,
        "{audit:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_killed_mid_delivery_is_resumed_and_delivers_once() {
    let provider = provider_on(free_port(), tempfile::tempdir().unwrap()).await;
    let slow = DelayProxy::start(&provider.base, 1, Duration::from_secs(30)).await;
    let spine = spine_for(&slow.base, Duration::from_secs(60)).await;
    let c = tempfile::tempdir().unwrap();

    let mut child = Command::new(BIN)
        .args([
            "send",
            "--as",
            "G11111116",
            "--patient",
            "9476719931",
            "--type",
            "action",
        ])
        .args(["--text", "Killed mid-delivery", "--data-dir"])
        .arg(c.path())
        .env("GPC_SERVER", &spine.base)
        .env("GPC_REQUEST_TIMEOUT_MS", "60000")
        .env("GPC_LEASE_MS", "1500")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the Order is on the wire (the provider has stored it), then kill.
    for _ in 0..200 {
        if slow.posts() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(slow.posts(), 1, "the sender reached the POST");
    child.kill().unwrap();
    child.wait().unwrap();
    let task = &sent(c.path(), "Y00001")[0];
    assert_eq!(task["status"], "Sending", "left mid-delivery");
    assert_eq!(inbox(provider.dir.path(), "GPC001").await.len(), 1);

    // The next start of the consumer (here `serve` on the same data directory) resumes it.
    let mut resumed = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(c.path())
        .env("GPC_SSP_URL", format!("{}/ssp", spine.base))
        .env("GPC_DIRECTORY_URL", &spine.base)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut status = Value::Null;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        status = sent(c.path(), "Y00001")[0]["status"].clone();
        if status == "Delivered" {
            break;
        }
    }
    resumed.kill().unwrap();
    resumed.wait().unwrap();
    assert_eq!(status, "Delivered");
    assert_eq!(
        inbox(provider.dir.path(), "GPC001").await.len(),
        1,
        "delivered exactly once"
    );
    assert_eq!(slow.posts(), 2);
}
