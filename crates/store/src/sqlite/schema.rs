//! Versioned migrations, tracked in `PRAGMA user_version`.
//!
//! A migration, once released, is never edited: a change to the schema is a
//! new entry at the end of the list, so that a newer binary brings an older
//! data file up to date at open.

use super::db_err;
use crate::StoreError;
use rusqlite::{Connection, TransactionBehavior};

/// Entry `i` takes the file from version `i` to version `i + 1`.
pub(crate) const MIGRATIONS: &[&str] = &[V1, V2, V3, V4, V5, V6];

/// The schema version this binary writes.
pub const SCHEMA_VERSION: u32 = MIGRATIONS.len() as u32;

const V1: &str = r#"
-- Reference data. `position` keeps the order of the source lists, so that the
-- data reads back exactly as it was seeded.
CREATE TABLE organisations (
    position         INTEGER PRIMARY KEY,
    id               TEXT NOT NULL UNIQUE,
    ods              TEXT NOT NULL,
    name             TEXT NOT NULL,
    care_setting     TEXT NOT NULL,
    asid             TEXT,
    receives_tasks   INTEGER NOT NULL,
    telephone        TEXT NOT NULL,
    site_codes       TEXT NOT NULL,  -- JSON array of strings
    address_lines    TEXT,           -- JSON array of strings; NULL when there is no address
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
    address_lines       TEXT NOT NULL,  -- JSON array of strings
    address_city        TEXT NOT NULL,
    address_postcode    TEXT NOT NULL,
    telephone           TEXT,
    registered_practice TEXT NOT NULL,
    verification_status TEXT NOT NULL,
    sensitive           INTEGER NOT NULL,
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

-- Who may send which interaction to whom (demo region: create:order).
CREATE TABLE sharing_agreements (
    position    INTEGER PRIMARY KEY,
    sender      TEXT NOT NULL,  -- ODS code
    receiver    TEXT NOT NULL,  -- ODS code
    interaction TEXT NOT NULL
);

-- Received tasks: the stored Order as JSON, plus columns for what is searched
-- and shown in the inbox.
CREATE TABLE tasks (
    id                  TEXT PRIMARY KEY NOT NULL,
    version_id          TEXT NOT NULL,
    tenant              TEXT NOT NULL,
    sender_asid         TEXT NOT NULL,
    idempotency_keys    TEXT NOT NULL,  -- JSON [[system, value], ...] in the order received
    provider_identifier TEXT NOT NULL,
    patient_id          TEXT NOT NULL,
    nhs_number          TEXT NOT NULL,
    patient_name        TEXT NOT NULL,
    source_org_id       TEXT NOT NULL,
    task_type           TEXT NOT NULL,  -- gpconnect-task-type-1 code
    text                TEXT NOT NULL,
    received_at         INTEGER NOT NULL,  -- nanoseconds since the Unix epoch
    sender_ods          TEXT NOT NULL,
    sender_name         TEXT NOT NULL,
    practitioner_sds_id TEXT NOT NULL,
    practitioner_name   TEXT NOT NULL,
    role_code           TEXT NOT NULL,
    role_display        TEXT NOT NULL,
    trace_id            TEXT NOT NULL,
    resource            TEXT NOT NULL   -- the stored Order, FHIR JSON
);
CREATE INDEX tasks_inbox ON tasks (tenant, received_at DESC, id DESC);

-- One row per idempotency key: the primary key is what makes a repeat find
-- the first task instead of storing a second one.
CREATE TABLE task_identifiers (
    tenant      TEXT NOT NULL,
    sender_asid TEXT NOT NULL,
    system      TEXT NOT NULL,
    value       TEXT NOT NULL,
    task_id     TEXT NOT NULL,
    PRIMARY KEY (tenant, sender_asid, system, value)
) WITHOUT ROWID;

-- `seq` breaks ties between records of the same instant: later written, newer.
CREATE TABLE audit (
    seq                 INTEGER PRIMARY KEY,
    time                INTEGER NOT NULL,  -- nanoseconds since the Unix epoch
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
CREATE INDEX audit_time ON audit (time);
CREATE INDEX audit_tenant_time ON audit (tenant, time);

-- Every request through the Spine Security Proxy. `target` has no query.
CREATE TABLE ssp_audit (
    seq         INTEGER PRIMARY KEY,
    time        INTEGER NOT NULL,  -- nanoseconds since the Unix epoch
    trace_id    TEXT,
    from_asid   TEXT,
    to_asid     TEXT,
    interaction TEXT,
    method      TEXT NOT NULL,
    target      TEXT NOT NULL,
    status      INTEGER NOT NULL,
    duration_us INTEGER NOT NULL,
    refusal     TEXT
);
CREATE INDEX ssp_audit_time ON ssp_audit (time);
"#;

/// A received task has a life (task-lifecycle.md §1): every task stored
/// before it was delivered and nothing has happened to it since, so it is
/// `received` at version 1 with no owner. Reference data is upserted by its
/// natural keys, which become unique.
const V2: &str = r#"
ALTER TABLE tasks ADD COLUMN state TEXT NOT NULL DEFAULT 'received';  -- TaskState::code
ALTER TABLE tasks ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
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
const V3: &str = r#"
CREATE TABLE task_timeline (
    tenant          TEXT NOT NULL,
    task_id         TEXT NOT NULL,
    version         INTEGER NOT NULL,  -- the task's version after the change
    at              INTEGER NOT NULL,  -- nanoseconds since the Unix epoch
    party           TEXT NOT NULL,     -- Party::code
    by_sds_id       TEXT NOT NULL,
    by_name         TEXT NOT NULL,
    by_role_code    TEXT NOT NULL,
    by_role_display TEXT NOT NULL,
    by_ods          TEXT NOT NULL,
    state           TEXT NOT NULL,     -- TaskState::code after the change
    owner_sds_id    TEXT,
    owner_name      TEXT,
    note            TEXT,
    PRIMARY KEY (task_id, version)
) WITHOUT ROWID;

CREATE INDEX tasks_open ON tasks (tenant, received_at DESC, id DESC)
    WHERE state IN ('received', 'accepted');
"#;

/// The receiver tells the sender what became of its task (task-lifecycle.md
/// §3): an outbox of updates, written with the change each reports, and the
/// wire identifier of every change on its timeline row, so that an update
/// arriving twice is applied once (§2 step 6) and answered with the body it
/// first came with. Changes made before this version were never announced
/// and are not queued now.
const V4: &str = r#"
CREATE TABLE task_updates (
    identifier      TEXT PRIMARY KEY NOT NULL,  -- the OrderResponse's, the same on every attempt
    tenant          TEXT NOT NULL,
    task_id         TEXT NOT NULL,
    version         INTEGER NOT NULL,  -- the change's: its timeline row
    to_ods          TEXT NOT NULL,     -- the task's sender
    to_asid         TEXT NOT NULL,
    created_at      INTEGER NOT NULL,  -- nanoseconds since the Unix epoch
    status          TEXT NOT NULL,     -- UpdateStatus::code
    attempts        INTEGER NOT NULL,
    next_attempt_at INTEGER,
    http_status     INTEGER,
    detail          TEXT,
    finished_at     INTEGER,
    lease_owner     TEXT,
    lease_until     INTEGER
);
CREATE UNIQUE INDEX task_updates_of_task ON task_updates (tenant, task_id, version);
CREATE INDEX task_updates_pending ON task_updates (next_attempt_at) WHERE status = 'pending';

ALTER TABLE task_timeline ADD COLUMN update_id TEXT;    -- the change's OrderResponse identifier
ALTER TABLE task_timeline ADD COLUMN update_body TEXT;  -- the OrderResponse as it arrived
CREATE UNIQUE INDEX task_timeline_update ON task_timeline (tenant, update_id)
    WHERE update_id IS NOT NULL;
"#;

/// Sign-in (sign-in.md §2.5): the web UI's sessions and the sign-ins on
/// their way through the provider, so that any instance can take either up.
const V5: &str = r#"
CREATE TABLE web_sessions (
    key         TEXT PRIMARY KEY NOT NULL,  -- a hash of the cookie's token, never the token
    user        TEXT NOT NULL,              -- the web UI's JSON
    created_at  INTEGER NOT NULL,           -- nanoseconds since the Unix epoch
    idle_until  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE TABLE pending_sign_ins (
    key         TEXT PRIMARY KEY NOT NULL,
    body        TEXT NOT NULL,
    expires_at  INTEGER NOT NULL
);
"#;

/// Region import (reference-data.md): an organisation's ODS status and its
/// registered interactions, patients keyed by NHS number, and a counter of
/// reference-data writes that running servers poll to pick up an import.
const V6: &str = r#"
ALTER TABLE organisations ADD COLUMN status TEXT NOT NULL DEFAULT 'A';  -- ODS status code
ALTER TABLE organisations ADD COLUMN sends TEXT;     -- interaction ids, space-separated; NULL = the default rule
ALTER TABLE organisations ADD COLUMN receives TEXT;  -- likewise
CREATE UNIQUE INDEX patients_nhs_number ON patients (nhs_number);
CREATE TABLE reference_version (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
);
INSERT INTO reference_version (id, version) VALUES (1, 0);
"#;

/// Brings the file up to this binary's schema; returns the version it is at.
pub(super) fn migrate(conn: &mut Connection) -> Result<u32, StoreError> {
    apply(conn, MIGRATIONS)
}

/// All pending migrations go in one transaction, so that a failure leaves the
/// file at its old version, and the version is read inside it, so that two
/// processes opening one new file do not both apply them.
pub(crate) fn apply(conn: &mut Connection, migrations: &[&str]) -> Result<u32, StoreError> {
    let target = u32::try_from(migrations.len())
        .map_err(|_| StoreError::Other("more than 2^32 migrations".into()))?;
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db_err)?;
    let current: u32 = tx
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(db_err)?;
    if current > target {
        return Err(StoreError::Other(format!(
            "the data file has schema version {current}, newer than this program's {target}; \
             use a newer gpc-tasks"
        )));
    }
    for (i, sql) in migrations.iter().enumerate().skip(current as usize) {
        tx.execute_batch(sql).map_err(|e| {
            StoreError::Other(format!("migration to schema version {}: {e}", i + 1))
        })?;
    }
    if current < target {
        tx.pragma_update(None, "user_version", target)
            .map_err(db_err)?;
        tracing::info!(from = current, to = target, "store schema migrated");
    }
    tx.commit().map_err(db_err)?;
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn version(conn: &Connection) -> u32 {
        conn.query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap()
    }

    #[test]
    fn a_newer_list_migrates_an_older_file_and_keeps_its_data() {
        let mut conn = Connection::open_in_memory().unwrap();
        let v1 = "CREATE TABLE t (a TEXT NOT NULL);";
        let v2 = "ALTER TABLE t ADD COLUMN b TEXT NOT NULL DEFAULT 'x';";
        assert_eq!(apply(&mut conn, &[v1]).unwrap(), 1);
        conn.execute("INSERT INTO t (a) VALUES ('kept')", [])
            .unwrap();
        assert_eq!(apply(&mut conn, &[v1, v2]).unwrap(), 2);
        assert_eq!(version(&conn), 2);
        let row: (String, String) = conn
            .query_row("SELECT a, b FROM t", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap();
        assert_eq!(row, ("kept".to_owned(), "x".to_owned()));
        // Applying again is a no-op: v1 would fail if it ran twice.
        assert_eq!(apply(&mut conn, &[v1, v2]).unwrap(), 2);
    }

    #[test]
    fn a_failed_migration_leaves_the_old_version() {
        let mut conn = Connection::open_in_memory().unwrap();
        let v1 = "CREATE TABLE t (a TEXT);";
        apply(&mut conn, &[v1]).unwrap();
        let broken = "CREATE TABLE u (a TEXT); CREATE TABLE t (a TEXT);";
        assert!(apply(&mut conn, &[v1, broken]).is_err());
        assert_eq!(version(&conn), 1);
        let u_exists: bool = conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM sqlite_schema WHERE name = 'u')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(!u_exists);
    }

    #[test]
    fn a_file_from_a_newer_binary_is_refused() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        let err = migrate(&mut conn).unwrap_err();
        assert!(matches!(err, StoreError::Other(m) if m.contains("newer")));
    }

    /// The To-do lists read the partial index of open tasks: its condition
    /// and the query's must stay word for word the same.
    #[test]
    fn the_open_lists_use_the_index_of_open_tasks() {
        use crate::rows::views::inbox_query;
        use gpc_domain::lifecycle::{InboxView, StateFilter};
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        let views = [
            InboxView::of(StateFilter::Open),
            InboxView {
                owner: Some("G13579135".into()),
                ..InboxView::of(StateFilter::Open)
            },
            InboxView {
                unowned: true,
                ..InboxView::of(StateFilter::Open)
            },
        ];
        for view in &views {
            for before in [None, Some((1, "id"))] {
                let (sql, cells) = inbox_query("GPC001", view, 50, before, |n| format!("?{n}"));
                let plan = query_plan(&conn, &sql, rusqlite::params_from_iter(cells.iter()));
                assert!(plan.contains("USING INDEX tasks_open"), "{view:?}: {plan}");
                assert!(!plan.contains("TEMP B-TREE"), "{view:?} sorts: {plan}");
            }
        }
    }

    /// A claim reads the pending updates in due order and stops at its
    /// limit: sorting them all made each claim cost the whole queue.
    #[test]
    fn a_claim_of_updates_walks_the_pending_index_in_order() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        let plan = query_plan(
            &conn,
            super::super::writer::CLAIM_UPDATES,
            rusqlite::params![1, 32],
        );
        assert!(plan.contains("USING INDEX task_updates_pending"), "{plan}");
        assert!(
            !plan.contains("TEMP B-TREE FOR ORDER BY"),
            "sorts every pending update: {plan}"
        );
    }

    fn query_plan(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> String {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let plan: Vec<String> = stmt
            .query_map(params, |r| r.get(3))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        plan.join("; ")
    }

    #[test]
    fn the_real_migrations_apply_to_an_empty_file() {
        let mut conn = Connection::open_in_memory().unwrap();
        assert_eq!(migrate(&mut conn).unwrap(), SCHEMA_VERSION);
        assert_eq!(version(&conn), SCHEMA_VERSION);
    }
}
