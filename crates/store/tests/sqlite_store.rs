//! What only the SQLite backend has: its file, its schema version, the bulk
//! path, and durability when the process is killed.

// A test crate sees every dev-dependency of its package, and uses only some.
#![allow(unused_crate_dependencies)]
// Helpers outside `#[test]` functions panic on purpose too: a failure is the test's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{asid, at, audit_for, delivered, key, ods, task};
use gpc_store::{CreateOutcome, SCHEMA_VERSION, SqliteStore, Store, StoreError};
use std::collections::HashSet;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn pragma<T: rusqlite::types::FromSql>(file: &Path, name: &str) -> T {
    let conn = rusqlite::Connection::open(file).unwrap();
    conn.query_row(&format!("PRAGMA {name}"), [], |r| r.get(0))
        .unwrap()
}

#[test]
fn open_creates_the_directory_and_a_wal_file_at_the_current_schema_version() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("not").join("yet");
    let store = SqliteStore::open(&data_dir).unwrap();
    let file = data_dir.join("gpc-tasks.db");
    assert_eq!(store.path(), file);
    drop(store);
    assert!(file.is_file());
    assert_eq!(pragma::<u32>(&file, "user_version"), SCHEMA_VERSION);
    assert_eq!(pragma::<String>(&file, "journal_mode"), "wal");
    // A second open finds nothing to migrate.
    drop(SqliteStore::open(&data_dir).unwrap());
    assert_eq!(pragma::<u32>(&file, "user_version"), SCHEMA_VERSION);
}

/// The nice value of this process's thread named `name`, from /proc.
#[cfg(target_os = "linux")]
fn nice_of_thread(name: &str) -> Option<i32> {
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        let dir = task.unwrap().path();
        let comm = std::fs::read_to_string(dir.join("comm")).unwrap_or_default();
        if comm.trim_end() == name {
            let stat = std::fs::read_to_string(dir.join("stat")).unwrap();
            // Fields after the command's closing parenthesis start at field 3;
            // the nice value is field 19.
            let after = &stat[stat.rfind(')').unwrap() + 1..];
            return after.split_whitespace().nth(16)?.parse().ok();
        }
    }
    None
}

#[cfg(target_os = "linux")]
#[test]
fn the_writer_thread_runs_above_normal_priority_when_permitted() {
    // Whether this process may raise a priority at all, tried on a thread of its own.
    let permitted = std::thread::spawn(|| {
        rustix::process::setpriority_process(Some(rustix::thread::gettid()), -1).is_ok()
    })
    .join()
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let runtime = runtime();
    // Once a create is answered, the writer has started and set its priority.
    let t = task("GPC001", "200000000359", &["nice"], at(0));
    runtime
        .block_on(store.create_task(t.clone(), audit_for(&t, 201)))
        .unwrap();
    let nice = nice_of_thread("gpc-store-write").expect("the writer thread");
    // Not permitted, the writer keeps the priority it was started with.
    let inherited = rustix::process::getpriority_process(None).unwrap();
    assert_eq!(nice, if permitted { -10 } else { inherited });
}

/// Whether this process holds a POSIX lock on `file`, from /proc/locks.
#[cfg(target_os = "linux")]
fn holds_posix_lock_on(file: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let inode = std::fs::metadata(file).unwrap().ino();
    let pid = std::process::id().to_string();
    std::fs::read_to_string("/proc/locks")
        .unwrap()
        .lines()
        .any(|line| {
            // "1: POSIX  ADVISORY  READ 4321 fd:01:1234567 128 128"
            let fields: Vec<&str> = line.split_whitespace().collect();
            fields.get(1) == Some(&"POSIX")
                && fields.get(4) == Some(&pid.as_str())
                && fields
                    .get(5)
                    .and_then(|id| id.rsplit(':').next())
                    .is_some_and(|i| i == inode.to_string())
        })
}

