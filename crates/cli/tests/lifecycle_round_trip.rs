//! task-lifecycle.md end to end on the command line, as a script drives it:
//! a hub sends a task to a practice through the SSP, the practice takes and
//! completes it, and the hub's `sent --json` follows each change; the hub
//! cancels an open task and a completed one; and a `serve` killed with
//! SIGKILL between a change and its delivery delivers it exactly once after
//! a restart. One `gpc-tasks serve` on one data directory hosts both
//! organisations, as a multi-tenant deployment does; the commands run as
//! their own processes on that directory.

// A test crate sees every dev-dependency of its package, and uses only some.
#![allow(unused_crate_dependencies)]
// Helpers outside `#[test]` functions panic on purpose too: a failure is the test's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_gpc-tasks");
/// Dr Nichole GILBERT at GPC001, the practice.
const GILBERT: &str = "G13579135";
/// The hub's user at Y00001.
const HUB_USER: &str = "G11111116";
/// Registered at GPC001.
const PATIENT: &str = "9476719931";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `gpc-tasks serve` on `port`; killed when dropped.
struct Serve(Child);

impl Serve {
    fn start(dir: &Path, port: u16) -> Self {
        let mut child = Command::new(BIN)
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
            ])
            .arg(dir)
            .env("RUST_LOG", "warn")
            // The timeout sets the lease (4 × timeout + 5 s) that a killed
            // worker leaves behind: short enough for the next serve to take
            // over within the test, long enough for any answer of a busy
            // machine.
            .env("GPC_REQUEST_TIMEOUT_MS", "5000")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("binary starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().expect("a first line").unwrap();
        assert!(first.contains("listening on"), "{first}");
        std::thread::spawn(move || for _ in lines {});
        Serve(child)
    }

    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Exit code, stdout, stderr of a command on `dir`, talking to `port`.
fn run(args: &[&str], dir: &Path, port: u16) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .env("GPC_SERVER", format!("http://127.0.0.1:{port}"))
        .env("GPC_REQUEST_TIMEOUT_MS", "30000")
        .env("RUST_LOG", "warn")
        .output()
        .expect("binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Sends a task from the hub to the patient's practice; its sent id.
fn send(dir: &Path, port: u16, text: &str) -> String {
    let (code, out, err) = run(
        &[
            "send",
            "--as",
            HUB_USER,
            "--patient",
            PATIENT,
            "--type",
            "action",
            "--text",
            text,
            "--json",
        ],
        dir,
        port,
    );
    assert_eq!(code, 0, "{out}{err}");
    // The last event of the delivery names the task.
    let last: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(last["status"], "Delivered", "{out}");
    last["task_id"].as_str().unwrap().to_owned()
}

/// The hub's sent task `id`, as `sent --json` reports it.
/// Sends a task and returns its id at the hub and at the practice.
fn send_for_id(dir: &Path, port: u16, text: &str) -> (String, String) {
    let id = send(dir, port, text);
    let theirs = sent(dir, &id)["provider_task_id"]
        .as_str()
        .unwrap()
        .to_owned();
    (id, theirs)
}

fn sent(dir: &Path, id: &str) -> Value {
    let (code, out, err) = run(&["sent", "--from", "Y00001", "--json"], dir, 1);
    assert_eq!(code, 0, "{err}");
    out.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|t| t["id"] == id)
        .unwrap_or_else(|| panic!("no sent task {id} in {out}"))
}

/// The practice's task, as `task show --json` reports it.
fn received(dir: &Path, id: &str) -> Value {
    let (code, out, err) = run(&["task", "show", id, "--org", "GPC001", "--json"], dir, 1);
    assert_eq!(code, 0, "{err}");
    serde_json::from_str(&out).unwrap()
}

/// Polls the sent task until `done` holds (the running serve delivers in
/// the background); fails with what it last saw after `limit`.
fn sent_until(dir: &Path, id: &str, limit: Duration, done: impl Fn(&Value) -> bool) -> Value {
    until(limit, || sent(dir, id), done)
}

/// The first update of the practice's task `theirs` once `done` holds.
fn update_until(dir: &Path, theirs: &str, done: impl Fn(&Value) -> bool) -> Value {
    until(
        gpc_testkit::PATIENCE,
        || received(dir, theirs)["updates"][0].clone(),
        done,
    )
}

