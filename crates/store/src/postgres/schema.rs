//! Versioned migrations, tracked in a `schema_migrations` table: one row per
//! applied version of each component (the received-task store, the outbox),
//! which share one database.
//!
//! A migration, once released, is never edited: a change to the schema is a
//! new entry at the end of its list, so that a newer binary brings an older
//! database up to date at start.

use super::connection::{pg_err, to_ns};
use crate::StoreError;
use tokio_postgres::Transaction;

/// One key for every migration of every component, so that instances
/// starting together on a new database apply each migration once, in turn.
/// ("gpc_migr" in ASCII.)
const MIGRATION_LOCK: i64 = 0x6770_635f_6d69_6772;

/// The received-task store: entry `i` takes it from version `i` to `i + 1`.
pub(crate) const STORE: &[&str] = &[STORE_V1, STORE_V2, STORE_V3, STORE_V4, STORE_V5, STORE_V6];

/// The sender's outbox.
pub(crate) const OUTBOX: &[&str] = &[OUTBOX_V1, OUTBOX_V2, OUTBOX_V3];

// Ids and tenants are sorted and compared in byte order (`COLLATE "C"`), as
// SQLite does, whatever the database's locale: keyset paging must agree
// with the order the caller sees.
const STORE_V1: &str = r#"
-- Reference data. `position` keeps the order of the source lists, so that the
-- data reads back exactly as it was seeded.
CREATE TABLE organisations (
    position         INTEGER PRIMARY KEY,
    id               TEXT NOT NULL UNIQUE,
    ods              TEXT NOT NULL,
    name             TEXT NOT NULL,
    care_setting     TEXT NOT NULL,
    asid             TEXT,
    receives_tasks   BOOLEAN NOT NULL,
    telephone        TEXT NOT NULL,
    site_codes       TEXT[] NOT NULL,
    address_lines    TEXT[],          -- NULL when there is no address
    address_city     TEXT,
    address_postcode TEXT
);

CREATE TABLE patients (
    position            INTEGER PRIMARY KEY,
    id                  TEXT NOT NULL UNIQUE,
    nhs_number          TEXT NOT NULL,
    title               TEXT NOT NULL,
    given               TEXT NOT NULL,
    family              TEXT NOT NULL,
    birth_date          TEXT NOT NULL,  -- ISO 8601 date
    gender              TEXT NOT NULL,  -- FHIR code
    address_lines       TEXT[] NOT NULL,
    address_city        TEXT NOT NULL,
    address_postcode    TEXT NOT NULL,
    telephone           TEXT,
    registered_practice TEXT NOT NULL,
    verification_status TEXT NOT NULL,
    sensitive           BOOLEAN NOT NULL,
    deceased            TEXT            -- ISO 8601 date
);

CREATE TABLE patient_records (
    position     INTEGER PRIMARY KEY,
    holder       TEXT NOT NULL,
    patient_id   TEXT NOT NULL,
    relationship TEXT NOT NULL,
    ended        TEXT               -- ISO 8601 date
);

CREATE TABLE practitioners (
    position     INTEGER PRIMARY KEY,
    id           TEXT NOT NULL,
    sds_user_id  TEXT NOT NULL,
    title        TEXT NOT NULL,
    given        TEXT NOT NULL,
    family       TEXT NOT NULL,
    organisation TEXT NOT NULL,
    role_code    TEXT NOT NULL,
    role_display TEXT NOT NULL
);

CREATE TABLE sharing_agreements (
    position    INTEGER PRIMARY KEY,
    sender      TEXT NOT NULL,
    receiver    TEXT NOT NULL,
    interaction TEXT NOT NULL
);

