//! SIGKILL in the middle of work: the `gpc-tasks serve` provider while eight
//! clients create tasks as fast as they can, and senders while their tasks
//! are on the wire. After a restart every acknowledged task is there exactly
//! once, every outbox task is delivered exactly once, and both SQLite files
//! pass `PRAGMA integrity_check`.

// A test crate sees every dev-dependency of its package, and uses only some.
#![allow(unused_crate_dependencies)]
// Helpers outside `#[test]` functions panic on purpose too: a failure is the test's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gpc_server::ServerConfig;
use gpc_store::{SqliteStore, Store};
use gpc_testkit::*;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_gpc-tasks");

/// `gpc-tasks serve` on a free port; its base URL once it listens.
fn serve(data_dir: &Path, env: &[(&str, &str)]) -> (Child, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data_dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("binary starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().expect("a first line").unwrap();
    let addr = first
        .split("listening on ")
        .nth(1)
        .unwrap_or_else(|| panic!("unexpected first line: {first}"))
        .trim()
        .to_owned();
    std::thread::spawn(move || for _ in lines {});
    (child, format!("http://{addr}"))
}

fn integrity_ok(db: &Path) {
    let conn = rusqlite::Connection::open(db).unwrap();
    let result: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(result, "ok", "{}", db.display());
}

/// How many stored tasks carry `identifier` among their keys, and their ids.
fn holders(conn: &rusqlite::Connection, identifier: &str) -> Vec<String> {
    let mut stmt = conn
        .prepare("SELECT id FROM tasks WHERE instr(idempotency_keys, ?1) > 0")
        .unwrap();
    stmt.query_map([identifier], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_concurrent_creates_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, base) = serve(dir.path(), &[]);
    // (identifier, id) of every Order acknowledged with a 201.
    let acknowledged = Arc::new(Mutex::new(Vec::<(String, String)>::new()));
    let client = reqwest::Client::new();
    let mut clients = Vec::new();
    for _ in 0..8 {
        let (client, base, acknowledged) = (client.clone(), base.clone(), acknowledged.clone());
        clients.push(tokio::spawn(async move {
            loop {
                let order = dawes_order();
                let identifier = order["identifier"][0]["value"].as_str().unwrap().to_owned();
                let jwt = Jwt::new("organization/*.write", org_record("GPC001")).encode();
                let sent = client
                    .post(format!("{base}/GPC001/DSTU2/1/Order"))
                    .headers(headers(CREATE, GPC001_ASID, &jwt))
                    .header("content-type", JSON)
                    .header("prefer", "return=minimal")
                    .body(order.to_string())
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status() == 201 => {
                        let location = r.headers()["location"].to_str().unwrap().to_owned();
                        let id = location.split("/Order/").nth(1).unwrap();
                        let id = id.split('/').next().unwrap().to_owned();
                        acknowledged.lock().unwrap().push((identifier, id));
                    }
                    Ok(r) => panic!("unexpected {}", r.status()),
                    // The server is gone.
                    Err(_) => return,
                }
            }
        }));
    }
    // Until a good number of tasks are in (however long a busy machine
    // takes), then no warning at all.
    wait_for(
        PATIENCE,
        "150 acknowledged creates",
        async || match acknowledged.lock().unwrap().len() {
            n if n >= 150 => Ok(()),
            n => Err(n),
        },
    )
    .await;
    server.kill().unwrap(); // SIGKILL
    server.wait().unwrap();
    for c in clients {
        c.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() >= 150, "{} creates", acknowledged.len());

    let db = dir.path().join(gpc_store::DATABASE_FILE);
    integrity_ok(&db);
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        for (identifier, id) in &acknowledged {
            assert_eq!(
                holders(&conn, identifier),
                std::slice::from_ref(id),
                "{identifier}"
            );
        }
        let duplicates: i64 = conn
            .query_row(
                "SELECT count(*) FROM (SELECT system, value FROM task_identifiers \
                 GROUP BY tenant, sender_asid, system, value HAVING count(*) > 1)",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(duplicates, 0);
    }

    // Restarted, it answers, and a retried Order is the one it already holds.
    let (mut server, base) = serve(dir.path(), &[]);
    let (identifier, id) = &acknowledged[acknowledged.len() / 2];
    let mut again = dawes_order();
    again["identifier"][0]["value"] = identifier.as_str().into();
    let jwt = Jwt::new("organization/*.write", org_record("GPC001")).encode();
    let r = client
        .post(format!("{base}/GPC001/DSTU2/1/Order"))
        .headers(headers(CREATE, GPC001_ASID, &jwt))
        .header("content-type", JSON)
        .body(again.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["id"], id.as_str());
    server.kill().unwrap();
    server.wait().unwrap();
    integrity_ok(&db);
}

