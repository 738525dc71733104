//! The `gpc-tasks` binary: serve on a fresh data directory, survive SIGKILL,
//! shut down on Ctrl-C, show the inbox and the audit trail, and take its
//! connection cap and timeouts from the environment.

// A test crate sees every dev-dependency of its package, and uses only some.
#![allow(unused_crate_dependencies)]
// Helpers outside `#[test]` functions panic on purpose too: a failure is the test's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gpc_testkit::*;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_gpc-tasks");

/// A server process that is killed when the test ends, even by a panic.
struct Server(Option<Child>);

impl Server {
    fn child(&mut self) -> &mut Child {
        self.0.as_mut().expect("running")
    }

    fn take(mut self) -> Child {
        self.0.take().expect("running")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Starts `gpc-tasks serve` on a free port and returns it with its base URL.
fn serve(data_dir: &Path) -> (Server, String) {
    serve_with_env(data_dir, &[])
}

/// [`serve`] with these environment variables set.
fn serve_with_env(data_dir: &Path, env: &[(&str, &str)]) -> (Server, String) {
    let mut command = Command::new(BIN);
    command
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        // Everything the server logs, at the most detailed level, is kept so
        // tests can check that no patient data reaches a log line.
        .env("RUST_LOG", "trace")
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(log_file(data_dir));
    let mut server = Server(Some(command.spawn().expect("binary starts")));
    let stdout = server.child().stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().expect("a first line").unwrap();
    let addr = first
        .split("listening on ")
        .nth(1)
        .unwrap_or_else(|| panic!("unexpected first line: {first}"))
        .trim()
        .to_owned();
    let mut printed = vec![first];
    for line in lines.by_ref() {
        let line = line.unwrap();
        let done = line.contains("Ctrl-C");
        printed.push(line);
        if done {
            break;
        }
    }
    let text = printed.join("\n");
    assert!(
        text.contains(&format!("http://{addr}/GPC001/DSTU2/1")),
        "{text}"
    );
    assert!(
        text.contains(&format!("http://{addr}/XOA001/DSTU2/1")),
        "{text}"
    );
    // 111 receives no tasks, but hears back about those it sent.
    let (tasks, updates_only) = text
        .split_once("task updates only")
        .unwrap_or_else(|| panic!("no roots for updates only: {text}"));
    assert!(!tasks.contains("/X11101/"), "111 receives no tasks: {text}");
    assert!(
        updates_only.contains(&format!("http://{addr}/X11101/DSTU2/1")),
        "{text}"
    );
    assert!(!updates_only.contains("/GPC001/"), "{text}");
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (server, format!("http://{addr}"))
}

fn log_file(data_dir: &Path) -> std::fs::File {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(data_dir.join("server.log"))
        .unwrap()
}

fn server_log(data_dir: &Path) -> String {
    std::fs::read_to_string(data_dir.join("server.log")).unwrap_or_default()
}

fn run(args: &[&str], data_dir: &Path) -> (bool, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .expect("binary runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn create(base: &str, text: &str) -> serde_json::Value {
    let client = reqwest::Client::new();
    let jwt = Jwt::new("organization/*.write", org_record("GPC001")).encode();
    let resp = client
        .post(format!("{base}/GPC001/DSTU2/1/Order"))
        .headers(headers(CREATE, GPC001_ASID, &jwt))
        .header("content-type", JSON)
        .body(order("2", "5", "1", "2", text).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    resp.json().await.unwrap()
}

#[tokio::test]
async fn a_task_acknowledged_with_201_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, base) = serve(dir.path());
    let first = create(&base, "First task").await;
    let second = create(&base, "Second task").await;
    server.child().kill().unwrap(); // SIGKILL: no graceful shutdown.
    server.child().wait().unwrap();

    let (ok, out, err) = run(&["inbox", "--org", "GPC001", "--json"], dir.path());
    assert!(ok, "{err}");
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2, "{out}");
    // Newest first.
    assert_eq!(lines[0]["id"], second["id"]);
    assert_eq!(lines[1]["id"], first["id"]);
    assert_eq!(lines[0]["from_ods"], "Y00001");
    assert_eq!(lines[0]["practitioner_sds_id"], "G11111116");
    assert_eq!(lines[0]["role"], "General Medical Practitioner");
    assert_eq!(lines[0]["nhs_number"], "9476719931");
    assert_eq!(lines[0]["patient_name"], "Mrs Minnie DAWES");
    assert_eq!(lines[0]["type"], "Action needed");
    assert_eq!(lines[0]["text"], "Second task");

    let (ok, out, _) = run(&["inbox", "--org", "GPC001"], dir.path());
    assert!(ok);
    assert!(
        out.contains("North Lincolnshire Extended Access Hub"),
        "{out}"
    );
    assert!(out.contains("Mrs Melissa PARSONS"), "{out}");
    assert!(out.contains("947 671 9931"), "{out}");
    assert!(out.find("Second task").unwrap() < out.find("First task").unwrap());

    // A second start reuses the data directory.
    let (mut server, base) = serve(dir.path());
    create(&base, "Third task").await;
    let (ok, out, _) = run(&["inbox", "--org", "GPC001", "--json"], dir.path());
    assert!(ok);
    assert_eq!(out.lines().count(), 3);
    server.child().kill().unwrap();
    server.child().wait().unwrap();
}

#[tokio::test]
async fn ctrl_c_shuts_down_cleanly_and_audit_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, base) = serve(dir.path());
    create(&base, "Audited").await;
    let status = Command::new("kill")
        .args(["-INT", &server.child().id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = server.take().wait_with_output().unwrap();
    assert!(out.status.success(), "exit after Ctrl-C: {:?}", out.status);

    let (ok, out, err) = run(&["audit", "--org", "GPC001", "--json"], dir.path());
    assert!(ok, "{err}");
    let records: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 1, "{out}");
    assert_eq!(records[0]["status"], 201);
    assert_eq!(records[0]["practitioner_sds_id"], "G11111116");
    assert_eq!(records[0]["organisation_ods"], "Y00001");
    assert_eq!(records[0]["from_asid"], Y00001_ASID);
    assert!(records[0]["task_id"].is_string());
    let (ok, out, _) = run(&["audit", "--since", "2200-01-01"], dir.path());
    assert!(ok);
    assert!(out.trim().is_empty(), "{out}");
    let (ok, out, _) = run(&["audit", "--org", "R1A14"], dir.path());
    assert!(ok);
    assert!(out.trim().is_empty(), "{out}");
    let (ok, out, _) = run(&["audit"], dir.path());
    assert!(ok);
    assert!(out.contains("201 POST /GPC001/DSTU2/1/Order"), "{out}");
    // No patient data in the audit text, nor in the server's log.
    assert!(
        !out.contains("9476719931") && !out.contains("DAWES"),
        "{out}"
    );
    let log = server_log(dir.path());
    assert!(
        log.contains("provider request"),
        "the log is captured: {log}"
    );
    for secret in ["9476719931", "947 671 9931", "DAWES", "Minnie", "Audited"] {
        assert!(!log.contains(secret), "{secret} in the log");
    }
}

