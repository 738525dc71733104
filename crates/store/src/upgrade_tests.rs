//! Data written by the binary before task lifecycles and storage codes
//! (schema version 1 of each store) reads back after the upgrade: tasks as
//! delivered and untouched since, send statuses from their old labels, and
//! a delivered sent task as its recipient received it. Data written before
//! task updates (store version 3) reads back too: a changed task and its
//! timeline, which go on changing, now with updates for the sender. And a
//! store written before sign-in (version 4) keeps all that and holds
//! sessions and sign-ins.

use crate::outbox::Outbox;
use crate::sessions::{PendingSignIn, WebSession};
use crate::test_support::TestDatabase;
use crate::{ChangeOutcome, PostgresStore, SqliteStore, Store};
use gpc_domain::OdsCode;
use gpc_domain::lifecycle::{
    Actor, Change, Lifecycle, Owner, Party, TaskChange, TaskState, TimelineEntry,
};
use gpc_domain::sent::SendStatus;
use gpc_domain::updates::{RemoteState, UpdateStatus, Wire};
use rusqlite::Connection;

/// A task row as version 1 wrote it; `$n` placeholders suit both backends
/// (SQLite numbers named parameters in their order).
const OLD_TASK: &str = "INSERT INTO tasks (id, version_id, tenant, sender_asid, idempotency_keys, \
     provider_identifier, patient_id, nhs_number, patient_name, source_org_id, task_type, text, \
     received_at, sender_ods, sender_name, practitioner_sds_id, practitioner_name, role_code, \
     role_display, trace_id, resource) VALUES ('t-old', '1', 'GPC001', '200000000370', \
     '[[\"https://consumer.example/order-id\",\"k-old\"]]', 'urn:uuid:old', '2', '9476719931', \
     'Mrs Minnie DAWES', '5', '2', 'Please review', 1764669600000000000, 'Y00001', 'Hub', \
     'G11111116', 'Mrs Melissa PARSONS', 'R0260', 'General Medical Practitioner', 'trace-old', \
     '{\"resourceType\":\"Order\",\"id\":\"t-old\"}')";

/// Two sent tasks as version 1 of the outbox wrote them: statuses and
/// outcomes as labels.
fn old_sent(status: &str, id: &str) -> String {
    format!(
        "INSERT INTO sent_tasks (id, created_at, updated_at, from_ods, from_name, from_asid, \
         user_sds_id, user_id, user_name, user_role_code, user_role_display, nhs_number, \
         patient_name, to_ods, to_name, to_telephone, to_address, endpoint, to_asid, task_type, \
         text, identifier, status, attempts, cycle_attempts, next_attempt_at, provider_task_id, \
         delivered_at, reason) VALUES ('{id}', 1764669600000000000, 1764669600000000000, \
         'Y00001', 'Hub', '{asid}', 'G11111116', '3', 'Mrs Melissa PARSONS', 'R0260', 'GMP', \
         '9476719931', 'Mrs Minnie DAWES', 'GPC001', 'Practice', '01632 960001', '1 Road', \
         '{endpoint}', '{to_asid}', '1', 'For information', 'urn:uuid:{id}', '{status}', 1, 1, \
         {next}, {provider}, {delivered}, NULL)",
        asid = if status == "No electronic route" {
            ""
        } else {
            "200000000370"
        },
        endpoint = if status == "No electronic route" {
            ""
        } else {
            "http://127.0.0.1:1/GPC001/DSTU2/1"
        },
        to_asid = if status == "No electronic route" {
            ""
        } else {
            "200000000359"
        },
        next = if status == "Queued" { "0" } else { "NULL" },
        provider = if status == "Delivered" {
            "'p-old'"
        } else {
            "NULL"
        },
        delivered = if status == "Delivered" {
            OLD_DELIVERED_AT
        } else {
            "NULL"
        },
    )
}

/// When the old delivered task was delivered, in nanoseconds.
const OLD_DELIVERED_AT: &str = "1764669660000000000";

