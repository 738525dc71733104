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
use gpc_testkit::{DelayProxy, PATIENCE, TestServer, wait_for};
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
        .env("GPC_REQUEST_TIMEOUT_MS", "30000")
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
    // The provider stores the first POST at once, and its answer never comes
    // back: however slow the machine, only the SSP's timeout ends that
    // attempt, and it leaves every other call ample time.
    let slow = DelayProxy::start(&provider.base, 1, Duration::from_secs(3600)).await;
    let spine = spine_for(&slow.base, Duration::from_secs(10)).await;
    let c = tempfile::tempdir().unwrap();

    let out = consumer(
        &[
            "send",
            "--as",
            "G11111116",
            "--patient",
            "9476719931",
            "--type",
            "action",
            "--text",
            "Please review the medication.",
        ],
        &spine.base,
        c.path(),
        // The SSP answers 504 before the consumer itself would give up.
        &[("GPC_REQUEST_TIMEOUT_MS", "60000")],
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
    wait_for(PATIENCE, "the sender's POST", async || match slow.posts() {
        0 => Err(0),
        n => Ok(n),
    })
    .await;
    assert_eq!(slow.posts(), 1, "one POST");
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
    wait_for(PATIENCE, "the resumed delivery", async || {
        let task = sent(c.path(), "Y00001").remove(0);
        if task["status"] == "Delivered" {
            Ok(())
        } else {
            Err(task)
        }
    })
    .await;
    resumed.kill().unwrap();
    resumed.wait().unwrap();
    assert_eq!(
        inbox(provider.dir.path(), "GPC001").await.len(),
        1,
        "delivered exactly once"
    );
    assert_eq!(slow.posts(), 2);
}

/// Spec §10: a Rejected task is not retried automatically. Refused by the
/// provider (unverified demographics) and by the SSP (no sharing
/// agreement): one attempt each, one Order on the wire each, and nothing
/// left for any worker to try again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_task_is_attempted_once_and_never_retried() {
    let s = TestServer::start().await;
    let c = tempfile::tempdir().unwrap();
    for (nhs, status) in [("9476718927", 422), ("9476718900", 403)] {
        let out = send(&s.base, c.path(), "G11111116", nhs, "action", None);
        assert_eq!(out.status.code(), Some(2), "{nhs}: {}", text(&out));
        let task = sent(c.path(), "Y00001").remove(0);
        assert_eq!(task["status"], "Rejected", "{task:#}");
        assert_eq!(task["attempts"], 1, "{task:#}");
        assert!(task["next_attempt_at"].is_null(), "{task:#}");
        let log = task["attempt_log"].as_array().unwrap();
        assert_eq!(log.len(), 1, "{task:#}");
        assert_eq!(log[0]["http_status"], status, "{task:#}");
    }
    let store = SqliteStore::open(s.dir.path()).unwrap();
    let audit = store.ssp_audit(SspAuditFilter::default()).await.unwrap();
    let orders = audit
        .iter()
        .filter(|r| r.interaction.as_deref() == Some(gpc_testkit::CREATE))
        .count();
    assert_eq!(orders, 2, "one Order for each task: {audit:?}");
    // Nothing is due, now or ever: no worker will send them again.
    let outbox = gpc_store::open_outbox(None, c.path()).await.unwrap();
    assert_eq!(outbox.next_due().await.unwrap(), None);
}

/// Spec §10: failures are retried at most 3 times with exponential
/// backoff. With no setting at all (no flag, no environment), each failed
/// attempt schedules the next 2, then 4, then 8 seconds after it finished,
/// and no retry starts before its time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_default_the_automatic_retries_wait_2_then_4_then_8_seconds() {
    // SDS lists a provider that is not there: every attempt fails at once.
    let spine = spine_for(
        &format!("http://127.0.0.1:{}", free_port()),
        Duration::from_secs(10),
    )
    .await;
    let c = tempfile::tempdir().unwrap();
    let out = tokio::task::block_in_place(|| {
        Command::new(BIN)
            .args(["send", "--as", "G11111116", "--patient", "9476719931"])
            .args(["--type", "action", "--text", "Please review.", "--json"])
            .arg("--data-dir")
            .arg(c.path())
            .env("GPC_SERVER", &spine.base)
            .env_remove("GPC_RETRY_DELAYS_MS")
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    });
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let time = |v: &Value| v.as_str().unwrap().parse::<jiff::Timestamp>().unwrap();
    // The schedule each failure set: (attempt, finished, next due).
    let mut scheduled: Vec<(u64, jiff::Timestamp, jiff::Timestamp)> =
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|e| e["status"] == "Failed" && e["next_attempt_at"].is_string())
            .map(|e| {
                (
                    e["attempt"].as_u64().unwrap(),
                    time(&e["at"]),
                    time(&e["next_attempt_at"]),
                )
            })
            .collect();
    scheduled.dedup_by_key(|(attempt, _, _)| *attempt);
    let delays: Vec<(u64, f64)> = scheduled
        .iter()
        .map(|(attempt, at, due)| (*attempt, due.duration_since(*at).as_secs_f64()))
        .collect();
    assert_eq!(delays, [(1, 2.0), (2, 4.0), (3, 8.0)], "{}", text(&out));

    let task = sent(c.path(), "Y00001").remove(0);
    let log = task["attempt_log"].as_array().unwrap();
    assert_eq!(log.len(), 4, "one attempt and three retries: {task:#}");
    assert!(
        task["next_attempt_at"].is_null(),
        "no fourth retry: {task:#}"
    );
    for (i, (_, _, due)) in scheduled.iter().enumerate() {
        let started = time(&log[i + 1]["started_at"]);
        assert!(
            started >= *due,
            "retry {} started at {started}, before {due}",
            i + 1
        );
    }
}

