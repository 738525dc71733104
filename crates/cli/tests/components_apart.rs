//! The parts run apart, each from its TOML configuration: `gpc-tasks
//! provider`, `ssp` and `directory` as three processes, and a task sent
//! through them.

// A test crate sees every dev-dependency of its package, and uses only some.
#![allow(unused_crate_dependencies)]
// Helpers outside `#[test]` functions panic on purpose too: a failure is the test's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_gpc-tasks");

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts one part and waits for its "listening" line.
fn start(part: &str, config: &Path) -> (Child, String) {
    let mut child = Command::new(BIN)
        .args([part, "--config"])
        .arg(config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
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
    std::thread::spawn(move || for _ in lines {});
    (child, printed)
}

/// The status code of a plain GET on loopback.
fn status_of(port: u16, path: &str) -> u16 {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

struct Killed(Vec<Child>);

impl Drop for Killed {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn a_task_crosses_three_separate_processes() {
    let dir = tempfile::tempdir().unwrap();
    let (p, s, d) = (free_port(), free_port(), free_port());
    let provider_url = format!("http://127.0.0.1:{p}");
    let write = |name: &str, text: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let data = |name: &str| dir.path().join(name).display().to_string();
    let provider_conf = write(
        "provider.toml",
        format!(
            "listen = \"127.0.0.1:{p}\"\ndata_dir = \"{}\"\n",
            data("provider-data")
        ),
    );
    let ssp_conf = write(
        "ssp.toml",
        format!(
            "listen = \"127.0.0.1:{s}\"\ndata_dir = \"{}\"\n[urls]\nprovider = \"{provider_url}\"\n[ssp]\ntimeout_ms = 5000\n",
            data("ssp-data")
        ),
    );
    let directory_conf = write(
        "directory.toml",
        format!(
            "listen = \"127.0.0.1:{d}\"\ndata_dir = \"{}\"\n[urls]\nprovider = \"{provider_url}\"\n",
            data("directory-data")
        ),
    );
    let (provider, printed) = start("provider", &provider_conf);
    assert!(
        printed.contains(&format!("{provider_url}/GPC001/DSTU2/1")),
        "{printed}"
    );
    assert!(!printed.contains("Spine Security Proxy"), "{printed}");
    let (ssp, printed) = start("ssp", &ssp_conf);
    assert!(printed.contains("Spine Security Proxy"), "{printed}");
    assert!(!printed.contains("/GPC001/DSTU2/1"), "{printed}");
    let (directory, printed) = start("directory", &directory_conf);
    assert!(printed.contains("personal-demographics"), "{printed}");
    let _running = Killed(vec![provider, ssp, directory]);

    // Each part serves only itself.
    assert_eq!(status_of(s, "/GPC001/DSTU2/1/metadata"), 404);
    assert_eq!(
        status_of(p, "/organisation-directory/FHIR/R4/Organization/GPC001"),
        404
    );
    assert_eq!(
        status_of(d, "/organisation-directory/FHIR/R4/Organization/GPC001"),
        200
    );

    let consumer = dir.path().join("consumer-data");
    let out = Command::new(BIN)
        .args([
            "send",
            "--as",
            "G11111116",
            "--patient",
            "947 671 9931",
            "--type",
            "action",
        ])
        .args([
            "--text",
            "Across three hosts",
            "--server",
            "http://127.0.0.1:1",
        ])
        .arg("--ssp")
        .arg(format!("http://127.0.0.1:{s}/ssp"))
        .arg("--directory")
        .arg(format!("http://127.0.0.1:{d}"))
        .arg("--data-dir")
        .arg(&consumer)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let inbox = Command::new(BIN)
        .args([
            "inbox",
            "--org",
            "GPC001",
            "--json",
            "--data-dir",
            &data("provider-data"),
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&inbox.stdout);
    assert_eq!(text.lines().count(), 1, "{text}");
    assert!(text.contains("Across three hosts"));
    let audit = Command::new(BIN)
        .args(["audit", "--ssp", "--json", "--data-dir", &data("ssp-data")])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&audit.stdout);
    assert!(
        text.lines()
            .any(|l| l.contains("create:order") && l.contains("201")),
        "{text}"
    );
}

#[test]
fn a_bad_configuration_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ssp.toml");
    std::fs::write(&path, "listen = \"127.0.0.1:0\"\n").unwrap();
    let out = Command::new(BIN)
        .args(["ssp", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("urls.provider"));
    std::fs::write(&path, "listen = \"127.0.0.1:0\"\nport = 3\n").unwrap();
    let out = Command::new(BIN)
        .args(["provider", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("port"));
    let out = Command::new(BIN)
        .args(["provider", "--config", "/nonexistent/gpc.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read the configuration"));
}