-- Received tasks: the stored Order as JSON text (not jsonb, which would
-- reorder its keys), plus columns for what is searched and shown.
CREATE TABLE tasks (
    id                  TEXT COLLATE "C" PRIMARY KEY,
    version_id          TEXT NOT NULL,
    tenant              TEXT COLLATE "C" NOT NULL,
    sender_asid         TEXT NOT NULL,
    idempotency_keys    TEXT NOT NULL,    -- JSON [[system, value], ...] in the order received
    provider_identifier TEXT NOT NULL,
    patient_id          TEXT NOT NULL,
    nhs_number          TEXT NOT NULL,
    patient_name        TEXT NOT NULL,
    source_org_id       TEXT NOT NULL,
    task_type           TEXT NOT NULL,
    text                TEXT NOT NULL,
    received_at         BIGINT NOT NULL,  -- nanoseconds since the Unix epoch
    sender_ods          TEXT NOT NULL,
    sender_name         TEXT NOT NULL,
    practitioner_sds_id TEXT NOT NULL,
    practitioner_name   TEXT NOT NULL,
    role_code           TEXT NOT NULL,
    role_display        TEXT NOT NULL,
    trace_id            TEXT NOT NULL,
    resource            TEXT NOT NULL
);
CREATE INDEX tasks_inbox ON tasks (tenant, received_at DESC, id DESC);

-- One row per idempotency key. The primary key is shared by every instance:
-- a second insert of a key waits for the first transaction and then finds it.
CREATE TABLE task_identifiers (
    tenant      TEXT NOT NULL,
    sender_asid TEXT NOT NULL,
    system      TEXT NOT NULL,
    value       TEXT NOT NULL,
    task_id     TEXT NOT NULL,
    PRIMARY KEY (tenant, sender_asid, system, value)
);

-- `seq` breaks ties between records of the same instant: later written, newer.
CREATE TABLE audit (
    seq                 BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    time                BIGINT NOT NULL,
    tenant              TEXT NOT NULL,
    trace_id            TEXT,
    from_asid           TEXT,
    to_asid             TEXT,
    interaction         TEXT,
    method              TEXT NOT NULL,
    path                TEXT NOT NULL,
    practitioner_sds_id TEXT,
    organisation_ods    TEXT,
    status              INTEGER NOT NULL,
    error_code          TEXT,
    task_id             TEXT
);
CREATE INDEX audit_time ON audit (time DESC, seq DESC);
CREATE INDEX audit_tenant_time ON audit (tenant, time DESC, seq DESC);

CREATE TABLE ssp_audit (
    seq         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    time        BIGINT NOT NULL,
    trace_id    TEXT,
    from_asid   TEXT,
    to_asid     TEXT,
    interaction TEXT,
    method      TEXT NOT NULL,
    target      TEXT NOT NULL,
    status      INTEGER NOT NULL,
    duration_us BIGINT NOT NULL,
    refusal     TEXT
);
CREATE INDEX ssp_audit_time ON ssp_audit (time DESC, seq DESC);
"#;

const OUTBOX_V1: &str = r#"
CREATE TABLE sent_tasks (
    id                TEXT COLLATE "C" PRIMARY KEY,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    from_ods          TEXT NOT NULL,
    from_name         TEXT NOT NULL,
    from_asid         TEXT NOT NULL,
    user_sds_id       TEXT NOT NULL,
    user_id           TEXT NOT NULL,
    user_name         TEXT NOT NULL,
    user_role_code    TEXT NOT NULL,
    user_role_display TEXT NOT NULL,
    nhs_number        TEXT NOT NULL,
    patient_name      TEXT NOT NULL,
    to_ods            TEXT NOT NULL,
    to_name           TEXT NOT NULL,
    to_telephone      TEXT NOT NULL,
    to_address        TEXT NOT NULL,
    endpoint          TEXT NOT NULL,
    to_asid           TEXT NOT NULL,
    task_type         TEXT NOT NULL,
    text              TEXT NOT NULL,
    identifier        TEXT NOT NULL,
    status            TEXT NOT NULL,
    attempts          BIGINT NOT NULL,
    cycle_attempts    BIGINT NOT NULL,
    next_attempt_at   BIGINT,
    provider_task_id  TEXT,
    delivered_at      BIGINT,
    reason            TEXT,
    lease_owner       TEXT,
    lease_until       BIGINT
);
CREATE INDEX sent_by_sender ON sent_tasks (from_ods, created_at DESC, id DESC);
CREATE INDEX sent_due ON sent_tasks (next_attempt_at) WHERE next_attempt_at IS NOT NULL;
CREATE INDEX sent_leased ON sent_tasks (lease_until) WHERE lease_until IS NOT NULL;

