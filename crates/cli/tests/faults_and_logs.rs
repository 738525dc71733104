//! The sender when the SSP is down (Failed after the automatic retries, then
//! delivered by a manual retry once it is back), and the logs of whole runs
//! at the most detailed level (sending; a task's life and its updates both
//! ways), which must hold no NHS number, no name of a patient or user, no
//! task text and no note or reason.

// A test crate sees every dev-dependency of its package, and uses only some.
#![allow(unused_crate_dependencies)]
// Helpers outside `#[test]` functions panic on purpose too: a failure is the test's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gpc_server::ServerConfig;
use gpc_store::{SqliteStore, Store};
use gpc_testkit::TestServer;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_gpc-tasks");

fn consumer(args: &[&str], data_dir: &Path, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env("GPC_RETRY_DELAYS_MS", "100,200,300")
        .env("GPC_REQUEST_TIMEOUT_MS", "30000")
        .env("RUST_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    tokio::task::block_in_place(|| cmd.output().expect("gpc-tasks runs"))
}

fn text(out: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn sent(data_dir: &Path) -> Vec<serde_json::Value> {
    let out = consumer(&["sent", "--from", "Y00001", "--json"], data_dir, &[]);
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssp_down_fails_after_the_retries_then_a_retry_delivers_once() {
    // Directory and provider up; the SSP's port closed.
    let server = TestServer::start().await;
    let ssp_port = free_port();
    let ssp_url = format!("http://127.0.0.1:{ssp_port}/ssp");
    let env = [
        ("GPC_SERVER", server.base.as_str()),
        ("GPC_SSP_URL", ssp_url.as_str()),
    ];
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
            "SSP down",
        ],
        c.path(),
        &env,
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let task = &sent(c.path())[0];
    assert_eq!(task["status"], "Failed");
    assert_eq!(
        task["attempts"], 4,
        "one attempt and three automatic retries"
    );
    for attempt in task["attempt_log"].as_array().unwrap() {
        assert_eq!(attempt["outcome"], "Failed", "{attempt}");
    }

    // The SSP comes up on that port, and a manual retry goes through it.
    let ssp = TestServer::start_with(
        tempfile::tempdir().unwrap(),
        ServerConfig {
            listen: format!("127.0.0.1:{ssp_port}").parse().unwrap(),
            parts: gpc_server::Parts::SSP,
            ssp: gpc_server::ssp::SspConfig {
                provider_base: Some(server.base.clone()),
                ..Default::default()
            },
            ..ServerConfig::default()
        },
    )
    .await;
    let id = task["id"].as_str().unwrap();
    let out = consumer(&["retry", id], c.path(), &env);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let task = &sent(c.path())[0];
    assert_eq!(task["status"], "Delivered");
    assert_eq!(task["attempts"], 5);
    let store = SqliteStore::open(server.dir.path()).unwrap();
    let inbox = store
        .inbox(&gpc_domain::OdsCode::parse("GPC001").unwrap(), 100, None)
        .await
        .unwrap();
    assert_eq!(inbox.len(), 1);
    assert_eq!(task["provider_task_id"], inbox[0].id.as_str());
    drop(ssp);
}

/// Every NHS number (both forms), and every patient's and user's family and
/// given name, of the demo region.
fn personal_data() -> Vec<String> {
    let region = gpc_directory::demo_region();
    let mut out = Vec::new();
    for p in &region.patients {
        out.push(p.nhs_number.as_digits());
        out.push(p.nhs_number.formatted());
        out.push(p.family.clone());
        out.push(p.given.clone());
    }
    for p in &region.practitioners {
        out.push(p.family.clone());
        out.push(p.given.clone());
    }
    out.sort();
    out.dedup();
    out
}

/// Whether `word` occurs in `text` as a whole word (names like "Dean" must
/// not match inside other words).
fn has_word(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
    })
}

