//! The receiving side's commands of task-lifecycle.md §4, driven as a
//! script would: list, take, lose a race, assign, complete, refuse, and the
//! timeline and exit codes they leave.

// A test crate sees every dev-dependency of its package, and uses only some.
#![allow(unused_crate_dependencies)]
// Helpers outside `#[test]` functions panic on purpose too: a failure is the test's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gpc_testkit::*;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_gpc-tasks");
const GILBERT: &str = "G13579135";
const ROSS: &str = "G50000001";

/// Exit code, stdout, stderr.
fn run(args: &[&str], data_dir: &Path) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .expect("binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json_lines(out: &str) -> Vec<Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

async fn delivered(s: &TestServer, text: &str) -> String {
    let (status, _, body) =
        send(s.post_order("GPC001", GPC001_ASID, &order("2", "5", "1", "2", text))).await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_works_a_received_task_through_its_life() {
    let s = TestServer::start().await;
    let dir = s.dir.path();
    let first = delivered(&s, "Please review medication").await;
    let second = delivered(&s, "For information").await;

    // The default list is what is still to do.
    let (code, out, err) = run(&["inbox", "--org", "GPC001", "--json"], dir);
    assert_eq!(code, 0, "{err}");
    let open = json_lines(&out);
    assert_eq!(open.len(), 2);
    assert_eq!(open[0]["id"], second);
    assert_eq!(
        (open[0]["state"].as_str(), open[0]["version"].as_u64()),
        (Some("received"), Some(1))
    );
    assert_eq!(open[0]["owner_sds_id"], Value::Null);

    // Take it; a colleague reaching for it after is refused and told who has it.
    let (code, out, err) = run(
        &[
            "task",
            "take",
            &first,
            "--org",
            "GPC001",
            "--as",
            GILBERT,
            "--version",
            "1",
        ],
        dir,
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("accepted, version 2"), "{out}");
    let (code, _, err) = run(
        &[
            "task",
            "take",
            &first,
            "--org",
            "GPC001",
            "--as",
            ROSS,
            "--version",
            "1",
        ],
        dir,
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("refused: the task is at version 2, not 1"),
        "{err}"
    );
    assert!(
        err.contains("owned by Dr Nichole GILBERT (G13579135)"),
        "{err}"
    );
    let (code, _, err) = run(
        &["task", "take", &first, "--org", "GPC001", "--as", ROSS],
        dir,
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("cannot be taken"), "{err}");

    // Assign to the colleague, who completes it with a note.
    let (code, _, err) = run(
        &[
            "task", "assign", &first, "--org", "GPC001", "--as", GILBERT, "--to", ROSS,
        ],
        dir,
    );
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = run(
        &["inbox", "--org", "GPC001", "--owner", ROSS, "--json"],
        dir,
    );
    assert_eq!(code, 0, "{err}");
    let mine = json_lines(&out);
    assert_eq!(mine.len(), 1);
    assert_eq!(
        (mine[0]["id"].as_str(), mine[0]["owner_name"].as_str()),
        (Some(first.as_str()), Some("Mrs Helen ROSS"))
    );
    let (code, _, err) = run(
        &[
            "task",
            "complete",
            &first,
            "--org",
            "GPC001",
            "--as",
            ROSS,
            "--note",
            "Review booked",
        ],
        dir,
    );
    assert_eq!(code, 0, "{err}");

    // A final task refuses every change, and says since when.
    let (code, _, err) = run(
        &[
            "task", "reject", &first, "--org", "GPC001", "--as", GILBERT, "--reason", "No",
        ],
        dir,
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("already completed"), "{err}");
    assert!(
        err.contains("last changed by Mrs Helen ROSS (G50000001)"),
        "{err}"
    );

    let (code, out, err) = run(&["task", "show", &first, "--org", "GPC001", "--json"], dir);
    assert_eq!(code, 0, "{err}");
    let shown: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (shown["state"].as_str(), shown["version"].as_u64()),
        (Some("completed"), Some(4))
    );
    let timeline = shown["timeline"].as_array().unwrap();
    let steps: Vec<(u64, &str, &str)> = timeline
        .iter()
        .map(|e| {
            (
                e["version"].as_u64().unwrap(),
                e["state"].as_str().unwrap(),
                e["by_sds_id"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            (1, "received", "G11111116"),
            (2, "accepted", GILBERT),
            (3, "accepted", GILBERT),
            (4, "completed", ROSS)
        ]
    );
    assert_eq!(timeline[0]["by_ods"], "Y00001");
    assert_eq!(timeline[2]["owner_sds_id"], ROSS);
    assert_eq!(timeline[3]["note"], "Review booked");
    assert_eq!(timeline[3]["by_role"], "Nurse");

    // The other task is rejected with its reason; Done lists both.
    let (code, _, err) = run(
        &[
            "task",
            "reject",
            &second,
            "--org",
            "GPC001",
            "--as",
            ROSS,
            "--reason",
            "Not for this practice",
        ],
        dir,
    );
    assert_eq!(code, 0, "{err}");
    let (_, out, _) = run(
        &["inbox", "--org", "GPC001", "--state", "done", "--json"],
        dir,
    );
    let done: Vec<String> = json_lines(&out)
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(done, [second.clone(), first.clone()]);
    let (_, out, _) = run(&["inbox", "--org", "GPC001", "--json"], dir);
    assert_eq!(out.trim(), "", "nothing is left to do");
    let (_, out, _) = run(&["task", "show", &second, "--org", "GPC001"], dir);
    assert!(out.contains("Not for this practice"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_one_clear_line_and_exit_1_and_changes_nothing() {
    let s = TestServer::start().await;
    let dir = s.dir.path();
    let id = delivered(&s, "Please call the patient").await;
    let cases: [(&[&str], &str); 7] = [
        (
            &["task", "take", &id, "--org", "GPC001", "--as", "G22345655"],
            "G22345655 is not a user of GPC001",
        ),
        (
            &["task", "take", &id, "--org", "GPC001", "--as", "G99999999"],
            "G99999999 is not a user of GPC001",
        ),
        (
            &[
                "task",
                "assign",
                &id,
                "--org",
                "GPC001",
                "--as",
                GILBERT,
                "--to",
                "G11111116",
            ],
            "G11111116 is not a user of GPC001",
        ),
        (
            &[
                "task", "note", &id, "--org", "GPC001", "--as", GILBERT, "--text", "  ",
            ],
            "only spaces",
        ),
        (
            &["task", "take", &id, "--org", "X11101", "--as", GILBERT],
            "X11101 does not receive tasks",
        ),
        (
            &[
                "task",
                "take",
                &id,
                "--org",
                "GPC001",
                "--as",
                GILBERT,
                "--version",
                "two",
            ],
            "invalid value",
        ),
        (
            &["inbox", "--org", "GPC001", "--state", "closed"],
            "'closed' is not a state",
        ),
    ];
    for (args, expected) in cases {
        let (code, _, err) = run(args, dir);
        assert_eq!(code, 1, "{args:?}: {err}");
        assert!(err.contains(expected), "{args:?}: {err}");
    }
    let long = "x".repeat(1001);
    let (code, _, err) = run(
        &[
            "task", "reject", &id, "--org", "GPC001", "--as", GILBERT, "--reason", &long,
        ],
        dir,
    );
    assert_eq!(code, 1, "{err}");
    // A reason is required to reject: clap refuses the command line.
    let (code, _, _) = run(
        &["task", "reject", &id, "--org", "GPC001", "--as", GILBERT],
        dir,
    );
    assert_eq!(code, 1);
    // No such task for this organisation: refused, 2.
    let (code, _, err) = run(
        &[
            "task",
            "take",
            "no-such-task",
            "--org",
            "GPC001",
            "--as",
            GILBERT,
        ],
        dir,
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("GPC001 has no task no-such-task"), "{err}");

    let (_, out, _) = run(&["task", "show", &id, "--org", "GPC001", "--json"], dir);
    let shown: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (shown["state"].as_str(), shown["version"].as_u64()),
        (Some("received"), Some(1))
    );
    assert_eq!(shown["timeline"].as_array().unwrap().len(), 1);
}

/// `gpc-tasks serve` at the most detailed log level, its log in a file, and
/// its base URL; killed when dropped.
struct Served(std::process::Child, String);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve_logged(data_dir: &Path) -> Served {
    use std::io::{BufRead, BufReader};
    let log = std::fs::File::create(data_dir.join("server.log")).unwrap();
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .env("RUST_LOG", "trace")
        .stdout(std::process::Stdio::piped())
        .stderr(log)
        .spawn()
        .expect("binary starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let addr = first
        .split("listening on ")
        .nth(1)
        .unwrap()
        .trim()
        .to_owned();
    std::thread::spawn(move || for _ in lines {});
    Served(child, format!("http://{addr}"))
}

/// Notes, reasons, the patient and the task's text never reach the log,
/// whichever side makes the change (task-lifecycle.md §5).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_from_the_pages_and_the_cli_log_no_note_reason_or_patient() {
    let dir = tempfile::tempdir().unwrap();
    let server = serve_logged(dir.path());
    let base = server.1.clone();
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let jwt = Jwt::new("organization/*.write", org_record("GPC001")).encode();
    let created = client
        .post(format!("{base}/GPC001/DSTU2/1/Order"))
        .headers(headers(CREATE, GPC001_ASID, &jwt))
        .header("content-type", JSON)
        .body(order("2", "5", "1", "2", "Check the warfarin dose").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let id = created.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let signed_in = client
        .post(format!("{base}/sign-in"))
        .header("origin", &base)
        .form(&[("org", "GPC001"), ("user", GILBERT)])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 303);
    let cookie = signed_in.headers()["set-cookie"].to_str().unwrap();
    let cookie = cookie.split(';').next().unwrap().to_owned();
    for (action, version, text) in [
        ("take", "1", "Secret note about the INR"),
        ("reject", "2", "Secret reason: Minnie has moved away"),
    ] {
        let changed = client
            .post(format!("{base}/received/{id}/change"))
            .header("origin", &base)
            .header("cookie", &cookie)
            .form(&[("action", action), ("version", version), ("text", text)])
            .send()
            .await
            .unwrap();
        assert_eq!(changed.status(), 303, "{action}");
    }
    let (code, _, err) = run(
        &[
            "task",
            "note",
            &id,
            "--org",
            "GPC001",
            "--as",
            ROSS,
            "--text",
            "Secret CLI note",
        ],
        dir.path(),
    );
    assert_eq!(code, 2, "a rejected task takes no note: {err}");
    let (_, out, _) = run(&["task", "show", &id, "--org", "GPC001"], dir.path());
    assert!(
        out.contains("Secret reason: Minnie has moved away"),
        "{out}"
    );
    drop(server);

    let log = without_colours(&std::fs::read_to_string(dir.path().join("server.log")).unwrap());
    assert!(
        log.contains("received task changed")
            && log.contains(&id)
            && log.contains("state=\"rejected\""),
        "the changes are logged by id and state: {log}"
    );
    for secret in [
        "Secret",
        "INR",
        "Minnie",
        "DAWES",
        "warfarin",
        "9476719931",
        "947 671 9931",
    ] {
        assert!(!log.contains(secret), "{secret} in the log");
    }
}

/// The log as text: the server colours its fields (ANSI escapes).
fn without_colours(log: &str) -> String {
    let mut out = String::with_capacity(log.len());
    let mut chars = log.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // Up to and including the final letter of the sequence.
            for e in chars.by_ref() {
                if e.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