CREATE TABLE sent_attempts (
    task_id     TEXT NOT NULL,
    number      BIGINT NOT NULL,
    started_at  BIGINT NOT NULL,
    finished_at BIGINT NOT NULL,
    outcome     TEXT NOT NULL,
    http_status INTEGER,
    detail      TEXT NOT NULL,
    PRIMARY KEY (task_id, number)
);
"#;

/// A received task has a life (task-lifecycle.md §1): every task stored
/// before it was delivered and nothing has happened to it since, so it is
/// `received` at version 1 with no owner. Reference data is upserted by its
/// natural keys, which become unique.
const STORE_V2: &str = r#"
ALTER TABLE tasks ADD COLUMN state TEXT NOT NULL DEFAULT 'received';  -- TaskState::code
ALTER TABLE tasks ADD COLUMN version BIGINT NOT NULL DEFAULT 1;
ALTER TABLE tasks ADD COLUMN owner_sds_id TEXT;
ALTER TABLE tasks ADD COLUMN owner_name TEXT;

CREATE UNIQUE INDEX organisations_ods ON organisations (ods);
CREATE UNIQUE INDEX patient_records_key ON patient_records (holder, patient_id);
CREATE UNIQUE INDEX practitioners_id ON practitioners (id);
CREATE UNIQUE INDEX sharing_agreements_key ON sharing_agreements (sender, receiver, interaction);
"#;

/// Every change of a received task after its delivery, and an index of the
/// open tasks of each organisation for the To-do lists (its condition is
/// `rows::views::OPEN_CONDITION`, word for word).
const STORE_V3: &str = r#"
CREATE TABLE task_timeline (
    tenant          TEXT COLLATE "C" NOT NULL,
    task_id         TEXT COLLATE "C" NOT NULL,
    version         BIGINT NOT NULL,  -- the task's version after the change
    at              BIGINT NOT NULL,  -- nanoseconds since the Unix epoch
    party           TEXT NOT NULL,    -- Party::code
    by_sds_id       TEXT NOT NULL,
    by_name         TEXT NOT NULL,
    by_role_code    TEXT NOT NULL,
    by_role_display TEXT NOT NULL,
    by_ods          TEXT NOT NULL,
    state           TEXT NOT NULL,    -- TaskState::code after the change
    owner_sds_id    TEXT,
    owner_name      TEXT,
    note            TEXT,
    PRIMARY KEY (task_id, version)
);

CREATE INDEX tasks_open ON tasks (tenant, received_at DESC, id DESC)
    WHERE state IN ('received', 'accepted');
"#;

/// Statuses were stored as the words people read; they become the stable
/// codes of `SendStatus::code`.
const OUTBOX_V2: &str = r#"
UPDATE sent_tasks SET status = CASE status
    WHEN 'Queued' THEN 'queued' WHEN 'Sending' THEN 'sending' WHEN 'Retrying' THEN 'retrying'
    WHEN 'Delivered' THEN 'delivered' WHEN 'Rejected' THEN 'rejected' WHEN 'Failed' THEN 'failed'
    WHEN 'No electronic route' THEN 'no_route' ELSE status END;
UPDATE sent_attempts SET outcome = CASE outcome
    WHEN 'Queued' THEN 'queued' WHEN 'Sending' THEN 'sending' WHEN 'Retrying' THEN 'retrying'
    WHEN 'Delivered' THEN 'delivered' WHEN 'Rejected' THEN 'rejected' WHEN 'Failed' THEN 'failed'
    WHEN 'No electronic route' THEN 'no_route' ELSE outcome END;
"#;

/// The receiver tells the sender what became of its task (task-lifecycle.md
/// §3): an outbox of updates, written with the change each reports, and the
/// wire identifier of every change on its timeline row, so that an update
/// arriving twice is applied once (§2 step 6) and answered with the body it
/// first came with. Changes made before this version were never announced
/// and are not queued now.
const STORE_V4: &str = r#"
CREATE TABLE task_updates (
    identifier      TEXT COLLATE "C" PRIMARY KEY,  -- the OrderResponse's, the same on every attempt
    tenant          TEXT COLLATE "C" NOT NULL,
    task_id         TEXT COLLATE "C" NOT NULL,
    version         BIGINT NOT NULL,  -- the change's: its timeline row
    to_ods          TEXT NOT NULL,    -- the task's sender
    to_asid         TEXT NOT NULL,
    created_at      BIGINT NOT NULL,  -- nanoseconds since the Unix epoch
    status          TEXT NOT NULL,    -- UpdateStatus::code
    attempts        BIGINT NOT NULL,
    next_attempt_at BIGINT,
    http_status     INTEGER,
    detail          TEXT,
    finished_at     BIGINT,
    lease_owner     TEXT,
    lease_until     BIGINT
);
CREATE UNIQUE INDEX task_updates_of_task ON task_updates (tenant, task_id, version);
CREATE INDEX task_updates_pending ON task_updates (next_attempt_at) WHERE status = 'pending';