/// The old task taken by Dr GILBERT at version 2, as version 3 of the store
/// wrote it: the task's life and its timeline row, without wire columns.
const OLD_CHANGE: [&str; 2] = [
    "UPDATE tasks SET state = 'accepted', version = 2, owner_sds_id = 'G13579135', \
     owner_name = 'Dr Nichole GILBERT' WHERE id = 't-old'",
    "INSERT INTO task_timeline (tenant, task_id, version, at, party, by_sds_id, by_name, \
     by_role_code, by_role_display, by_ods, state, owner_sds_id, owner_name, note) VALUES \
     ('GPC001', 't-old', 2, 1764669700000000000, 'receiver', 'G13579135', \
     'Dr Nichole GILBERT', 'R0260', 'General Medical Practitioner', 'GPC001', 'accepted', \
     'G13579135', 'Dr Nichole GILBERT', 'Booked for Thursday')",
];

const OLD_ATTEMPT: &str = "(task_id, number, started_at, finished_at, outcome, http_status, detail) \
     VALUES ('s-delivered', 1, 1764669600000000000, 1764669600000000000, 'Delivered', 201, 'ok')";

fn gpc001() -> OdsCode {
    OdsCode::parse("GPC001").unwrap()
}

async fn old_task_reads_back(store: &dyn Store) {
    let task = store.get_task(&gpc001(), "t-old").await.unwrap().unwrap();
    assert_eq!(task.life, Lifecycle::delivered());
    assert_eq!(task.nhs_number.as_digits(), "9476719931");
    assert_eq!(task.provenance.sender_asid, "200000000370");
    assert_eq!(task.text, "Please review");
    assert_eq!(store.inbox(&gpc001(), 10, None).await.unwrap().len(), 1);
}

async fn old_statuses_read_back(outbox: &dyn Outbox) {
    let delivered = outbox.get("s-delivered").await.unwrap().unwrap();
    assert_eq!(delivered.status, SendStatus::Delivered);
    let no_route = outbox.get("s-no-route").await.unwrap().unwrap();
    assert_eq!(no_route.status, SendStatus::NoRoute);
    assert_eq!(no_route.from_asid, None);
    let attempts = outbox.attempts("s-delivered").await.unwrap();
    assert_eq!(attempts[0].outcome, SendStatus::Delivered);
    // A queued task is still due: the worker's SQL reads the new codes.
    let now = jiff::Timestamp::now();
    let claimed = outbox.claim_due("w", now, now, 10).await.unwrap();
    let ids: Vec<&str> = claimed.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, ["s-queued"]);

    // Delivered before updates: as its recipient received it, and open to
    // the updates and the cancellation of tasks delivered since.
    let delivered_at = crate::rows::from_ns(OLD_DELIVERED_AT.parse().unwrap()).unwrap();
    assert_eq!(delivered.delivered_at, Some(delivered_at));
    assert_eq!(
        delivered.remote,
        Some(RemoteState {
            state: TaskState::Received,
            version: 1,
            owner: None,
            at: delivered_at,
        })
    );
    assert_eq!(delivered.cancellation, None);
    assert_eq!(no_route.remote, None);
    assert_eq!(claimed[0].remote, None);
    let y00001 = OdsCode::parse("Y00001").unwrap();
    assert_eq!(
        outbox.find_delivered(&y00001, "p-old").await.unwrap(),
        Some(delivered.clone())
    );
    assert_eq!(outbox.sent_timeline("s-delivered").await.unwrap(), vec![]);
}

fn gilbert() -> Actor {
    Actor {
        sds_user_id: "G13579135".into(),
        name: "Dr Nichole GILBERT".into(),
        role_code: "R0260".into(),
        role_display: "General Medical Practitioner".into(),
        organisation: gpc001(),
    }
}

