//! Mutual TLS end to end, through the binary: the README's example as
//! written, read from the README (`certs`, then `serve` requiring client
//! certificates, then a `send` presenting the hub's), the practice's update going back over the
//! same, a cancel and a retry over it; and the refusals: another
//! organisation's certificate, an expired one, none.

// A test crate sees every dev-dependency of its package, and uses only some.
#![allow(unused_crate_dependencies)]
// Helpers outside `#[test]` functions panic on purpose too: a failure is the test's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gpc_server::tls::certs::{DevCa, Validity};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_gpc-tasks");
/// The hub's user at Y00001.
const HUB_USER: &str = "G11111116";
/// Dr Nichole GILBERT at GPC001, the patient's practice.
const GILBERT: &str = "G13579135";
const PATIENT: &str = "9476719931";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `gpc-tasks serve` as the README starts it, in `dir` (certificates in
/// `certs/`, data in `data/`), on `port`; killed when dropped.
struct Serve {
    child: Child,
    /// What it printed up to "press Ctrl-C".
    printed: String,
}

impl Serve {
    /// The README's `serve`, with the port and the data directory set.
    fn start(dir: &Path, port: u16) -> Self {
        let serve = readme_commands()
            .into_iter()
            .find(|c| c[0] == "serve")
            .expect("the README's example runs serve");
        Self::run(dir, port, &serve)
    }

    fn run(dir: &Path, port: u16, args: &[String]) -> Self {
        let mut child = Command::new(BIN)
            .current_dir(dir)
            .args(args)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--data-dir", "data"])
            .env("RUST_LOG", "warn")
            .env("GPC_REQUEST_TIMEOUT_MS", "30000")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(dir.join("serve.log")).unwrap())
            .spawn()
            .expect("binary starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut printed = String::new();
        for line in lines.by_ref() {
            let line = line.unwrap();
            printed.push_str(&line);
            printed.push('\n');
            if line.contains("Ctrl-C") {
                break;
            }
        }
        assert!(printed.contains("Ctrl-C"), "serve did not start: {printed}");
        std::thread::spawn(move || for _ in lines {});
        Serve { child, printed }
    }
}

/// The commands of the README's mutual-TLS example, as argument lists
/// without the leading `gpc-tasks` (continued lines joined, comments left
/// out, double quotes as the shell reads them).
fn readme_commands() -> Vec<Vec<String>> {
    let readme = include_str!("../../../README.md");
    let marker = "(`crates/cli/tests/mutual_tls.rs` runs these commands)";
    let after = &readme[readme.find(marker).expect("the README names this test")..];
    let start = after.find("```sh\n").unwrap() + "```sh\n".len();
    let block = &after[start..start + after[start..].find("```").unwrap()];
    block
        .replace("\\\n", " ")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|line| {
            let words = shell_words(line);
            assert_eq!(words[0], "gpc-tasks", "{line}");
            words[1..].to_vec()
        })
        .collect()
}

fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
            }
            c => word.push(c),
        }
    }
    assert!(!quoted, "unbalanced quotes in {line}");
    if !word.is_empty() {
        words.push(word);
    }
    words
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Exit code, stdout and stderr of a command run in `dir` on `data/`.
fn run(dir: &Path, args: &[&str]) -> (i32, String, String) {
    run_on(dir, "data", args)
}

/// As [`run`], on the data directory `data`.
fn run_on(dir: &Path, data: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .current_dir(dir)
        .args(args)
        .args(["--data-dir", data])
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

/// The README's send, presenting `cert` (none when `None`).
fn send(dir: &Path, port: u16, cert: Option<&str>, text: &str) -> (i32, String, String) {
    let server = format!("https://127.0.0.1:{port}");
    let mut args = vec!["send", "--server", &server, "--ca", "certs/ca.pem"];
    let (pem, key);
    if let Some(cert) = cert {
        pem = format!("{cert}.pem");
        key = format!("{cert}.key");
        args.extend(["--client-cert", &pem, "--client-key", &key]);
    }
    args.extend([
        "--as",
        HUB_USER,
        "--patient",
        PATIENT,
        "--type",
        "action",
        "--text",
        text,
        "--json",
    ]);
    run(dir, &args)
}

fn last_event(out: &str) -> Value {
    serde_json::from_str(out.lines().last().unwrap_or("null")).unwrap()
}

fn sent(dir: &Path, id: &str) -> Value {
    let (code, out, err) = run(dir, &["sent", "--from", "Y00001", "--json"]);
    assert_eq!(code, 0, "{err}");
    out.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|t| t["id"] == id)
        .unwrap_or_else(|| panic!("no sent task {id} in {out}"))
}