/// The checkpointer syncs the file through a descriptor of its own. Closing
/// any descriptor of a file drops all of the process's POSIX locks on it,
/// SQLite's included, so that descriptor must stay open while the store is.
#[cfg(target_os = "linux")]
#[test]
fn the_store_keeps_its_locks_on_the_file_through_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    let file = store.path().to_owned();
    let runtime = runtime();
    runtime.block_on(async {
        for round in 0..20 {
            let t = task(
                "GPC001",
                "200000000359",
                &[&format!("lock-{round}")],
                at(round),
            );
            store
                .create_task(t.clone(), audit_for(&t, 201))
                .await
                .unwrap();
            assert!(
                !store
                    .inbox(&ods("GPC001"), 10, None)
                    .await
                    .unwrap()
                    .is_empty()
            );
            // Gives the checkpointer, which runs at most every 5 ms, a turn.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    assert!(
        holds_posix_lock_on(&file),
        "the store's connections lost their locks on {}",
        file.display()
    );
    // What the assertion catches: any descriptor of the file closing.
    drop(std::fs::File::open(&file).unwrap());
    assert!(!holds_posix_lock_on(&file));
}

#[test]
fn a_file_written_by_a_newer_binary_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(SqliteStore::open(dir.path()).unwrap());
    let conn = rusqlite::Connection::open(dir.path().join("gpc-tasks.db")).unwrap();
    conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
        .unwrap();
    drop(conn);
    match SqliteStore::open(dir.path()) {
        Err(StoreError::Other(message)) => assert!(message.contains("newer"), "{message}"),
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("a newer file was opened"),
    }
}

#[test]
fn a_file_that_is_not_a_database_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("gpc-tasks.db"), vec![b'x'; 4096]).unwrap();
    assert!(matches!(
        SqliteStore::open(dir.path()),
        Err(StoreError::Corrupt(_))
    ));
}

#[test]
fn bulk_insert_of_ten_thousand_tasks() {
    runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let sender = "200000000370";
        let tasks: Vec<_> = (0..10_000)
            .map(|i| {
                let tenant = if i % 4 == 0 { "R1A14" } else { "GPC001" };
                task(tenant, sender, &[&format!("bulk-{i}")], at(i))
            })
            .collect();
        store.bulk_insert(tasks.clone()).await.unwrap();

        assert_eq!(store.count_tasks(&ods("GPC001")).await.unwrap(), 7_500);
        assert_eq!(store.count_tasks(&ods("R1A14")).await.unwrap(), 2_500);
        let newest = store.inbox(&ods("GPC001"), 3, None).await.unwrap();
        let expected = tasks.iter().rev().filter(|t| t.tenant == "GPC001").take(3);
        assert_eq!(newest, expected.map(delivered).collect::<Vec<_>>());

        let mut seen = HashSet::new();
        let mut before = None;
        loop {
            let page = store
                .inbox(&ods("R1A14"), 1_000, before.clone())
                .await
                .unwrap();
            let Some(last) = page.last() else { break };
            before = Some((last.received_at, last.id.clone()));
            seen.extend(page.into_iter().map(|t| t.task.id));
        }
        assert_eq!(seen.len(), 2_500);

        // Bulk-loaded keys are found like any others.
        let repeat = task("GPC001", sender, &["bulk-9999"], at(20_000));
        let outcome = store
            .create_task(repeat.clone(), audit_for(&repeat, 201))
            .await
            .unwrap();
        assert_eq!(outcome, CreateOutcome::Existing(delivered(&tasks[9_999])));
        let found = store
            .find_by_identifier(&ods("R1A14"), &asid(sender), &key("bulk-4"))
            .await
            .unwrap();
        assert_eq!(found, Some(delivered(&tasks[4])));
    });
}

const CRASH_CHILD_DIR: &str = "GPC_STORE_CRASH_CHILD_DIR";
const CRASH_CHILD: &str = "crash_child_creates_tasks_until_killed";

/// The child half of `killing_the_process_loses_no_acknowledged_task`: it
/// prints each task id once `create_task` has answered Ok, and runs until it
/// is killed (or a minute has passed, so that it never outlives a lost parent).
#[test]
#[ignore = "run as a child process by killing_the_process_loses_no_acknowledged_task"]
fn crash_child_creates_tasks_until_killed() {
    let Ok(dir) = std::env::var(CRASH_CHILD_DIR) else {
        return;
    };
    runtime().block_on(async move {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(Path::new(&dir)).unwrap());
        let deadline = Instant::now() + Duration::from_secs(60);
        let workers: Vec<_> = (0..16)
            .map(|w| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    let mut i = 0u64;
                    while Instant::now() < deadline {
                        let t = task("GPC001", "200000000370", &[&format!("w{w}-{i}")], at(0));
                        let id = t.id.clone();
                        store
                            .create_task(t.clone(), audit_for(&t, 201))
                            .await
                            .unwrap();
                        let mut out = std::io::stdout().lock();
                        writeln!(out, "created {id}").unwrap();
                        out.flush().unwrap();
                        i += 1;
                    }
                })
            })
            .collect();
        for w in workers {
            w.await.unwrap();
        }
    });
}