/// The old change reads back, queues nothing (it was never announced),
/// and the task goes on changing, each change now with its update.
async fn old_change_reads_back(store: &dyn Store) {
    let owner = Owner {
        sds_user_id: "G13579135".into(),
        name: "Dr Nichole GILBERT".into(),
    };
    let task = store.get_task(&gpc001(), "t-old").await.unwrap().unwrap();
    assert_eq!(
        task.life,
        Lifecycle {
            state: TaskState::Accepted,
            version: 2,
            owner: Some(owner.clone()),
        }
    );
    let taken = TimelineEntry {
        version: 2,
        at: crate::rows::from_ns(1_764_669_700_000_000_000).unwrap(),
        by: gilbert(),
        party: Party::Receiver,
        state: TaskState::Accepted,
        owner: Some(owner),
        note: Some("Booked for Thursday".into()),
    };
    assert_eq!(
        store.timeline(&gpc001(), "t-old").await.unwrap(),
        std::slice::from_ref(&taken)
    );
    assert_eq!(
        store.task_updates(&gpc001(), "t-old").await.unwrap(),
        vec![]
    );
    assert_eq!(store.next_update_due().await.unwrap(), None);

    let at = jiff::Timestamp::now();
    let complete = TaskChange {
        change: Change::Complete,
        by: gilbert(),
        party: Party::Receiver,
        text: None,
        expected_version: Some(2),
        at,
        wire: Wire::outgoing(),
    };
    let outcome = store
        .change_task(&gpc001(), "t-old", complete.clone())
        .await
        .unwrap()
        .unwrap();
    let ChangeOutcome::Changed { entry, .. } = outcome else {
        panic!("not applied: {outcome:?}");
    };
    assert_eq!(
        store.timeline(&gpc001(), "t-old").await.unwrap(),
        [taken, entry.clone()]
    );
    let updates = store.task_updates(&gpc001(), "t-old").await.unwrap();
    assert_eq!(updates.len(), 1);
    assert_eq!(updates[0].identifier, complete.wire.identifier());
    assert_eq!(updates[0].entry, entry);
    assert_eq!(updates[0].status, UpdateStatus::Pending);
    assert_eq!(updates[0].to_ods, OdsCode::parse("Y00001").unwrap());
    assert_eq!(store.next_update_due().await.unwrap(), Some(at));
}

/// Sessions and sign-ins in a store that had no table for them.
async fn sessions_work_after_the_upgrade(store: &dyn Store) {
    let now = jiff::Timestamp::now();
    let idle = std::time::Duration::from_secs(30 * 60);
    let session = WebSession {
        key: "a-hash".into(),
        user: r#"{"sds_user_id":"555021935107"}"#.into(),
        created_at: now,
        idle_until: crate::sessions::later(now, idle),
        expires_at: crate::sessions::later(now, std::time::Duration::from_secs(12 * 3600)),
    };
    store.start_session(&session).await.unwrap();
    let resumed = store.resume_session("a-hash", now, idle).await.unwrap();
    assert_eq!(resumed.map(|s| s.user), Some(session.user));
    assert!(store.end_session("a-hash").await.unwrap());
    assert_eq!(
        store.resume_session("a-hash", now, idle).await.unwrap(),
        None
    );
    let pending = PendingSignIn {
        key: "another-hash".into(),
        body: r#"{"state":"s"}"#.into(),
        expires_at: crate::sessions::later(now, std::time::Duration::from_secs(600)),
    };
    store.save_sign_in(&pending).await.unwrap();
    assert_eq!(
        store.take_sign_in("another-hash", now).await.unwrap(),
        Some(pending)
    );
    assert_eq!(store.take_sign_in("another-hash", now).await.unwrap(), None);
}

#[tokio::test]
async fn a_version_1_sqlite_store_reads_back_after_the_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut conn = Connection::open(dir.path().join(crate::DATABASE_FILE)).unwrap();
        crate::sqlite::schema::apply(&mut conn, &crate::sqlite::schema::MIGRATIONS[..1]).unwrap();
        conn.execute(OLD_TASK, []).unwrap();
    }
    let store = SqliteStore::open(dir.path()).unwrap();
    old_task_reads_back(&store).await;
}

#[tokio::test]
async fn a_version_3_sqlite_store_reads_back_after_the_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut conn = Connection::open(dir.path().join(crate::DATABASE_FILE)).unwrap();
        crate::sqlite::schema::apply(&mut conn, &crate::sqlite::schema::MIGRATIONS[..3]).unwrap();
        conn.execute(OLD_TASK, []).unwrap();
        for sql in OLD_CHANGE {
            conn.execute(sql, []).unwrap();
        }
    }
    let store = SqliteStore::open(dir.path()).unwrap();
    old_change_reads_back(&store).await;
}