ALTER TABLE task_timeline ADD COLUMN update_id TEXT COLLATE "C";  -- the change's OrderResponse identifier
ALTER TABLE task_timeline ADD COLUMN update_body TEXT;            -- the OrderResponse as it arrived
CREATE UNIQUE INDEX task_timeline_update ON task_timeline (tenant, update_id)
    WHERE update_id IS NOT NULL;
"#;

/// Sign-in (sign-in.md §2.5): the web UI's sessions and the sign-ins on
/// their way through the provider, so that any instance can take either up.
const STORE_V5: &str = r#"
CREATE TABLE web_sessions (
    key         TEXT COLLATE "C" PRIMARY KEY,  -- a hash of the cookie's token, never the token
    "user"      TEXT NOT NULL,                 -- the web UI's JSON
    created_at  BIGINT NOT NULL,               -- nanoseconds since the Unix epoch
    idle_until  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE TABLE pending_sign_ins (
    key         TEXT COLLATE "C" PRIMARY KEY,
    body        TEXT NOT NULL,
    expires_at  BIGINT NOT NULL
);
"#;

/// The sender hears what became of its task (task-lifecycle.md §2, §3):
/// where the recipient's task stands, the sender's own cancellation with its
/// delivery, and every change the recipient reported. A task delivered
/// before this version is where its delivery left it: received, version 1.
const OUTBOX_V3: &str = r#"
ALTER TABLE sent_tasks
    ADD COLUMN remote_state           TEXT,    -- TaskState::code, as last heard
    ADD COLUMN remote_version         BIGINT,
    ADD COLUMN remote_owner_sds_id    TEXT,
    ADD COLUMN remote_owner_name      TEXT,
    ADD COLUMN remote_at              BIGINT,  -- the recipient's time of that change
    ADD COLUMN cancel_identifier      TEXT,    -- the cancellation's OrderResponse identifier
    ADD COLUMN cancel_reason          TEXT,
    ADD COLUMN cancel_by_sds_id       TEXT,
    ADD COLUMN cancel_by_name         TEXT,
    ADD COLUMN cancel_by_role_code    TEXT,
    ADD COLUMN cancel_by_role_display TEXT,
    ADD COLUMN cancel_by_ods          TEXT,
    ADD COLUMN cancel_requested_at    BIGINT,
    ADD COLUMN cancel_seen_version    BIGINT,
    ADD COLUMN cancel_status          TEXT,    -- UpdateStatus::code
    ADD COLUMN cancel_attempts        BIGINT,
    ADD COLUMN cancel_next_attempt_at BIGINT,
    ADD COLUMN cancel_http_status     INTEGER,
    ADD COLUMN cancel_detail          TEXT,
    ADD COLUMN cancel_finished_at     BIGINT;
UPDATE sent_tasks
   SET remote_state = 'received', remote_version = 1,
       remote_at = COALESCE(delivered_at, updated_at)
 WHERE status = 'delivered';
CREATE INDEX sent_by_provider_task ON sent_tasks (from_ods, provider_task_id)
    WHERE provider_task_id IS NOT NULL;
CREATE INDEX sent_cancel_due ON sent_tasks (cancel_next_attempt_at)
    WHERE cancel_status = 'pending';

CREATE TABLE sent_timeline (
    sent_task_id    TEXT COLLATE "C" NOT NULL,
    version         BIGINT NOT NULL,  -- the recipient's version after the change
    at              BIGINT NOT NULL,  -- nanoseconds since the Unix epoch, the recipient's time
    party           TEXT NOT NULL,    -- Party::code
    by_sds_id       TEXT NOT NULL,
    by_name         TEXT NOT NULL,
    by_role_code    TEXT NOT NULL,
    by_role_display TEXT NOT NULL,
    by_ods          TEXT NOT NULL,
    state           TEXT NOT NULL,    -- TaskState::code after the change
    owner_sds_id    TEXT,
    owner_name      TEXT,
    note            TEXT,
    update_id       TEXT COLLATE "C",  -- the OrderResponse it arrived in; NULL for a cancellation's answer
    update_body     TEXT,
    PRIMARY KEY (sent_task_id, version)
);
CREATE UNIQUE INDEX sent_timeline_update ON sent_timeline (update_id)
    WHERE update_id IS NOT NULL;
"#;

/// Region import (reference-data.md): as SQLite's V6.
const STORE_V6: &str = r#"
ALTER TABLE organisations ADD COLUMN status TEXT NOT NULL DEFAULT 'A';
ALTER TABLE organisations ADD COLUMN sends TEXT;     -- interaction ids, space-separated; NULL = the default rule
ALTER TABLE organisations ADD COLUMN receives TEXT;
CREATE UNIQUE INDEX patients_nhs_number ON patients (nhs_number);
CREATE TABLE reference_version (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO reference_version (id, version) VALUES (1, 0);
"#;

/// Brings `component` up to the end of `migrations` inside `tx`, which the
/// caller commits (after seeding, say) or drops. Returns the version reached.
///
/// The advisory lock is held until `tx` ends, so a second instance starting
/// at the same moment waits here and then finds nothing left to do; and as
/// PostgreSQL's DDL is transactional, a failed migration leaves the old
/// version behind.
pub(crate) async fn migrate(
    tx: &Transaction<'_>,
    component: &str,
    migrations: &[&str],
) -> Result<u32, StoreError> {
    let target = u32::try_from(migrations.len())
        .map_err(|_| StoreError::Other("more than 2^32 migrations".into()))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(pg_err)?;
    // Keeps "already exists, skipping" out of the log at every start.
    tx.batch_execute("SET LOCAL client_min_messages = warning")
        .await
        .map_err(pg_err)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             component  TEXT NOT NULL,
             version    INTEGER NOT NULL,
             applied_at BIGINT NOT NULL,
             PRIMARY KEY (component, version)
         )",
    )
    .await
    .map_err(pg_err)?;
    let current: i32 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations WHERE component = $1",
            &[&component],
        )
        .await
        .map_err(pg_err)?
        .get(0);
    let current = u32::try_from(current)
        .map_err(|_| StoreError::Corrupt("negative schema version".into()))?;
    if current > target {
        return Err(StoreError::Other(format!(
            "the database has {component} schema version {current}, newer than this program's \
             {target}; use a newer gpc-tasks"
        )));
    }
    let now = to_ns(jiff::Timestamp::now())?;
    for (i, sql) in migrations.iter().enumerate().skip(current as usize) {
        let version = i32::try_from(i + 1)
            .map_err(|_| StoreError::Other("more than 2^31 migrations".into()))?;
        tx.batch_execute(sql).await.map_err(|e| {
            StoreError::Other(format!(
                "migration of the {component} to schema version {version}: {}",
                pg_err(e)
            ))
        })?;
        tx.execute(
            "INSERT INTO schema_migrations (component, version, applied_at) VALUES ($1, $2, $3)",
            &[&component, &version, &now],
        )
        .await
        .map_err(pg_err)?;
    }
    if current < target {
        tracing::info!(
            component,
            from = current,
            to = target,
            "database schema migrated"
        );
    }
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::TestDatabase;

    async fn versions(client: &tokio_postgres::Client, component: &str) -> Vec<i32> {
        client
            .query(
                "SELECT version FROM schema_migrations WHERE component = $1 ORDER BY version",
                &[&component],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    }

    async fn apply(
        client: &mut tokio_postgres::Client,
        migrations: &[&str],
    ) -> Result<u32, StoreError> {
        let tx = client.transaction().await.unwrap();
        let v = migrate(&tx, "t", migrations).await?;
        tx.commit().await.unwrap();
        Ok(v)
    }

    #[tokio::test]
    async fn a_newer_list_migrates_an_older_database_and_keeps_its_data() {
        let Some(db) = TestDatabase::create("schema").await else {
            return;
        };
        let mut client = db.connect().await;
        let v1 = "CREATE TABLE t (a TEXT NOT NULL);";
        let v2 = "ALTER TABLE t ADD COLUMN b TEXT NOT NULL DEFAULT 'x';";
        assert_eq!(apply(&mut client, &[v1]).await.unwrap(), 1);
        client
            .execute("INSERT INTO t (a) VALUES ('kept')", &[])
            .await
            .unwrap();
        assert_eq!(apply(&mut client, &[v1, v2]).await.unwrap(), 2);
        assert_eq!(versions(&client, "t").await, [1, 2]);
        let row = client.query_one("SELECT a, b FROM t", &[]).await.unwrap();
        assert_eq!(
            (row.get::<_, &str>(0), row.get::<_, &str>(1)),
            ("kept", "x")
        );
        // Applying again is a no-op: v1 would fail if it ran twice.
        assert_eq!(apply(&mut client, &[v1, v2]).await.unwrap(), 2);
        // Another component has its own versions.
        assert!(versions(&client, "other").await.is_empty());
    }

    #[tokio::test]
    async fn a_failed_migration_leaves_the_old_version() {
        let Some(db) = TestDatabase::create("schema").await else {
            return;
        };
        let mut client = db.connect().await;
        let v1 = "CREATE TABLE t (a TEXT);";
        apply(&mut client, &[v1]).await.unwrap();
        let broken = "CREATE TABLE u (a TEXT); CREATE TABLE t (a TEXT);";
        let err = apply(&mut client, &[v1, broken]).await.unwrap_err();
        assert!(
            matches!(&err, StoreError::Other(m) if m.contains("version 2")),
            "{err}"
        );
        assert_eq!(versions(&client, "t").await, [1]);
        let u_exists: bool = client
            .query_one("SELECT to_regclass('u') IS NOT NULL", &[])
            .await
            .unwrap()
            .get(0);
        assert!(!u_exists);
    }

    #[tokio::test]
    async fn a_database_from_a_newer_binary_is_refused() {
        let Some(db) = TestDatabase::create("schema").await else {
            return;
        };
        let mut client = db.connect().await;
        apply(&mut client, &["SELECT 1", "SELECT 2"]).await.unwrap();
        let err = apply(&mut client, &["SELECT 1"]).await.unwrap_err();
        assert!(
            matches!(&err, StoreError::Other(m) if m.contains("newer")),
            "{err}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn instances_starting_together_apply_each_migration_once() {
        let Some(db) = TestDatabase::create("schema").await else {
            return;
        };
        // Not idempotent: a second run would fail on the existing table.
        let migrations: &[&str] = &["CREATE TABLE t (a TEXT)", "CREATE TABLE u (a TEXT)"];
        let starts: Vec<_> = (0..8)
            .map(|_| {
                let url = db.url().to_owned();
                tokio::spawn(async move {
                    let (mut client, connection) =
                        tokio_postgres::connect(&url, tokio_postgres::NoTls)
                            .await
                            .unwrap();
                    tokio::spawn(connection);
                    let tx = client.transaction().await.unwrap();
                    let v = migrate(&tx, "t", migrations).await?;
                    tx.commit().await.map_err(pg_err)?;
                    Ok::<_, StoreError>(v)
                })
            })
            .collect();
        for start in starts {
            assert_eq!(start.await.unwrap().unwrap(), 2);
        }
        let client = db.connect().await;
        assert_eq!(versions(&client, "t").await, [1, 2]);
    }

    #[tokio::test]
    async fn the_real_migrations_apply_to_an_empty_database() {
        let Some(db) = TestDatabase::create("schema").await else {
            return;
        };
        let mut client = db.connect().await;
        let tx = client.transaction().await.unwrap();
        let latest = |list: &[&str]| u32::try_from(list.len()).unwrap();
        assert_eq!(migrate(&tx, "store", STORE).await.unwrap(), latest(STORE));
        assert_eq!(
            migrate(&tx, "outbox", OUTBOX).await.unwrap(),
            latest(OUTBOX)
        );
        tx.commit().await.unwrap();
    }
}