fn sent_tasks(data_dir: &Path) -> Vec<serde_json::Value> {
    let out = Command::new(BIN)
        .args([
            "sent",
            "--from",
            "Y00001",
            "--json",
            "--limit",
            "100",
            "--data-dir",
        ])
        .arg(data_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
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
async fn senders_killed_mid_delivery_leave_a_sound_outbox_and_deliver_once() {
    let provider = TestServer::start_with(
        tempfile::tempdir().unwrap(),
        ServerConfig {
            listen: format!("127.0.0.1:{}", free_port()).parse().unwrap(),
            parts: gpc_server::Parts::PROVIDER,
            ..ServerConfig::default()
        },
    )
    .await;
    // The provider stores each of the first three POSTs at once; the answers
    // are held back, so those senders are killed with the task on the wire.
    let slow = DelayProxy::start(&provider.base, 3, Duration::from_secs(60)).await;
    let mut spine_config = ServerConfig::default();
    spine_config.ssp.provider_base = Some(slow.base.clone());
    spine_config.ssp.timeout = Duration::from_secs(90);
    let spine = TestServer::start_with(tempfile::tempdir().unwrap(), spine_config).await;
    let consumer = tempfile::tempdir().unwrap();

    let patients = [
        "9476719931",
        "9476719915",
        "9476719974",
        "9476719958",
        "9476719931",
        "9476719915",
    ];
    let mut senders: Vec<Child> = patients
        .iter()
        .enumerate()
        .map(|(i, nhs)| {
            Command::new(BIN)
                .args([
                    "send",
                    "--as",
                    "G11111116",
                    "--patient",
                    nhs,
                    "--type",
                    "action",
                ])
                .args([
                    "--text",
                    &format!("Crash test {i}"),
                    "--to",
                    "GPC001",
                    "--data-dir",
                ])
                .arg(consumer.path())
                .env("GPC_SERVER", &spine.base)
                .env("GPC_REQUEST_TIMEOUT_MS", "120000")
                .env("GPC_LEASE_MS", "1500")
                .env("RUST_LOG", "warn")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    // Wait until three Orders are stored and held on the wire, then kill
    // every sender, whatever it is doing.
    wait_for(PATIENCE, "three senders' POSTs", async || {
        match slow.posts() {
            n if n >= 3 => Ok(()),
            n => Err(n),
        }
    })
    .await;
    for s in &mut senders {
        let _ = s.kill();
        s.wait().unwrap();
    }
    integrity_ok(&consumer.path().join("outbox.db"));
    let recorded = sent_tasks(consumer.path());
    assert!(recorded.len() >= 3, "{recorded:?}");
    assert!(
        recorded.iter().any(|t| t["status"] == "Sending"),
        "some were left mid-delivery: {recorded:?}"
    );

    // The next start of the consumer resumes every task left behind.
    let (mut resumed, _) = serve(
        consumer.path(),
        &[
            ("GPC_SSP_URL", &format!("{}/ssp", spine.base)),
            ("GPC_DIRECTORY_URL", &spine.base),
        ],
    );
    wait_for(PATIENCE, "every task delivered", async || {
        let statuses: Vec<String> = sent_tasks(consumer.path())
            .iter()
            .map(|t| t["status"].as_str().unwrap().to_owned())
            .collect();
        if statuses.iter().all(|s| s == "Delivered") {
            Ok(())
        } else {
            Err(statuses)
        }
    })
    .await;
    resumed.kill().unwrap();
    resumed.wait().unwrap();
    integrity_ok(&consumer.path().join("outbox.db"));

    // Each recorded task is in the inbox exactly once, under the id the sender recorded.
    let sent = sent_tasks(consumer.path());
    assert_eq!(sent.len(), recorded.len(), "nothing appeared or vanished");
    let store = SqliteStore::open(provider.dir.path()).unwrap();
    let inbox = store
        .inbox(&gpc_domain::OdsCode::parse("GPC001").unwrap(), 1000, None)
        .await
        .unwrap();
    assert_eq!(inbox.len(), sent.len(), "one stored task per sent task");
    for task in &sent {
        let id = task["provider_task_id"].as_str().unwrap();
        assert_eq!(inbox.iter().filter(|t| t.id == id).count(), 1, "{task}");
    }
    assert!(slow.posts() > 3, "the held Orders were sent again");
    drop(store);
    integrity_ok(&provider.dir.path().join(gpc_store::DATABASE_FILE));
}