#[test]
fn clear_errors_for_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let (ok, _, err) = run(&["inbox", "--org", "GPC001"], dir.path());
    assert!(!ok);
    assert!(err.contains("no gpc-tasks database"), "{err}");
    let (ok, _, err) = run(&["inbox", "--org", "not an ods"], dir.path());
    assert!(!ok);
    assert!(err.contains("not an ODS code"), "{err}");
    let (ok, _, err) = run(&["audit", "--since", "yesterday"], dir.path());
    assert!(!ok);
    assert!(err.contains("--since"), "{err}");
}

/// A request for GPC001's metadata with valid headers, kept alive.
fn metadata_request(authority: &str) -> String {
    let jwt = Jwt::new("organization/*.read", org_record("GPC001")).encode();
    let mut request = format!("GET /GPC001/DSTU2/1/metadata HTTP/1.1\r\nHost: {authority}\r\n");
    for (k, v) in &headers(METADATA, GPC001_ASID, &jwt) {
        request.push_str(&format!("{k}: {}\r\n", v.to_str().unwrap()));
    }
    request.push_str("\r\n");
    request
}

/// Reads from `stream` until `done` says what arrived is enough, or the
/// server closes; `None` when neither happened within `within`.
async fn read_until(
    stream: &mut tokio::net::TcpStream,
    within: std::time::Duration,
    done: impl Fn(&[u8]) -> bool,
) -> Option<Vec<u8>> {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let work = async {
        while !done(&got) {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(within, work).await.ok()?;
    Some(got)
}

/// A whole head and its Content-Length of body.
fn one_answer(got: &[u8]) -> bool {
    let Some(split) = got.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&got[..split]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    got.len() >= split + 4 + length
}

/// Bounds the waits for what a limit under test must make happen. The
/// defaults the variables replace are 30 s, so an answer well within this
/// is the variable's doing; it is generous because a loaded machine is slow.
const WELL_BEFORE_THE_DEFAULT: std::time::Duration = std::time::Duration::from_secs(15);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_header_and_handler_timeouts_from_the_environment_take_effect() {
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().unwrap();
    let (_server, base) = serve_with_env(
        dir.path(),
        &[
            ("GPC_HEADER_TIMEOUT_MS", "300"),
            ("GPC_HANDLER_TIMEOUT_MS", "1000"),
            // The handler's timeout is kept above the SSP's (10 s by default).
            ("GPC_SSP_TIMEOUT_MS", "100"),
        ],
    );
    let authority = base.trim_start_matches("http://").to_owned();
    // A client that never sends its head is cut off.
    let mut silent = tokio::net::TcpStream::connect(&authority).await.unwrap();
    let closed = read_until(&mut silent, WELL_BEFORE_THE_DEFAULT, |_| false).await;
    assert!(closed.is_some(), "the silent connection is still open");
    // A body that stops arriving gets the handler's 503.
    let jwt = Jwt::new("organization/*.write", org_record("GPC001")).encode();
    let mut request = format!(
        "POST /GPC001/DSTU2/1/Order HTTP/1.1\r\nHost: {authority}\r\nContent-Type: {JSON}\r\nContent-Length: 1000\r\n"
    );
    for (k, v) in &headers(CREATE, GPC001_ASID, &jwt) {
        request.push_str(&format!("{k}: {}\r\n", v.to_str().unwrap()));
    }
    request.push_str("\r\n{\"resource");
    let mut stalled = tokio::net::TcpStream::connect(&authority).await.unwrap();
    stalled.write_all(request.as_bytes()).await.unwrap();
    let answer = read_until(&mut stalled, WELL_BEFORE_THE_DEFAULT, |got| {
        got.windows(4).any(|w| w == b"\r\n\r\n")
    })
    .await
    .expect("an answer well before the default timeout");
    let head = String::from_utf8_lossy(&answer).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 503"), "{head}");
    assert!(head.contains("retry-after: 1"), "{head}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_cap_from_the_environment_takes_effect() {
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().unwrap();
    let (_server, base) = serve_with_env(dir.path(), &[("GPC_MAX_CONNECTIONS", "1")]);
    let authority = base.trim_start_matches("http://").to_owned();
    // A kept-alive connection that has had its answer holds the one slot.
    let mut first = tokio::net::TcpStream::connect(&authority).await.unwrap();
    first
        .write_all(metadata_request(&authority).as_bytes())
        .await
        .unwrap();
    let answer = read_until(&mut first, WELL_BEFORE_THE_DEFAULT, one_answer)
        .await
        .unwrap();
    assert!(answer.starts_with(b"HTTP/1.1 200"), "{answer:?}");
    let mut second = tokio::spawn({
        let authority = authority.clone();
        async move {
            let mut stream = tokio::net::TcpStream::connect(&authority).await.unwrap();
            stream
                .write_all(metadata_request(&authority).as_bytes())
                .await
                .unwrap();
            read_until(&mut stream, std::time::Duration::from_secs(60), one_answer).await
        }
    });
    // Without the cap this is answered in milliseconds; with it, never
    // while the first connection is open, however long this waits.
    let early = tokio::time::timeout(std::time::Duration::from_millis(500), &mut second).await;
    assert!(early.is_err(), "answered while the only slot was taken");
    drop(first);
    let answer = tokio::time::timeout(WELL_BEFORE_THE_DEFAULT, second)
        .await
        .expect("served once the slot is free")
        .unwrap()
        .expect("an answer");
    assert!(answer.starts_with(b"HTTP/1.1 200"), "{answer:?}");
}

#[test]
fn a_limit_in_the_environment_that_is_not_a_positive_number_stops_serve() {
    for (name, value) in [
        ("GPC_MAX_CONNECTIONS", "0"),
        ("GPC_HEADER_TIMEOUT_MS", "soon"),
        ("GPC_HANDLER_TIMEOUT_MS", "-5"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut server = Server(Some(
            Command::new(BIN)
                .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
                .arg(dir.path())
                .env(name, value)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("binary starts"),
        ));
        // A server that accepted the value says where it listens; one that
        // refused it ends, closing its output.
        let stdout = server.child().stdout.take().unwrap();
        if let Some(line) = BufReader::new(stdout).lines().next() {
            panic!("{name}={value} was accepted: {}", line.unwrap());
        }
        let out = server.take().wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name}={value}: {:?}", out.status);
        assert!(err.contains(name), "{name}={value}: {err}");
    }
}