fn sent_until(dir: &Path, id: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + gpc_testkit::PATIENCE;
    loop {
        let seen = sent(dir, id);
        if done(&seen) {
            return seen;
        }
        assert!(Instant::now() < deadline, "gave up; last seen {seen:#}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_readme_example_sends_over_mutual_tls_and_hears_back_the_same_way() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let port = free_port();
    let readme = readme_commands();
    let [certs, serve, send_task] = readme.as_slice() else {
        panic!("the README's example is certs, serve, send: {readme:?}");
    };
    assert_eq!(
        (certs[0].as_str(), serve[0].as_str(), send_task[0].as_str()),
        ("certs", "serve", "send")
    );
    let certs = Command::new(BIN)
        .current_dir(dir)
        .args(certs)
        .output()
        .unwrap();
    assert!(certs.status.success(), "{certs:?}");
    let serve = Serve::run(dir, port, serve);
    assert!(
        !serve.printed.contains("warning"),
        "every organisation has its certificate: {}",
        serve.printed
    );

    // The hub sends as the README does (on this test's port), presenting its
    // own certificate: delivered through the SSP.
    let send_task: Vec<String> = send_task
        .iter()
        .map(|a| a.replace("127.0.0.1:8080", &format!("127.0.0.1:{port}")))
        .chain(["--json".to_owned()])
        .collect();
    let send_task: Vec<&str> = send_task.iter().map(String::as_str).collect();
    let (code, out, err) = run(dir, &send_task);
    assert_eq!(code, 0, "{out}{err}");
    let delivered = last_event(&out);
    assert_eq!(delivered["status"], "Delivered", "{out}");
    let id = delivered["task_id"].as_str().unwrap().to_owned();
    let theirs = sent(dir, &id)["provider_task_id"]
        .as_str()
        .unwrap()
        .to_owned();

    // The practice takes it; serve's update worker tells the hub through the
    // SSP, presenting the practice's certificate.
    let (code, _, err) = run(
        dir,
        &["task", "take", &theirs, "--org", "GPC001", "--as", GILBERT],
    );
    assert_eq!(code, 0, "{err}");
    let task = sent_until(dir, &id, |t| t["version"] == 2);
    assert_eq!(task["state"], "accepted");
    let (code, out, err) = run(dir, &["audit", "--ssp", "--json"]);
    assert_eq!(code, 0, "{err}");
    let audit: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let update = audit
        .iter()
        .find(|r| r["interaction"] == gpc_domain::Interaction::CreateOrderResponse.id())
        .unwrap_or_else(|| panic!("no OrderResponse through the SSP: {out}"));
    assert_eq!(update["from_asid"], gpc_testkit::GPC001_ASID);
    assert_eq!(update["status"], 201, "{update}");

    // The hub cancels it over the same.
    let server = format!("https://127.0.0.1:{port}");
    let hub = [
        "--server",
        &server,
        "--ca",
        "certs/ca.pem",
        "--client-cert",
        "certs/Y00001.pem",
        "--client-key",
        "certs/Y00001.key",
    ];
    let mut cancel = vec![
        "cancel",
        &id,
        "--as",
        HUB_USER,
        "--reason",
        "Sent in error.",
    ];
    cancel.extend(hub);
    let (code, out, err) = run(dir, &cancel);
    assert_eq!(code, 0, "{out}{err}");

    // Another organisation's certificate with the hub's ASID: refused by the
    // SSP, shown as Rejected with its code.
    let (code, out, err) = send(dir, port, Some("certs/GPC001"), "Wrong certificate.");
    assert_eq!(code, 2, "{out}{err}");
    let rejected = last_event(&out);
    assert_eq!(rejected["status"], "Rejected", "{out}");
    let detail = rejected["detail"].as_str().unwrap();
    assert!(
        detail.contains("ASID_CHECK_FAILED_MESSAGESENDER"),
        "{detail}"
    );

    // No certificate: refused at the handshake, said in one line, nothing sent.
    let (code, out, err) = send(dir, port, None, "No certificate.");
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.starts_with("error: "), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("CertificateRequired"), "{err}");

    // A task that failed (the SSP named was not there) is retried over
    // mutual TLS. On an outbox of its own, so that serve's worker does not
    // take the retry first.
    let dead = format!("https://127.0.0.1:{}/ssp", free_port());
    let mut failing = vec!["send", "--ssp", &dead, "--retry-delays-ms", "1"];
    failing.extend(hub);
    failing.extend([
        "--as",
        HUB_USER,
        "--patient",
        PATIENT,
        "--type",
        "info",
        "--text",
        "Retried.",
        "--json",
    ]);
    let (code, out, err) = run_on(dir, "retried", &failing);
    assert_eq!(code, 3, "{out}{err}");
    let failed = last_event(&out)["task_id"].as_str().unwrap().to_owned();
    let mut retry = vec!["retry", failed.as_str(), "--json"];
    retry.extend(hub);
    let (code, out, err) = run_on(dir, "retried", &retry);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(last_event(&out)["status"], "Delivered", "{out}");

    let log = std::fs::read_to_string(dir.join("serve.log")).unwrap();
    for secret in [PATIENT, "DAWES", "Please review medication"] {
        assert!(!log.contains(secret), "{secret} in the log");
    }
}

/// A CA of the test's own, so that it can also issue an expired certificate.
fn pki(dir: &Path) -> DevCa {
    let ca = DevCa::new("test CA").unwrap();
    let systems: Vec<(String, String)> = gpc_directory::demo_region()
        .organisations
        .into_iter()
        .filter_map(|o| Some((o.ods.as_str().to_owned(), o.asid?.as_str().to_owned())))
        .collect();
    ca.write_set(&dir.join("certs"), &systems).unwrap();
    ca
}

#[test]
fn an_expired_certificate_or_none_is_refused_by_the_directory_and_by_the_ssp() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let ca = pki(dir);
    ca.issue(
        gpc_testkit::Y00001_ASID,
        Some("Y00001"),
        Validity::expired(),
    )
    .unwrap()
    .write(&dir.join("certs"), "expired", gpc_testkit::Y00001_ASID)
    .unwrap();
    let port = free_port();
    let _serve = Serve::start(dir, port);
    let (code, out, err) = send(dir, port, Some("certs/expired"), "Expired.");
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("CertificateExpired"), "{err}");
    let (code, out, _) = run(dir, &["sent", "--from", "Y00001", "--json"]);
    assert_eq!(code, 0);
    assert!(out.trim().is_empty(), "nothing was queued: {out}");

    // With the directory on plain HTTP, the SSP is the one that refuses:
    // the task is Failed with why, and stays to be retried.
    let d = free_port();
    let _directory = part(
        dir,
        "directory",
        format!(
            "listen = \"127.0.0.1:{d}\"\ndata_dir = \"directory-data\"\n\
             [urls]\nprovider = \"https://127.0.0.1:{port}\"\n"
        ),
    );
    let directory = format!("http://127.0.0.1:{d}");
    let server = format!("https://127.0.0.1:{port}");
    for (cert, alert) in [
        (Some("certs/expired"), "CertificateExpired"),
        (None, "CertificateRequired"),
    ] {
        let mut args = vec![
            "send",
            "--server",
            &server,
            "--directory",
            &directory,
            "--ca",
            "certs/ca.pem",
            "--retry-delays-ms",
            "1",
        ];
        if cert.is_some() {
            args.extend([
                "--client-cert",
                "certs/expired.pem",
                "--client-key",
                "certs/expired.key",
            ]);
        }
        args.extend([
            "--as",
            HUB_USER,
            "--patient",
            PATIENT,
            "--type",
            "info",
            "--text",
            "Refused.",
            "--json",
        ]);
        let (code, out, err) = run_on(dir, "refused", &args);
        assert_eq!(code, 3, "{cert:?}: {out}{err}");
        let failed = last_event(&out);
        assert_eq!(failed["status"], "Failed", "{out}");
        let detail = failed["detail"].as_str().unwrap();
        assert!(
            detail.contains(&format!("refused the TLS connection ({alert})")),
            "{detail}"
        );
        assert!(detail.contains("Y00001"), "{detail}");
    }
}