/// A patient whom PDS records as deceased: refused before anything is
/// stored or sent, with the date PDS holds, not "no record" from the
/// practice's look-up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deceased_patient_is_refused_before_sending_with_the_date_of_death() {
    let s = TestServer::start().await;
    let c = tempfile::tempdir().unwrap();
    let out = send(&s.base, c.path(), "G11111116", "9000000173", "action", None);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("recorded as deceased on 13 Jul 2016"),
        "{}",
        text(&out)
    );
    assert!(!stderr.contains("holds no record"), "{}", text(&out));
    assert!(sent(c.path(), "Y00001").is_empty(), "nothing queued");
    let store = SqliteStore::open(s.dir.path()).unwrap();
    let audit = store.ssp_audit(SspAuditFilter::default()).await.unwrap();
    assert!(audit.is_empty(), "nothing went through the SSP: {audit:?}");
}

/// A recipient without a record of the patient refuses at the patient
/// look-up: no Order is posted, and what the sender reads names that step
/// rather than the look-up's "HTTP 200".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_before_the_order_names_its_step_not_http_200() {
    let s = TestServer::start().await;
    let c = tempfile::tempdir().unwrap();
    let out = send(
        &s.base,
        c.path(),
        "G11111116",
        "9476719931",
        "info",
        Some("XOA001"),
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let step = "Refused at the patient look-up on Out of Area Medical Centre's system, \
                before the task was sent: Out of Area Medical Centre holds no record of this patient";
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(step),
        "{}",
        text(&out)
    );
    let task = sent(c.path(), "Y00001").remove(0);
    assert_eq!(task["status"], "Rejected");
    assert!(task["attempt_log"][0]["http_status"].is_null(), "{task:#}");
    let listed = consumer(
        &["sent", "--from", "Y00001"],
        "http://127.0.0.1:1",
        c.path(),
        &[],
    );
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(listed.contains(&format!("Rejected: {step}")), "{listed}");
    assert!(!listed.contains("HTTP 200"), "{listed}");
    let store = SqliteStore::open(s.dir.path()).unwrap();
    let audit = store.ssp_audit(SspAuditFilter::default()).await.unwrap();
    assert!(
        audit
            .iter()
            .all(|r| r.interaction.as_deref() != Some(gpc_testkit::CREATE)),
        "no Order was posted: {audit:?}"
    );
}

/// `sent` and `inbox` say when more tasks exist than `--limit` shows, and
/// say nothing when all are shown; with `--json`, on stderr.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sent_and_inbox_say_when_the_limit_hides_tasks() {
    let s = TestServer::start().await;
    let c = tempfile::tempdir().unwrap();
    for nhs in ["9476719931", "9476719915", "9476719974"] {
        let out = send(
            &s.base,
            c.path(),
            "G11111116",
            nhs,
            "action",
            Some("GPC001"),
        );
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    }
    let list = |args: &[&str], dir: &Path| {
        let out = consumer(args, "http://127.0.0.1:1", dir, &[]);
        assert!(out.status.success(), "{}", text(&out));
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let sent_more = "more tasks sent by Y00001 exist than the 2 shown";
    let (out, _) = list(&["sent", "--from", "Y00001", "--limit", "2"], c.path());
    assert!(out.contains(sent_more), "{out}");
    assert_eq!(out.matches("\n  task ").count(), 2, "{out}");
    let (out, _) = list(&["sent", "--from", "Y00001", "--limit", "3"], c.path());
    assert!(!out.contains("more tasks"), "{out}");
    let (out, err) = list(
        &["sent", "--from", "Y00001", "--limit", "2", "--json"],
        c.path(),
    );
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(err.contains(sent_more), "{err}");

    let inbox_more = "more open tasks received by GPC001 exist than the 2 shown";
    let (out, _) = list(&["inbox", "--org", "GPC001", "--limit", "2"], s.dir.path());
    assert!(out.contains(inbox_more), "{out}");
    let (out, _) = list(&["inbox", "--org", "GPC001", "--limit", "3"], s.dir.path());
    assert!(!out.contains("more open tasks"), "{out}");
    let (out, err) = list(
        &["inbox", "--org", "GPC001", "--limit", "2", "--json"],
        s.dir.path(),
    );
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(err.contains(inbox_more), "{err}");
}