#[test]
fn killing_the_process_loses_no_acknowledged_task() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            CRASH_CHILD,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CRASH_CHILD_DIR, dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap());
    let mut acknowledged = Vec::new();
    let mut read_ids = |until: usize, acknowledged: &mut Vec<String>| {
        let mut line = String::new();
        while acknowledged.len() < until {
            line.clear();
            if lines.read_line(&mut line).unwrap() == 0 {
                return;
            }
            // A line cut short by the kill was never completely acknowledged.
            if let Some(id) = line
                .strip_prefix("created ")
                .and_then(|l| l.strip_suffix('\n'))
            {
                acknowledged.push(id.to_owned());
            }
        }
    };
    read_ids(400, &mut acknowledged);
    let still_running = acknowledged.len() == 400;
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(still_running, "the child stopped before it was killed");
    // What the child printed before dying is still in the pipe.
    read_ids(usize::MAX, &mut acknowledged);

    runtime().block_on(async {
        let store = SqliteStore::open(dir.path()).unwrap();
        for id in &acknowledged {
            let found = store.get_task(&ods("GPC001"), id).await.unwrap();
            assert!(found.is_some(), "acknowledged task {id} was lost");
        }
        assert!(store.count_tasks(&ods("GPC001")).await.unwrap() >= acknowledged.len() as u64);
    });
}

/// `cargo test --release -p gpc-store --test sqlite_store -- --ignored throughput --nocapture`
#[test]
#[ignore = "a measurement, not a check"]
fn throughput_of_concurrent_creates() {
    runtime().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let total = 40_000u64;
        let workers = 256u64;
        let started = Instant::now();
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    for _ in 0..total / workers {
                        // As a server receives them: now, under a consumer's UUID.
                        let k = format!("urn:uuid:{}", uuid::Uuid::new_v4());
                        let t = task("GPC001", "200000000370", &[&k], jiff::Timestamp::now());
                        let audit = audit_for(&t, 201);
                        assert!(store.create_task(t, audit).await.unwrap().is_created());
                    }
                })
            })
            .collect();
        for h in handles {
            h.await.unwrap();
        }
        let elapsed = started.elapsed();
        println!(
            "{total} creates by {workers} concurrent callers in {elapsed:?}: {:.0} creates/s",
            total as f64 / elapsed.as_secs_f64()
        );
    });
}

/// `gpc_outbox_depth{kind="update"}`: each change a sender must hear of
/// waits until its update has been sent.
#[test]
fn waiting_updates_count_the_changes_senders_have_not_heard_of() {
    use gpc_domain::lifecycle::{Actor, Change, Party, TaskChange};
    let dir = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let store = SqliteStore::open(dir.path()).unwrap();
        assert_eq!(store.waiting_updates().await.unwrap(), Some(0));
        let t = task("GPC001", "200000000370", &["waiting"], at(0));
        store
            .create_task(t.clone(), audit_for(&t, 201))
            .await
            .unwrap();
        let change = |change, text: Option<&str>, version| TaskChange {
            change,
            by: Actor {
                sds_user_id: "G13579135".into(),
                name: "Dr Nichole GILBERT".into(),
                role_code: "R0260".into(),
                role_display: "General Medical Practitioner".into(),
                organisation: ods("GPC001"),
            },
            party: Party::Receiver,
            text: text.map(str::to_owned),
            expected_version: Some(version),
            at: at(version.into()),
            wire: gpc_domain::updates::Wire::outgoing(),
        };
        let tenant = ods("GPC001");
        store
            .change_task(&tenant, &t.id, change(Change::Take, None, 1))
            .await
            .unwrap();
        assert_eq!(store.waiting_updates().await.unwrap(), Some(1));
        // A note stays with the receiver: nothing for the sender.
        store
            .change_task(&tenant, &t.id, change(Change::Note, Some("a note"), 2))
            .await
            .unwrap();
        assert_eq!(store.waiting_updates().await.unwrap(), Some(1));
        store
            .change_task(&tenant, &t.id, change(Change::Complete, None, 3))
            .await
            .unwrap();
        assert_eq!(store.waiting_updates().await.unwrap(), Some(2));
        let now = jiff::Timestamp::now();
        let claimed = store
            .claim_updates("w", now, now + jiff::SignedDuration::from_secs(30), 10)
            .await
            .unwrap();
        let mut sent = claimed.into_iter().next().unwrap();
        sent.status = gpc_domain::updates::UpdateStatus::Delivered;
        sent.finished_at = Some(now);
        assert!(store.finish_update("w", &sent).await.unwrap());
        assert_eq!(store.waiting_updates().await.unwrap(), Some(1));
    });
}