#[test]
fn a_missing_organisation_certificate_is_reported_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    pki(dir);
    let certs: PathBuf = dir.join("certs");
    std::fs::remove_file(certs.join("Y00001.key")).unwrap();
    let serve = Serve::start(dir, free_port());
    let warning = serve
        .printed
        .lines()
        .find(|l| l.starts_with("warning: "))
        .unwrap_or_else(|| panic!("no warning in {}", serve.printed));
    assert!(warning.contains("No certificate for Y00001"), "{warning}");
    assert!(warning.contains("Y00001.pem and Y00001.key"), "{warning}");
    assert_eq!(
        serve.printed.matches("warning: ").count(),
        1,
        "{}",
        serve.printed
    );
}

#[test]
fn sender_tls_options_come_with_a_ca() {
    let (code, _, err) = run(
        Path::new("."),
        &[
            "send",
            "--client-cert",
            "x.pem",
            "--client-key",
            "x.key",
            "--as",
            HUB_USER,
            "--patient",
            PATIENT,
            "--type",
            "info",
            "--text",
            "x",
        ],
    );
    assert_eq!(code, 1);
    assert!(err.contains("--ca"), "{err}");
    let (code, _, err) = run(Path::new("."), &["serve", "--sender-certs", "certs"]);
    assert_eq!(code, 1);
    assert!(err.contains("--ca"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = run(dir.path(), &["retry", "x", "--ca", "missing-ca.pem"]);
    assert_eq!(code, 1);
    assert!(err.contains("missing-ca.pem"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    // The same from the environment.
    let out = Command::new(BIN)
        .current_dir(dir.path())
        .args(["cancel", "x", "--as", HUB_USER, "--reason", "r"])
        .env("GPC_CA", "env-ca.pem")
        .env("GPC_CLIENT_CERT", "env-cert.pem")
        .env("GPC_CLIENT_KEY", "env-cert.key")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("env-ca.pem"), "{err}");
}

/// Starts a part from its configuration file in `dir`; killed when dropped.
fn part(dir: &Path, name: &str, config: String) -> Serve {
    let file = dir.join(format!("{name}.toml"));
    std::fs::write(&file, config).unwrap();
    let mut child = Command::new(BIN)
        .current_dir(dir)
        .args([name, "--config"])
        .arg(&file)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.join(format!("{name}.log"))).unwrap())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = String::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        printed.push_str(&line);
        printed.push('\n');
        if line.contains("Ctrl-C") {
            break;
        }
    }
    assert!(
        printed.contains("Ctrl-C"),
        "{name} did not start: {printed}"
    );
    std::thread::spawn(move || for _ in lines {});
    Serve { child, printed }
}