/// `gpc-tasks serve` at trace level on `dir`, its stderr in `log`; the child
/// and its base URL, and a thread collecting its stdout.
fn serve_at_trace(
    dir: &Path,
    log: &Path,
) -> (
    std::process::Child,
    String,
    std::thread::JoinHandle<Vec<String>>,
) {
    let log = std::fs::File::create(log).unwrap();
    // Provider, SSP, directory, web UI and the outbox workers in one process.
    let mut server = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .env("RUST_LOG", "trace")
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let base = format!(
        "http://{}",
        first.split("listening on ").nth(1).unwrap().trim()
    );
    let stdout_lines = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>());
    (server, base, stdout_lines)
}

/// Each secret found as a whole word in a line of the named outputs.
fn leaks(secrets: &[String], outputs: &[(&str, &str)]) -> Vec<String> {
    let mut found = Vec::new();
    for (name, output) in outputs {
        for secret in secrets {
            if let Some(line) = output.lines().find(|l| has_word(l, secret)) {
                let line: String = line.chars().take(300).collect();
                found.push(format!("{name}: '{secret}' in: {line}"));
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_run_at_trace_level_logs_no_patient_data() {
    let server_dir = tempfile::tempdir().unwrap();
    let log_path = server_dir.path().join("serve.log");
    let (mut server, base, stdout_lines) = serve_at_trace(server_dir.path(), &log_path);

    let texts = [
        "Zebrafinch review of the statins",
        "Quokka follow-up after the fall",
        "Narwhal information about the referral",
    ];
    let trace = [("GPC_SERVER", base.as_str()), ("RUST_LOG", "trace")];
    let mut consumer_logs = String::new();
    let c = tempfile::tempdir().unwrap();
    // Delivered to two practices, a hub, and refused (unverified, no agreement, no route).
    // (user, patient, type, text, recipient, exit code)
    for (user, nhs, kind, text, to, code) in [
        ("G11111116", "9476719931", "action", texts[0], None, 0),
        ("G11111116", "947 671 9966", "info", texts[1], None, 0),
        (
            "G13579135",
            "9476719931",
            "action",
            texts[2],
            Some("Y00001"),
            0,
        ),
        ("G11111116", "9476718927", "action", texts[0], None, 2),
        ("G11111116", "9476718900", "action", texts[1], None, 2),
        ("G11111116", "9000000009", "info", texts[2], None, 2),
    ] {
        let mut args = vec![
            "send",
            "--as",
            user,
            "--patient",
            nhs,
            "--type",
            kind,
            "--text",
            text,
        ];
        if let Some(to) = to {
            args.extend(["--to", to]);
        }
        let out = consumer(&args, c.path(), &trace);
        assert_eq!(out.status.code(), Some(code), "{nhs}: {}", self::text(&out));
        // Its log lines; what `send` prints on stdout is its answer to the
        // person at the keyboard, not a log.
        consumer_logs.push_str(&String::from_utf8_lossy(&out.stderr));
    }
    // Y00001's five (the sixth came from GPC001, whose practitioner sent it).
    let statuses: Vec<String> = sent(c.path())
        .iter()
        .map(|t| t["status"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        statuses,
        [
            "No electronic route",
            "Rejected",
            "Rejected",
            "Delivered",
            "Delivered"
        ]
    );
    // Look-ups by NHS number in the URL, directly and through PDS.
    let client = reqwest::Client::new();
    let (scope, record) = gpc_testkit::scope_for(gpc_testkit::SEARCH_PATIENT);
    let jwt = gpc_testkit::Jwt::new(scope, record).encode();
    let r = client
        .get(format!(
            "{base}/GPC001/DSTU2/1/Patient?identifier=http://fhir.nhs.net/Id/nhs-number|9476719931"
        ))
        .headers(gpc_testkit::headers(
            gpc_testkit::SEARCH_PATIENT,
            gpc_testkit::GPC001_ASID,
            &jwt,
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client
        .get(format!(
            "{base}/personal-demographics/FHIR/R4/Patient/9476719931"
        ))
        .header("X-Request-ID", uuid::Uuid::new_v4().to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // SIGINT: the server finishes what it has in hand, logs included,
    // before it exits, and `wait` waits for that.
    let _ = Command::new("kill")
        .args(["-INT", &server.id().to_string()])
        .status();
    server.wait().unwrap();
    let server_log = std::fs::read_to_string(&log_path).unwrap();
    let stdout = stdout_lines.join().unwrap().join("\n");
    assert!(
        server_log.contains("provider request"),
        "trace logs are captured"
    );
    assert!(server_log.contains("ssp request"), "the SSP logged");
    assert!(server_log.lines().count() > 50, "trace level is on");

    let mut secrets = personal_data();
    secrets.extend(texts.iter().map(|t| t.to_string()));
    let found = leaks(
        &secrets,
        &[
            ("serve log", &server_log),
            ("serve stdout", &stdout),
            ("send log", &consumer_logs),
        ],
    );
    assert!(found.is_empty(), "{}", found.join("\n"));
}

/// A task's life at the practice and its updates back to the hub, and the
/// hub's cancellation, at trace level: the logs carry ids and states only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_round_trip_at_trace_level_logs_no_note_reason_or_name() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("serve.log");
    let (mut server, base, stdout_lines) = serve_at_trace(dir.path(), &log_path);
    let env = [("GPC_SERVER", base.as_str()), ("RUST_LOG", "trace")];
    let notes = [
        "Pangolin note on taking",
        "Okapi note on assigning",
        "Tapir note on completing",
        "Axolotl reason for rejecting",
        "Capybara reason for cancelling",
        "Wombat task text",
    ];
    let mut logs = String::new();
    let mut run = |args: &[&str]| {
        let out = consumer(args, dir.path(), &env);
        assert!(out.status.success(), "{args:?}: {}", text(&out));
        logs.push_str(&String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let mut theirs = Vec::new();
    for _ in 0..3 {
        let out = run(&[
            "send",
            "--as",
            "G11111116",
            "--patient",
            "9476719931",
            "--type",
            "action",
            "--text",
            notes[5],
            "--json",
        ]);
        let last: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
        theirs.push(last["provider_task_id"].as_str().unwrap().to_owned());
    }
    let practice = ["--org", "GPC001", "--as", "G13579135"];
    let with = |cmd: &[&str], extra: &[&str]| -> Vec<String> {
        cmd.iter()
            .chain(&practice)
            .chain(extra)
            .map(|s| s.to_string())
            .collect()
    };
    for args in [
        with(&["task", "take", &theirs[0]], &["--note", notes[0]]),
        with(
            &["task", "assign", &theirs[0]],
            &["--to", "G50000001", "--note", notes[1]],
        ),
        with(&["task", "complete", &theirs[0]], &["--note", notes[2]]),
        with(&["task", "reject", &theirs[1]], &["--reason", notes[3]]),
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&args);
    }
    let hub_third = sent(dir.path())
        .into_iter()
        .find(|t| t["provider_task_id"] == theirs[2].as_str())
        .unwrap();
    run(&[
        "cancel",
        hub_third["id"].as_str().unwrap(),
        "--as",
        "G11111116",
        "--reason",
        notes[4],
    ]);
    // Every update has reached the hub.
    let deadline = std::time::Instant::now() + gpc_testkit::PATIENCE;
    loop {
        let mut states: Vec<String> = sent(dir.path())
            .iter()
            .map(|t| t["state"].as_str().unwrap_or("-").to_owned())
            .collect();
        states.sort();
        if states == ["cancelled", "completed", "rejected"] {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "updates not delivered: {states:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let _ = Command::new("kill")
        .args(["-INT", &server.id().to_string()])
        .status();
    server.wait().unwrap();
    let server_log = std::fs::read_to_string(&log_path).unwrap();
    let stdout = stdout_lines.join().unwrap().join("\n");
    assert!(
        server_log.contains("task update attempt finished"),
        "the updates' delivery is logged"
    );
    let mut secrets = personal_data();
    secrets.extend(notes.iter().map(|t| t.to_string()));
    let found = leaks(
        &secrets,
        &[
            ("serve log", &server_log),
            ("serve stdout", &stdout),
            ("command logs", &logs),
        ],
    );
    assert!(found.is_empty(), "{}", found.join("\n"));
}