#[tokio::test]
async fn a_version_4_sqlite_store_keeps_its_tasks_and_holds_sessions_after_the_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut conn = Connection::open(dir.path().join(crate::DATABASE_FILE)).unwrap();
        crate::sqlite::schema::apply(&mut conn, &crate::sqlite::schema::MIGRATIONS[..4]).unwrap();
        conn.execute(OLD_TASK, []).unwrap();
        for sql in OLD_CHANGE {
            conn.execute(sql, []).unwrap();
        }
    }
    let store = SqliteStore::open(dir.path()).unwrap();
    sessions_work_after_the_upgrade(&store).await;
    old_change_reads_back(&store).await;
    drop(store);
    let conn = Connection::open(dir.path().join(crate::DATABASE_FILE)).unwrap();
    let version: u32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, crate::sqlite::schema::SCHEMA_VERSION);
}

#[tokio::test]
async fn a_version_1_sqlite_outbox_reads_back_after_the_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    {
        let conn = Connection::open(dir.path().join(crate::outbox::OUTBOX_FILE)).unwrap();
        conn.execute_batch(crate::outbox::sqlite::MIGRATIONS[0])
            .unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        for (status, id) in [
            ("Delivered", "s-delivered"),
            ("No electronic route", "s-no-route"),
            ("Queued", "s-queued"),
        ] {
            conn.execute(&old_sent(status, id), []).unwrap();
        }
        conn.execute(&format!("INSERT INTO attempts {OLD_ATTEMPT}"), [])
            .unwrap();
    }
    let outbox = crate::outbox::SqliteOutbox::open(dir.path()).unwrap();
    old_statuses_read_back(&outbox).await;
}

/// Brings a new database to version `version` of `component` only, with `rows`.
async fn at_version(
    db: &TestDatabase,
    component: &str,
    migrations: &[&str],
    version: usize,
    rows: &[String],
) {
    let mut client = db.connect().await;
    let tx = client.transaction().await.unwrap();
    crate::postgres::schema::migrate(&tx, component, &migrations[..version])
        .await
        .unwrap();
    for row in rows {
        tx.batch_execute(row).await.unwrap();
    }
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn a_version_1_postgres_store_reads_back_after_the_upgrade() {
    let Some(db) = TestDatabase::create("upgrade_store").await else {
        return;
    };
    at_version(
        &db,
        "store",
        crate::postgres::schema::STORE,
        1,
        &[OLD_TASK.to_owned()],
    )
    .await;
    let store = PostgresStore::connect(db.url()).await.unwrap();
    old_task_reads_back(&store).await;
}

#[tokio::test]
async fn a_version_3_postgres_store_reads_back_after_the_upgrade() {
    let Some(db) = TestDatabase::create("upgrade_store_v3").await else {
        return;
    };
    let mut rows = vec![OLD_TASK.to_owned()];
    rows.extend(OLD_CHANGE.map(str::to_owned));
    at_version(&db, "store", crate::postgres::schema::STORE, 3, &rows).await;
    let store = PostgresStore::connect(db.url()).await.unwrap();
    old_change_reads_back(&store).await;
}

#[tokio::test]
async fn a_version_4_postgres_store_keeps_its_tasks_and_holds_sessions_after_the_upgrade() {
    let Some(db) = TestDatabase::create("upgrade_store_v4").await else {
        return;
    };
    let mut rows = vec![OLD_TASK.to_owned()];
    rows.extend(OLD_CHANGE.map(str::to_owned));
    at_version(&db, "store", crate::postgres::schema::STORE, 4, &rows).await;
    let store = PostgresStore::connect(db.url()).await.unwrap();
    sessions_work_after_the_upgrade(&store).await;
    old_change_reads_back(&store).await;
}

#[tokio::test]
async fn a_version_1_postgres_outbox_reads_back_after_the_upgrade() {
    let Some(db) = TestDatabase::create("upgrade_outbox").await else {
        return;
    };
    let rows = [
        old_sent("Delivered", "s-delivered"),
        old_sent("No electronic route", "s-no-route"),
        old_sent("Queued", "s-queued"),
        format!("INSERT INTO sent_attempts {OLD_ATTEMPT}"),
    ];
    at_version(&db, "outbox", crate::postgres::schema::OUTBOX, 1, &rows).await;
    let outbox = crate::outbox::PostgresOutbox::connect(db.url())
        .await
        .unwrap();
    old_statuses_read_back(&outbox).await;
}
