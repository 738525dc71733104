//! `gpc-tasks certs`, `serve` over mutual TLS with the SSP, and
//! `audit --ssp`, through the binary.

// A test crate sees every dev-dependency of its package, and uses only some.
#![allow(unused_crate_dependencies)]
// Helpers outside `#[test]` functions panic on purpose too: a failure is the test's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gpc_testkit::*;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_gpc-tasks");

fn run(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN).args(args).output().expect("binary runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[tokio::test]
async fn certs_then_a_task_through_the_ssp_over_mutual_tls_then_its_audit() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    let data = dir.path().join("data");
    let (ok, out, err) = run(&["certs", "--out", path(&certs)]);
    assert!(ok, "{err}");
    assert!(out.contains("CN=200000000370"), "{out}");
    for file in [
        "ca.pem",
        "ssp.pem",
        "ssp.key",
        "GPC001.pem",
        "Y00001.key",
        "XOA001.pem",
    ] {
        assert!(certs.join(file).exists(), "{file}");
    }
    assert!(
        !certs.join("Y12345.pem").exists(),
        "no Spine system, no certificate"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(certs.join("Y00001.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "keys are private: {mode:o}");
    }

    let file = |name: &str| certs.join(name).to_str().unwrap().to_owned();
    let mut server = Command::new(BIN)
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            path(&data),
        ])
        .args([
            "--tls-cert",
            &file("ssp.pem"),
            "--tls-key",
            &file("ssp.key"),
        ])
        .args(["--client-ca", &file("ca.pem")])
        .args(["--ssp-ca", &file("ca.pem")])
        .args([
            "--ssp-client-cert",
            &file("ssp.pem"),
            "--ssp-client-key",
            &file("ssp.key"),
        ])
        .env("RUST_LOG", "trace")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.path().join("server.log")).unwrap())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let addr = first
        .split("listening on ")
        .nth(1)
        .unwrap()
        .trim()
        .to_owned();
    let mut printed = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let done = line.contains("Ctrl-C");
        printed.push(line);
        if done {
            break;
        }
    }
    let text = printed.join("\n");
    let base = format!("https://{addr}");
    assert!(text.contains(&format!("{base}/GPC001/DSTU2/1")), "{text}");
    assert!(text.contains(&format!("{base}/ssp/")), "{text}");
    std::thread::spawn(move || for _ in lines {});

    let tls = gpc_server::tls::client_config(&gpc_server::tls::ClientTls {
        ca: certs.join("ca.pem"),
        identity: Some((certs.join("Y00001.pem"), certs.join("Y00001.key"))),
    })
    .unwrap();
    let client = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .build()
        .unwrap();
    let jwt = Jwt::new("organization/*.write", org_record("GPC001")).encode();
    let response = client
        .post(format!("{base}/ssp/{base}/GPC001/DSTU2/1/Order"))
        .headers(headers(CREATE, GPC001_ASID, &jwt))
        .header("content-type", JSON)
        .body(dawes_order().to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);

    let status = Command::new("kill")
        .args(["-INT", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    assert!(server.wait().unwrap().success());

    let (ok, out, err) = run(&["audit", "--ssp", "--json", "--data-dir", path(&data)]);
    assert!(ok, "{err}");
    let rows: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 1, "{out}");
    assert_eq!(rows[0]["status"], 201);
    assert_eq!(rows[0]["from_asid"], Y00001_ASID);
    assert_eq!(rows[0]["to_asid"], GPC001_ASID);
    assert_eq!(rows[0]["interaction"], CREATE);
    assert_eq!(rows[0]["target"], format!("{base}/GPC001/DSTU2/1/Order"));
    assert!(rows[0]["refusal"].is_null());
    assert!(rows[0]["duration_us"].as_u64().unwrap() > 0);

    let (ok, out, _) = run(&["audit", "--ssp", "--data-dir", path(&data)]);
    assert!(ok);
    assert!(
        out.contains(&format!("201 POST {base}/GPC001/DSTU2/1/Order")),
        "{out}"
    );
    let (ok, out, _) = run(&[
        "audit",
        "--ssp",
        "--since",
        "2200-01-01",
        "--data-dir",
        path(&data),
    ]);
    assert!(ok);
    assert!(out.trim().is_empty(), "{out}");
    let (ok, _, err) = run(&[
        "audit",
        "--ssp",
        "--org",
        "GPC001",
        "--data-dir",
        path(&data),
    ]);
    assert!(!ok, "--org is for the provider audit");
    assert!(err.contains("--org"), "{err}");

    let log = std::fs::read_to_string(dir.path().join("server.log")).unwrap();
    assert!(log.contains("ssp request"), "the log is captured");
    for secret in ["9476719931", "DAWES", "Minnie"] {
        assert!(!log.contains(secret), "{secret} in the log");
    }
}

#[test]
fn tls_options_must_come_in_pairs() {
    let (ok, _, err) = run(&["serve", "--tls-cert", "x.pem"]);
    assert!(!ok);
    assert!(err.contains("--tls-key"), "{err}");
    let (ok, _, err) = run(&[
        "serve",
        "--ssp-client-cert",
        "x.pem",
        "--ssp-client-key",
        "x.key",
    ]);
    assert!(!ok);
    assert!(err.contains("--ssp-ca"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let (ok, _, err) = run(&[
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        path(dir.path()),
        "--tls-cert",
        path(&missing),
        "--tls-key",
        path(&missing),
    ]);
    assert!(!ok);
    assert!(err.contains("missing.pem"), "{err}");
}

/// sign-in.md §2.5: `serve --tls-cert` names its session cookie `__Host-`
/// and marks it Secure (and HttpOnly, SameSite=Lax, `Path=/`, no Domain, as
/// the prefix requires); the cookie lets its holder in over HTTPS.
#[tokio::test]
async fn over_https_the_session_cookie_is_secure_and_host_prefixed() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    let (ok, _, err) = run(&["certs", "--out", path(&certs)]);
    assert!(ok, "{err}");
    let file = |name: &str| certs.join(name).to_str().unwrap().to_owned();
    let mut server = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path().join("data"))
        .args([
            "--tls-cert",
            &file("ssp.pem"),
            "--tls-key",
            &file("ssp.key"),
        ])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(server.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let addr = first
        .split("listening on ")
        .nth(1)
        .unwrap()
        .trim()
        .to_owned();
    std::thread::spawn(move || for _ in lines {});
    let base = format!("https://{addr}");
    let tls = gpc_server::tls::client_config(&gpc_server::tls::ClientTls {
        ca: certs.join("ca.pem"),
        identity: None,
    })
    .unwrap();
    let client = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let signed_in = client
        .post(format!("{base}/sign-in"))
        .header("origin", &base)
        .form(&[("org", "Y00001"), ("user", "G11111116")])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 303);
    let set = signed_in.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(set.starts_with("__Host-gpc_session="), "{set}");
    for part in ["; Path=/;", "; HttpOnly", "; SameSite=Lax", "; Secure"] {
        assert!(set.contains(part), "{part} not in {set}");
    }
    assert!(!set.to_ascii_lowercase().contains("domain="), "{set}");
    let cookie = set.split(';').next().unwrap().to_owned();
    let page = client
        .get(format!("{base}/patient"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    // Under the plain HTTP name the same token is no session here.
    let plain = cookie.replacen("__Host-", "", 1);
    let page = client
        .get(format!("{base}/patient"))
        .header("cookie", &plain)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 303);
    let _ = server.kill();
    let _ = server.wait();
}
