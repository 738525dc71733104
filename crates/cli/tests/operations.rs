//! What an operator runs `gpc-tasks serve` with: logs that are plain text
//! when they go to a file (or JSON lines on request), the metrics and health
//! listener, and `gpc-tasks backup` while creates are in flight, whose copy
//! restored into a new data directory holds every acknowledged task.

// A test crate sees every dev-dependency of its package, and uses only some.
#![allow(unused_crate_dependencies)]
// Helpers outside `#[test]` functions panic on purpose too: a failure is the test's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gpc_store::Store;
use gpc_testkit::*;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};

const BIN: &str = env!("CARGO_BIN_EXE_gpc-tasks");

/// `gpc-tasks serve` with `args` on `data_dir`, its stderr into `log`; its
/// base URL and every line it printed up to "press Ctrl-C".
fn serve(data_dir: &Path, args: &[&str], log: &Path) -> (Child, String, Vec<String>) {
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .args(args)
        .env("RUST_LOG", "info")
        .env_remove("NO_COLOR")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("binary starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let done = line.contains("press Ctrl-C");
        printed.push(line);
        if done {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    let addr = printed[0]
        .split("listening on ")
        .nth(1)
        .unwrap_or_else(|| panic!("unexpected first line: {printed:?}"))
        .trim()
        .to_owned();
    (child, format!("http://{addr}"), printed)
}

/// Ctrl-C, as a person stops it, and the clean exit.
fn interrupt(child: Child) {
    stop_with(child, "-INT");
}

/// `signal` (as `kill` names it), and the clean exit.
fn stop_with(mut child: Child, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
}

fn run(args: &[&str]) -> Output {
    tokio::task::block_in_place(|| Command::new(BIN).args(args).output().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_to_a_file_carry_no_colour_and_json_lines_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("text.log");
    let (server, base, _) = serve(&dir.path().join("data"), &[], &log);
    let (status, _, _) = send(
        reqwest::Client::new()
            .get(format!("{base}/GPC001/DSTU2/1/metadata"))
            .headers(headers(
                METADATA,
                GPC001_ASID,
                &Jwt::new("organization/*.read", org_record("GPC001")).encode(),
            )),
    )
    .await;
    assert_eq!(status, 200);
    interrupt(server);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("store opened"), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "escape sequences in a log file:\n{text}"
    );

    let log = dir.path().join("json.log");
    let (server, _, _) = serve(&dir.path().join("data"), &["--log-format", "json"], &log);
    // As a service manager stops it: a clean exit too.
    stop_with(server, "-TERM");
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let opened = lines
        .iter()
        .find(|l| l["message"] == "store opened")
        .unwrap_or_else(|| panic!("no `store opened` in\n{text}"));
    assert_eq!(opened["level"], "INFO");
    assert!(opened["timestamp"].is_string(), "{opened}");
    assert!(
        opened["schema_version"].is_number(),
        "the event's fields: {opened}"
    );
    assert!(!text.contains('\u{1b}'), "{text}");

    let out = run(&["serve", "--log-format", "yaml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("yaml"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_answers_health_and_metrics_on_its_own_listener() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("serve.log");
    let (server, base, printed) = serve(
        &dir.path().join("data"),
        &["--metrics-listen", "127.0.0.1:0"],
        &log,
    );
    let metrics_url = printed
        .iter()
        .find_map(|l| l.strip_prefix("metrics: "))
        .unwrap_or_else(|| panic!("no metrics line in {printed:?}"))
        .split(' ')
        .next()
        .unwrap()
        .to_owned();
    let ops = metrics_url.trim_end_matches("/metrics").to_owned();
    let client = reqwest::Client::new();
    for (path, want) in [("/livez", "ok\n"), ("/readyz", "ready\n")] {
        let r = client.get(format!("{ops}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.text().await.unwrap(), want);
    }
    // Not on the clients' port.
    let r = client.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let text = client
        .get(&metrics_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(
            "gpc_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"} 1"
        ),
        "{text}"
    );
    assert!(text.contains("gpc_outbox_depth{kind=\"task\"} 0"), "{text}");
    interrupt(server);

    let out = run(&["serve", "--metrics-listen", "nowhere"]);
    assert_eq!(out.status.code(), Some(1));
}

/// Creates as fast as four clients can, until told to stop; the (identifier,
/// id) of every 201.
fn creates(
    base: &str,
    stop: &Arc<Mutex<bool>>,
) -> (Arc<Mutex<Vec<String>>>, Vec<tokio::task::JoinHandle<()>>) {
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let client = reqwest::Client::new();
    let clients = (0..4)
        .map(|_| {
            let (client, base, acknowledged, stop) = (
                client.clone(),
                base.to_owned(),
                acknowledged.clone(),
                stop.clone(),
            );
            tokio::spawn(async move {
                while !*stop.lock().unwrap() {
                    let jwt = Jwt::new("organization/*.write", org_record("GPC001")).encode();
                    let r = client
                        .post(format!("{base}/GPC001/DSTU2/1/Order"))
                        .headers(headers(CREATE, GPC001_ASID, &jwt))
                        .header("content-type", JSON)
                        .header("prefer", "return=minimal")
                        .body(dawes_order().to_string())
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status(), 201);
                    let location = r.headers()["location"].to_str().unwrap();
                    let id = location
                        .split("/Order/")
                        .nth(1)
                        .unwrap()
                        .split('/')
                        .next()
                        .unwrap();
                    acknowledged.lock().unwrap().push(id.to_owned());
                }
            })
        })
        .collect();
    (acknowledged, clients)
}

async fn acknowledged_at_least(acknowledged: &Arc<Mutex<Vec<String>>>, n: usize) {
    wait_for(
        PATIENCE,
        &format!("{n} acknowledged creates"),
        async || match acknowledged.lock().unwrap().len() {
            have if have >= n => Ok(()),
            have => Err(have),
        },
    )
    .await;
}

fn integrity_ok(db: &Path) {
    let conn = rusqlite::Connection::open(db).unwrap();
    let result: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(result, "ok", "{}", db.display());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_load_restores_every_acknowledged_task() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (server, base, _) = serve(&data, &[], &dir.path().join("serve.log"));
    let stop = Arc::new(Mutex::new(false));
    let (acknowledged, clients) = creates(&base, &stop);
    acknowledged_at_least(&acknowledged, 100).await;

    // Every task acknowledged before the backup starts must be in it.
    let before: Vec<String> = acknowledged.lock().unwrap().clone();
    let copy = dir.path().join("backups").join("gpc.db");
    std::fs::create_dir_all(copy.parent().unwrap()).unwrap();
    let out = run(&[
        "backup",
        "--data-dir",
        data.to_str().unwrap(),
        "--to",
        copy.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let during = acknowledged.lock().unwrap().len();
    assert!(
        during > before.len(),
        "no create was acknowledged during the backup"
    );
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.contains("gpc.db.outbox"), "{printed}");
    // The creates went on during the backup and after it.
    acknowledged_at_least(&acknowledged, before.len() + 50).await;
    *stop.lock().unwrap() = true;
    for c in clients {
        c.await.unwrap();
    }
    interrupt(server);
    assert!(!copy.with_extension("db.partial").exists());

    // Restored as the README says: the two files into a new data directory.
    let restored = dir.path().join("restored");
    std::fs::create_dir_all(&restored).unwrap();
    std::fs::copy(&copy, restored.join(gpc_store::DATABASE_FILE)).unwrap();
    std::fs::copy(
        gpc_store::outbox_copy(&copy),
        restored.join(gpc_store::outbox::OUTBOX_FILE),
    )
    .unwrap();
    integrity_ok(&restored.join(gpc_store::DATABASE_FILE));
    integrity_ok(&restored.join(gpc_store::outbox::OUTBOX_FILE));
    let store = gpc_store::SqliteStore::open(&restored).unwrap();
    let gpc001 = gpc_domain::OdsCode::parse("GPC001").unwrap();
    for id in &before {
        assert!(
            store.get_task(&gpc001, id).await.unwrap().is_some(),
            "acknowledged task {id} is not in the backup"
        );
    }
    let held = store.count_tasks(&gpc001).await.unwrap();
    assert!(held >= before.len() as u64, "{held} < {}", before.len());
    drop(store);
    // And the restored directory serves them.
    let out = run(&[
        "inbox",
        "--org",
        "GPC001",
        "--state",
        "all",
        "--limit",
        "100000",
        "--json",
        "--data-dir",
        restored.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().count() as u64,
        held
    );
}

#[test]
fn backup_refuses_what_it_cannot_copy() {
    let dir = tempfile::tempdir().unwrap();
    let to = dir.path().join("copy.db");
    let empty = run_blocking(&[
        "backup",
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--to",
        to.to_str().unwrap(),
    ]);
    assert_eq!(empty.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&empty.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("holds no task store"), "{stderr}");
    assert!(!to.exists());
    let pg = run_blocking(&[
        "backup",
        "--database-url",
        "postgres://nobody@127.0.0.1/none",
        "--to",
        to.to_str().unwrap(),
    ]);
    assert_eq!(pg.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&pg.stderr).contains("pg_dump"));
}

fn run_blocking(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env_remove("DATABASE_URL")
        .output()
        .unwrap()
}

/// `/readyz` follows the database: 503 while PostgreSQL refuses the
/// server's connections, 200 again once it takes them; `/livez` stays 200.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_database() {
    let Some(db) = gpc_store::test_support::TestDatabase::create("readiness").await else {
        return;
    };
    let config = gpc_server::ServerConfig {
        database_url: Some(db.url().to_owned()),
        metrics_listen: Some("127.0.0.1:0".parse().unwrap()),
        ..gpc_server::ServerConfig::default()
    };
    let s = TestServer::start_with(tempfile::tempdir().unwrap(), config).await;
    let ops = format!("http://{}", s.metrics_addr.unwrap());
    let client = reqwest::Client::new();
    let status = async |path: &str| {
        client
            .get(format!("{ops}{path}"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(status("/readyz").await, 200);

    let admin = db.connect_admin().await;
    let refuse = format!(
        "ALTER DATABASE \"{0}\" ALLOW_CONNECTIONS false; \
         SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = '{0}' AND pid <> pg_backend_pid()",
        db.name()
    );
    admin.batch_execute(&refuse).await.unwrap();
    wait_for(PATIENCE, "/readyz to say 503", async || {
        match status("/readyz").await {
            503 => Ok(()),
            other => Err(other),
        }
    })
    .await;
    assert_eq!(status("/livez").await, 200, "the process still answers");

    admin
        .batch_execute(&format!(
            "ALTER DATABASE \"{}\" ALLOW_CONNECTIONS true",
            db.name()
        ))
        .await
        .unwrap();
    wait_for(
        PATIENCE,
        "/readyz to say 200 again",
        async || match status("/readyz").await {
            200 => Ok(()),
            other => Err(other),
        },
    )
    .await;
    s.stop().await;
}