#[test]
fn the_parts_run_apart_send_and_hear_back_over_mutual_tls() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    pki(dir);
    let (p, s, d) = (free_port(), free_port(), free_port());
    let provider = format!("https://127.0.0.1:{p}");
    let ssp = format!("https://127.0.0.1:{s}/ssp");
    let directory = format!("https://127.0.0.1:{d}");
    // The provider accepts only the SSP, and sends its updates through it.
    let _provider = part(
        dir,
        "provider",
        format!(
            "listen = \"127.0.0.1:{p}\"\ndata_dir = \"data\"\n\
             [urls]\nssp = \"{ssp}\"\ndirectory = \"{directory}\"\n\
             [tls]\ncert = \"certs/GPC001.pem\"\nkey = \"certs/GPC001.key\"\n\
             client_ca = \"certs/ca.pem\"\nallow_clients = [\"spine-security-proxy\"]\n\
             ca = \"certs/ca.pem\"\n\
             [consumer]\ncerts_dir = \"certs\"\n"
        ),
    );
    let _ssp = part(
        dir,
        "ssp",
        format!(
            "listen = \"127.0.0.1:{s}\"\ndata_dir = \"ssp-data\"\n\
             [urls]\nprovider = \"{provider}\"\n\
             [tls]\ncert = \"certs/ssp.pem\"\nkey = \"certs/ssp.key\"\nclient_ca = \"certs/ca.pem\"\n\
             [ssp]\nca = \"certs/ca.pem\"\nclient_cert = \"certs/ssp.pem\"\nclient_key = \"certs/ssp.key\"\n"
        ),
    );
    let _directory = part(
        dir,
        "directory",
        format!(
            "listen = \"127.0.0.1:{d}\"\ndata_dir = \"directory-data\"\n\
             [urls]\nprovider = \"{provider}\"\n\
             [tls]\ncert = \"certs/ssp.pem\"\nkey = \"certs/ssp.key\"\nclient_ca = \"certs/ca.pem\"\n"
        ),
    );

    // The hub sends on the provider's data, as one multi-tenant deployment
    // holds both organisations.
    let (code, out, err) = run(
        dir,
        &[
            "send",
            "--ssp",
            &ssp,
            "--directory",
            &directory,
            "--ca",
            "certs/ca.pem",
            "--client-cert",
            "certs/Y00001.pem",
            "--client-key",
            "certs/Y00001.key",
            "--as",
            HUB_USER,
            "--patient",
            PATIENT,
            "--type",
            "action",
            "--text",
            "Across three hosts.",
            "--json",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");
    let id = last_event(&out)["task_id"].as_str().unwrap().to_owned();
    let theirs = sent(dir, &id)["provider_task_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (code, _, err) = run(
        dir,
        &["task", "take", &theirs, "--org", "GPC001", "--as", GILBERT],
    );
    assert_eq!(code, 0, "{err}");
    // The provider part's update worker tells the hub, through the SSP.
    let task = sent_until(dir, &id, |t| t["version"] == 2);
    assert_eq!(task["state"], "accepted");
    let (code, out, err) = run_on(dir, "ssp-data", &["audit", "--ssp", "--json"]);
    assert_eq!(code, 0, "{err}");
    let update = out
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|r| r["interaction"] == gpc_domain::Interaction::CreateOrderResponse.id())
        .unwrap_or_else(|| panic!("no OrderResponse through the SSP: {out}"));
    assert_eq!(update["from_asid"], gpc_testkit::GPC001_ASID);
    assert_eq!(update["status"], 201, "{update}");
}
