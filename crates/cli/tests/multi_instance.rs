//! Several instances, one system: two `gpc-tasks serve` processes on one
//! PostgreSQL database (from `TEST_DATABASE_URL`; CI always sets it).

// A test crate sees every dev-dependency of its package, and uses only some.
#![allow(unused_crate_dependencies)]
// Helpers outside `#[test]` functions panic on purpose too: a failure is the test's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gpc_domain::sent::{SendStatus, SentTask};
use gpc_domain::task::TaskType;
use gpc_store::test_support::TestDatabase;
use gpc_testkit::{
    CREATE, DelayProxy, GPC001_ASID, JSON, Jwt, PATIENCE, TestServer, headers, org_record, wait_for,
};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_gpc-tasks");

struct Instance {
    child: Child,
    base: String,
    _dir: tempfile::TempDir,
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `gpc-tasks serve` on a free port and the shared database.
fn serve(db: &TestDatabase, extra: &[&str], env: &[(&str, &str)]) -> Instance {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(BIN);
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .args(extra)
        .env("DATABASE_URL", db.url())
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::task::block_in_place(|| lines.next().unwrap().unwrap());
    let addr = first
        .split("listening on ")
        .nth(1)
        .unwrap()
        .trim()
        .to_owned();
    std::thread::spawn(move || for _ in lines {});
    Instance {
        child,
        base: format!("http://{addr}"),
        _dir: dir,
    }
}

fn create(base: &str, order: &serde_json::Value) -> reqwest::RequestBuilder {
    let jwt = Jwt::new("organization/*.write", org_record("GPC001")).encode();
    reqwest::Client::new()
        .post(format!("{base}/GPC001/DSTU2/1/Order"))
        .headers(headers(CREATE, GPC001_ASID, &jwt))
        .header("content-type", JSON)
        .body(order.to_string())
}

fn inbox_lines(db: &TestDatabase) -> Vec<serde_json::Value> {
    let out = tokio::task::block_in_place(|| {
        Command::new(BIN)
            .args(["inbox", "--org", "GPC001", "--json", "--limit", "1000"])
            .env("DATABASE_URL", db.url())
            .output()
            .unwrap()
    });
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_accepted_by_one_instance_shows_live_on_the_other() {
    let Some(db) = TestDatabase::create("two_instances_live").await else {
        return;
    };
    let a = serve(&db, &[], &[]);
    let b = serve(&db, &[], &[]);
    // A clinician at GPC001 has B's pages open.
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let signed_in = browser
        .post(format!("{}/sign-in", b.base))
        .header("origin", &b.base)
        .form(&[("org", "GPC001"), ("user", "G13579135")])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 303);
    let cookie = signed_in.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let mut events = browser
        .get(format!("{}/events", b.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), 200);
    // B's page is subscribed once its answer has come; B itself hears of
    // A's tasks only once its LISTEN is in place. Announce a probe until
    // B's page hears it, then create the real task.
    let probe_db = db.connect().await;
    let mut stream = String::new();
    wait_for(
        PATIENCE,
        "B to hear the database's announcements",
        async || {
            probe_db
                .execute(
                    "SELECT pg_notify($1, $2)",
                    &[&gpc_store::RECEIVED_CHANNEL, &r#"["GPC001","probe"]"#],
                )
                .await
                .unwrap();
            if let Ok(chunk) =
                tokio::time::timeout(Duration::from_millis(200), events.chunk()).await
            {
                stream.push_str(&String::from_utf8_lossy(
                    &chunk.unwrap().unwrap_or_default(),
                ));
            }
            if stream.contains("probe") {
                Ok(())
            } else {
                Err(stream.clone())
            }
        },
    )
    .await;

    let (status, _, created) =
        gpc_testkit::send(create(&a.base, &gpc_testkit::dawes_order())).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();

    let found = tokio::time::timeout(PATIENCE, async {
        while let Some(chunk) = events.chunk().await.unwrap() {
            stream.push_str(&String::from_utf8_lossy(&chunk));
            if stream.contains("event: received") && stream.contains(&id) {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(found, Ok(true), "B's page heard of A's task: {stream}");
    // B's received list has it, and so has the inbox read from the database.
    let page = browser
        .get(format!("{}/received", b.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(&id), "{page}");
    let inbox = inbox_lines(&db);
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0]["id"], id.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_through_both_instances_store_one_task() {
    let Some(db) = TestDatabase::create("two_instances_dupes").await else {
        return;
    };
    let a = serve(&db, &[], &[]);
    let b = serve(&db, &[], &[]);
    let order = gpc_testkit::dawes_order();
    let mut running = Vec::new();
    for i in 0..24 {
        let base = if i % 2 == 0 { &a.base } else { &b.base };
        running.push(tokio::spawn(gpc_testkit::send(create(base, &order))));
    }
    let mut created = 0;
    let mut ids = std::collections::HashSet::new();
    for r in running {
        let (status, _, body) = r.await.unwrap();
        assert!(status == 201 || status == 200, "{status}: {body}");
        created += usize::from(status == 201);
        ids.insert(body["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(created, 1);
    assert_eq!(ids.len(), 1);
    assert_eq!(inbox_lines(&db).len(), 1);
}

/// A task queued for GPC001 at `endpoint`, as the engine would store it.
fn queued(endpoint: &str, n: usize) -> SentTask {
    let now = jiff::Timestamp::now();
    SentTask {
        id: format!("task-{n}-{}", uuid::Uuid::new_v4()),
        created_at: now,
        updated_at: now,
        from_ods: gpc_domain::OdsCode::parse("Y00001").unwrap(),
        from_name: "North Lincolnshire Extended Access Hub".into(),
        from_asid: gpc_domain::Asid::parse("200000000370"),
        user_sds_id: "G11111116".into(),
        user_id: "3".into(),
        user_name: "Mrs Melissa PARSONS".into(),
        user_role_code: "R0260".into(),
        user_role_display: "General Medical Practitioner".into(),
        nhs_number: gpc_domain::NhsNumber::parse("9476719931").unwrap(),
        patient_name: "Mrs Minnie DAWES".into(),
        to_ods: gpc_domain::OdsCode::parse("GPC001").unwrap(),
        to_name: "GP Connect Demonstrator".into(),
        to_telephone: "01632 960001".into(),
        to_address: String::new(),
        endpoint: format!("{endpoint}/GPC001/DSTU2/1"),
        to_asid: gpc_domain::Asid::parse(GPC001_ASID),
        task_type: TaskType::InformationOnly,
        text: format!("Outbox task {n}"),
        identifier: format!("urn:uuid:{}", uuid::Uuid::new_v4()),
        status: SendStatus::Queued,
        attempts: 0,
        cycle_attempts: 0,
        next_attempt_at: Some(now),
        provider_task_id: None,
        delivered_at: None,
        reason: None,
        remote: None,
        cancellation: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_workers_on_both_instances_deliver_each_task_once() {
    let Some(db) = TestDatabase::create("two_instances_outbox").await else {
        return;
    };
    let provider = TestServer::start().await;
    let spine = ["--spine-provider-base", provider.base.as_str()];
    let a = serve(&db, &spine, &[]);
    let b = serve(&db, &spine, &[]);
    let outbox = gpc_store::open_outbox(Some(db.url()), std::path::Path::new("."))
        .await
        .unwrap();
    let tasks: Vec<SentTask> = (0..12).map(|n| queued(&provider.base, n)).collect();
    for t in &tasks {
        outbox.enqueue(t).await.unwrap();
    }
    wait_for(PATIENCE, "every task delivered", async || {
        let mut delivered = 0;
        for t in &tasks {
            let now = outbox.get(&t.id).await.unwrap().unwrap();
            delivered += usize::from(now.status == SendStatus::Delivered);
        }
        if delivered == tasks.len() {
            Ok(())
        } else {
            Err(delivered)
        }
    })
    .await;
    for t in &tasks {
        let attempts = outbox.attempts(&t.id).await.unwrap();
        assert_eq!(attempts.len(), 1, "{}: {attempts:?}", t.id);
        assert_eq!(attempts[0].http_status, Some(201), "{}", t.id);
    }
    let store = gpc_store::SqliteStore::open(provider.dir.path()).unwrap();
    use gpc_store::Store;
    assert_eq!(
        store
            .count_tasks(&gpc_domain::OdsCode::parse("GPC001").unwrap())
            .await
            .unwrap(),
        12,
        "each task once"
    );
    drop((a, b));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_left_by_a_dead_instance_is_picked_up_by_the_other() {
    let Some(db) = TestDatabase::create("two_instances_takeover").await else {
        return;
    };
    let provider = TestServer::start().await;
    // The provider stores the first POST and then holds its answer back.
    let slow = DelayProxy::start(&provider.base, 1, Duration::from_secs(60)).await;
    let spine = ["--spine-provider-base", slow.base.as_str()];
    // The timeout sets the lease (4 × timeout + 5 s, so B takes over after
    // 25 s), and must outlast the moment between A's POST and its kill
    // however busy the machine, or A would record a failure first.
    let quick = [
        ("GPC_REQUEST_TIMEOUT_MS", "5000"),
        ("GPC_SSP_TIMEOUT_MS", "60000"),
    ];
    let mut a = serve(&db, &spine, &quick);
    let outbox = gpc_store::open_outbox(Some(db.url()), std::path::Path::new("."))
        .await
        .unwrap();
    let task = queued(&slow.base, 0);
    outbox.enqueue(&task).await.unwrap();
    wait_for(PATIENCE, "A's POST", async || match slow.posts() {
        0 => Err(0),
        n => Ok(n),
    })
    .await;
    assert_eq!(slow.posts(), 1, "one POST");
    a.child.kill().unwrap(); // A dies mid-delivery, holding the lease.
    a.child.wait().unwrap();
    let left = outbox.get(&task.id).await.unwrap().unwrap();
    assert_eq!(left.status, SendStatus::Sending, "left mid-delivery");

    let _b = serve(&db, &spine, &quick);
    wait_for(PATIENCE, "B to take the task over", async || {
        match outbox.get(&task.id).await.unwrap().unwrap().status {
            SendStatus::Delivered => Ok(()),
            other => Err(other),
        }
    })
    .await;
    let attempts = outbox.attempts(&task.id).await.unwrap();
    assert_eq!(
        attempts.last().unwrap().http_status,
        Some(200),
        "the provider already held it"
    );
    let store = gpc_store::SqliteStore::open(provider.dir.path()).unwrap();
    use gpc_store::Store;
    assert_eq!(
        store
            .count_tasks(&gpc_domain::OdsCode::parse("GPC001").unwrap())
            .await
            .unwrap(),
        1,
        "delivered once"
    );
}
