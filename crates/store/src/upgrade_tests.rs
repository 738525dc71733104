//! Data written by the binary before task lifecycles and storage codes
//! (schema version 1 of each store) reads back after the upgrade: tasks as
//! delivered and untouched since, send statuses from their old labels.

use crate::outbox::Outbox;
use crate::test_support::TestDatabase;
use crate::{PostgresStore, SqliteStore, Store};
use gpc_domain::OdsCode;
use gpc_domain::lifecycle::Lifecycle;
use gpc_domain::sent::SendStatus;
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
         {next}, NULL, NULL, NULL)",
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
    )
}

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

/// Brings a new database to version 1 of `component` only.
async fn at_version_1(db: &TestDatabase, component: &str, migrations: &[&str], rows: &[String]) {
    let mut client = db.connect().await;
    let tx = client.transaction().await.unwrap();
    crate::postgres::schema::migrate(&tx, component, &migrations[..1])
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
    at_version_1(
        &db,
        "store",
        crate::postgres::schema::STORE,
        &[OLD_TASK.to_owned()],
    )
    .await;
    let store = PostgresStore::connect(db.url()).await.unwrap();
    old_task_reads_back(&store).await;
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
    at_version_1(&db, "outbox", crate::postgres::schema::OUTBOX, &rows).await;
    let outbox = crate::outbox::PostgresOutbox::connect(db.url())
        .await
        .unwrap();
    old_statuses_read_back(&outbox).await;
}