fn until(limit: Duration, read: impl Fn() -> Value, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let seen = read();
        if done(&seen) {
            return seen;
        }
        assert!(
            Instant::now() < deadline,
            "gave up waiting; last seen {seen:#}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Dr GILBERT takes the practice's task `theirs` on the command line.
fn take(dir: &Path, port: u16, theirs: &str) {
    let (code, _, err) = run(
        &["task", "take", theirs, "--org", "GPC001", "--as", GILBERT],
        dir,
        port,
    );
    assert_eq!(code, 0, "{err}");
}

fn states(timeline: &Value) -> Vec<(u64, String)> {
    timeline
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["version"].as_u64().unwrap(),
                e["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn pairs(list: &[(u64, &str)]) -> Vec<(u64, String)> {
    list.iter().map(|(v, s)| (*v, (*s).to_owned())).collect()
}

#[test]
fn the_hub_follows_its_task_through_the_practice_and_can_cancel_an_open_one() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _serve = Serve::start(dir.path(), port);
    let dir = dir.path();

    let id = send(dir, port, "Please review the medication.");
    let task = sent(dir, &id);
    assert_eq!(task["status"], "Delivered");
    assert_eq!(
        (task["state"].as_str(), task["version"].as_u64()),
        (Some("received"), Some(1))
    );
    assert_eq!(states(&task["timeline"]), pairs(&[(1, "received")]));
    let theirs = task["provider_task_id"].as_str().unwrap().to_owned();

    // The practice takes it: the hub hears, without anyone pressing anything.
    take(dir, port, &theirs);
    let task = sent_until(dir, &id, gpc_testkit::PATIENCE, |t| t["version"] == 2);
    assert_eq!(task["state"], "accepted");
    assert_eq!(task["owner_sds_id"], GILBERT);
    assert_eq!(task["label"], "Accepted by Dr Nichole GILBERT");
    let taken = &task["timeline"][1];
    assert_eq!(
        (
            taken["by_sds_id"].as_str(),
            taken["by_ods"].as_str(),
            taken["owner_sds_id"].as_str()
        ),
        (Some(GILBERT), Some("GPC001"), Some(GILBERT))
    );

    // A note stays with the practice; the completion goes back with its note.
    let (code, _, err) = run(
        &[
            "task",
            "note",
            &theirs,
            "--org",
            "GPC001",
            "--as",
            GILBERT,
            "--text",
            "Rang the patient.",
        ],
        dir,
        port,
    );
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = run(
        &[
            "task",
            "complete",
            &theirs,
            "--org",
            "GPC001",
            "--as",
            GILBERT,
            "--note",
            "Review booked.",
        ],
        dir,
        port,
    );
    assert_eq!(code, 0, "{err}");
    let task = sent_until(dir, &id, gpc_testkit::PATIENCE, |t| {
        t["state"] == "completed"
    });
    assert_eq!(
        task["version"], 4,
        "the note was version 3, kept at the practice"
    );
    assert_eq!(
        states(&task["timeline"]),
        pairs(&[(1, "received"), (2, "accepted"), (4, "completed")])
    );
    assert_eq!(task["timeline"][2]["note"], "Review booked.");
    let there = received(dir, &theirs);
    let told: Vec<(u64, &str)> = there["updates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["version"].as_u64().unwrap(),
                u["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(told, [(2, "delivered"), (4, "delivered")]);

    // A completed task cannot be cancelled: refused, saying since when.
    let (code, _, err) = run(
        &[
            "cancel",
            &id,
            "--as",
            HUB_USER,
            "--reason",
            "Sent in error.",
        ],
        dir,
        port,
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("completed"), "{err}");
    assert_eq!(sent(dir, &id)["cancellation"], Value::Null);

    // An open one is cancelled at the practice, at its next version.
    let (id, theirs) = send_for_id(dir, port, "Please call the patient.");
    let (code, out, err) = run(
        &[
            "cancel",
            &id,
            "--as",
            HUB_USER,
            "--reason",
            "Sent to the wrong practice.",
            "--json",
        ],
        dir,
        port,
    );
    assert_eq!(code, 0, "{out}{err}");
    let task: Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(
        (task["state"].as_str(), task["version"].as_u64()),
        (Some("cancelled"), Some(2))
    );
    assert_eq!(task["cancellation"]["status"], "delivered");
    assert_eq!(task["label"], "Cancelled");
    let there = received(dir, &theirs);
    assert_eq!(
        (there["state"].as_str(), there["version"].as_u64()),
        (Some("cancelled"), Some(2))
    );
    let last = &there["timeline"][1];
    assert_eq!(
        (
            last["party"].as_str(),
            last["by_sds_id"].as_str(),
            last["note"].as_str()
        ),
        (
            Some("sender"),
            Some(HUB_USER),
            Some("Sent to the wrong practice.")
        )
    );
    // Nothing goes back to the sender for its own cancellation.
    assert_eq!(there["updates"], serde_json::json!([]));

    // Cancelling twice, or with no reason, is refused without a change.
    let (code, _, err) = run(
        &["cancel", &id, "--as", HUB_USER, "--reason", "Again."],
        dir,
        port,
    );
    assert_eq!(code, 2, "{err}");
    let (code, _, err) = run(
        &["cancel", &id, "--as", HUB_USER, "--reason", "  "],
        dir,
        port,
    );
    assert_eq!(code, 1, "{err}");
    // Someone who does not work for the hub cannot cancel its task.
    let id = send(dir, port, "Please check the dose.");
    let (code, _, err) = run(
        &["cancel", &id, "--as", GILBERT, "--reason", "No."],
        dir,
        port,
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("does not work for Y00001"), "{err}");
    let (code, _, err) = run(
        &[
            "cancel",
            "no-such-task",
            "--as",
            HUB_USER,
            "--reason",
            "No.",
        ],
        dir,
        port,
    );
    assert_eq!(code, 2, "{err}");
}

#[test]
fn a_cancellation_that_finds_the_task_completed_is_refused_and_the_hub_says_since_when() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut serve = Serve::start(dir.path(), port);
    let dir = dir.path();
    let (id, theirs) = send_for_id(dir, port, "Please review the medication.");
    serve.kill();

    // With the server down the cancellation is not reached: it stays queued.
    let (code, _, err) = run(
        &[
            "cancel",
            &id,
            "--as",
            HUB_USER,
            "--reason",
            "Sent in error.",
        ],
        dir,
        port,
    );
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("stays queued"), "{err}");
    assert_eq!(sent(dir, &id)["cancellation"]["status"], "pending");
    // Meanwhile the practice completes it.
    let (code, _, err) = run(
        &[
            "task", "complete", &theirs, "--org", "GPC001", "--as", GILBERT,
        ],
        dir,
        port,
    );
    assert_eq!(code, 0, "{err}");

    // The next serve delivers both: the practice refuses the cancellation
    // (409), the hub shows why, and the completion arrives.
    let _serve = Serve::start(dir, port);
    let task = sent_until(dir, &id, gpc_testkit::PATIENCE, |t| {
        t["cancellation"]["status"] == "refused" && t["state"] == "completed"
    });
    assert_eq!(task["cancellation"]["http_status"], 409);
    let detail = task["cancellation"]["detail"].as_str().unwrap();
    assert!(detail.contains("completed"), "{detail}");
    assert_eq!(task["version"], 2);
    let there = received(dir, &theirs);
    assert_eq!(
        (there["state"].as_str(), there["version"].as_u64()),
        (Some("completed"), Some(2))
    );
}

#[test]
fn a_serve_killed_between_a_change_and_its_delivery_delivers_it_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut serve = Serve::start(dir.path(), port);
    let dir = dir.path();
    // Killed at different points: before the worker looked, while the update
    // may be on the wire, and after it may have been applied.
    let kills = [
        Duration::ZERO,
        Duration::from_millis(300),
        Duration::from_millis(1200),
    ];
    let mut ids = Vec::new();
    for after in kills {
        let (id, theirs) = send_for_id(dir, port, "Please review the medication.");
        take(dir, port, &theirs);
        std::thread::sleep(after);
        serve.kill();
        serve = Serve::start(dir, port);
        ids.push((id, theirs));
    }
    for (id, theirs) in &ids {
        let task = sent_until(dir, id, gpc_testkit::PATIENCE, |t| t["version"] == 2);
        assert_eq!(
            states(&task["timeline"]),
            pairs(&[(1, "received"), (2, "accepted")])
        );
        let updates = received(dir, theirs)["updates"].clone();
        assert_eq!(updates.as_array().unwrap().len(), 1, "{updates}");
        // Delivered once: a repeat after the kill is recognised by its identifier.
        update_until(dir, theirs, |u| u["status"] == "delivered");
    }
    drop(serve);
}

/// The narrowest window, made certain: the sender has applied the update,
/// and the receiver is killed before it records the delivery. Its row is
/// put back as the kill leaves it (pending, leased to the dead worker), so
/// the next `serve` sends the same update again; the sender recognises it
/// by its identifier (its version is no newer either), answers 200 and
/// keeps one change.
#[test]
fn an_update_applied_before_the_receiver_died_is_sent_again_and_kept_once() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut serve = Serve::start(dir.path(), port);
    let dir = dir.path();
    let (id, theirs) = send_for_id(dir, port, "Please review the medication.");
    take(dir, port, &theirs);
    sent_until(dir, &id, gpc_testkit::PATIENCE, |t| t["version"] == 2);
    let delivered = |attempts: u64| {
        update_until(dir, &theirs, |u| {
            u["status"] == "delivered" && u["attempts"] == attempts
        })
    };
    assert_eq!(delivered(1)["http_status"], 201);
    serve.kill();
    let db = rusqlite::Connection::open(dir.join("gpc-tasks.db")).unwrap();
    let lease_ran_out = jiff::Timestamp::now().as_nanosecond() as i64;
    let reset = db
        .execute(
            "UPDATE task_updates SET status = 'pending', finished_at = NULL, \
             http_status = NULL, next_attempt_at = ?1, attempts = 1, \
             lease_owner = 'killed-worker', lease_until = ?1",
            [lease_ran_out],
        )
        .unwrap();
    assert_eq!(reset, 1);
    drop(db);
    let serve = Serve::start(dir, port);
    let again = delivered(2);
    assert_eq!(
        again["http_status"], 200,
        "a repeat is acknowledged: {again}"
    );
    let task = sent(dir, &id);
    assert_eq!(task["version"], 2);
    assert_eq!(
        states(&task["timeline"]),
        pairs(&[(1, "received"), (2, "accepted")])
    );
    drop(serve);
}
