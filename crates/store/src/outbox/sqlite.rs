//! The outbox in its own SQLite file beside the provider's, so that the
//! sending side can run without the receiving side. Sends are made by people,
//! a few a second at most, so one connection behind a mutex is enough; every
//! write is committed with `synchronous=FULL` before it returns.

use super::Outbox;
use crate::StoreError;
use crate::rows::sent::{
    SentRow, attempt_cells, attempt_columns, decode_attempt, decode_sent, sent_columns,
};
use crate::rows::{Cell, from_ns, to_ns};
use crate::sqlite::db_err;
use gpc_domain::OdsCode;
use gpc_domain::sent::{Attempt, SentTask};
use jiff::Timestamp;
use rusqlite::{Connection, Row, TransactionBehavior, params, params_from_iter};
use std::path::Path;
use std::sync::{Arc, Mutex};

pub const OUTBOX_FILE: &str = "outbox.db";

pub(crate) const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE sent_tasks (
    id                TEXT PRIMARY KEY NOT NULL,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
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
    attempts          INTEGER NOT NULL,
    cycle_attempts    INTEGER NOT NULL,
    next_attempt_at   INTEGER,
    provider_task_id  TEXT,
    delivered_at      INTEGER,
    reason            TEXT,
    lease_owner       TEXT,
    lease_until       INTEGER
);
CREATE INDEX sent_by_sender ON sent_tasks (from_ods, created_at DESC);
CREATE INDEX sent_due ON sent_tasks (next_attempt_at) WHERE next_attempt_at IS NOT NULL;
CREATE INDEX sent_leased ON sent_tasks (lease_until) WHERE lease_until IS NOT NULL;

CREATE TABLE attempts (
    task_id     TEXT NOT NULL,
    number      INTEGER NOT NULL,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER NOT NULL,
    outcome     TEXT NOT NULL,
    http_status INTEGER,
    detail      TEXT NOT NULL,
    PRIMARY KEY (task_id, number)
) WITHOUT ROWID;
"#,
    STATUS_CODES,
];

/// Statuses were stored as the words people read; they become the stable
/// codes of `SendStatus::code`.
const STATUS_CODES: &str = r#"
UPDATE sent_tasks SET status = CASE status
    WHEN 'Queued' THEN 'queued' WHEN 'Sending' THEN 'sending' WHEN 'Retrying' THEN 'retrying'
    WHEN 'Delivered' THEN 'delivered' WHEN 'Rejected' THEN 'rejected' WHEN 'Failed' THEN 'failed'
    WHEN 'No electronic route' THEN 'no_route' ELSE status END;
UPDATE attempts SET outcome = CASE outcome
    WHEN 'Queued' THEN 'queued' WHEN 'Sending' THEN 'sending' WHEN 'Retrying' THEN 'retrying'
    WHEN 'Delivered' THEN 'delivered' WHEN 'Rejected' THEN 'rejected' WHEN 'Failed' THEN 'failed'
    WHEN 'No electronic route' THEN 'no_route' ELSE outcome END;
"#;

pub struct SqliteOutbox {
    conn: Arc<Mutex<Connection>>,
}

impl SqliteOutbox {
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| StoreError::Busy(format!("cannot create the data directory: {e}")))?;
        let mut conn = Connection::open(data_dir.join(OUTBOX_FILE)).map_err(db_err)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(db_err)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(db_err)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(db_err)?;
        migrate(&mut conn)?;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let mut guard = conn.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut guard)
        })
        .await
        .map_err(|e| StoreError::Other(format!("outbox task failed: {e}")))?
    }
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db_err)?;
    let current: usize = tx
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(db_err)?;
    if current > MIGRATIONS.len() {
        return Err(StoreError::Other(format!(
            "the outbox has schema version {current}, newer than this program's {}",
            MIGRATIONS.len()
        )));
    }
    for sql in &MIGRATIONS[current..] {
        tx.execute_batch(sql).map_err(db_err)?;
    }
    tx.pragma_update(None, "user_version", MIGRATIONS.len())
        .map_err(db_err)?;
    tx.commit().map_err(db_err)
}

fn nanos(t: Timestamp) -> Result<i64, StoreError> {
    to_ns(t)
}

/// Runs a query and decodes every row, in order.
fn query<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    decode: impl Fn(&Row<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(db_err)?;
    let mut rows = stmt.query(params).map_err(db_err)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(db_err)? {
        out.push(decode(row)?);
    }
    Ok(out)
}

fn get_sent(conn: &Connection, id: &str) -> Result<Option<SentTask>, StoreError> {
    query(
        conn,
        concat!("SELECT ", sent_columns!(), " FROM sent_tasks WHERE id = ?1"),
        [id],
        |r| decode_sent(r),
    )
    .map(|mut v| v.pop())
}

/// Writes every mutable column of `task`; `extra` narrows the WHERE clause
/// (its placeholder is `?10`, the owner).
fn update_state(
    conn: &Connection,
    task: &SentTask,
    extra: &str,
    owner: &str,
) -> Result<bool, StoreError> {
    let sql = format!(
        "UPDATE sent_tasks SET updated_at = ?2, status = ?3, attempts = ?4, cycle_attempts = ?5, \
         next_attempt_at = ?6, provider_task_id = ?7, delivered_at = ?8, reason = ?9, \
         lease_owner = CASE WHEN ?3 IN ('sending', 'retrying') THEN lease_owner ELSE NULL END, \
         lease_until = CASE WHEN ?3 IN ('sending', 'retrying') THEN lease_until ELSE NULL END \
         WHERE id = ?1 {extra}"
    );
    let row = SentRow::new(task)?;
    let owner = Cell::Text(owner);
    let changed = conn
        .execute(
            &sql,
            params_from_iter(row.state_cells().iter().chain(std::iter::once(&owner))),
        )
        .map_err(db_err)?;
    Ok(changed == 1)
}

#[async_trait::async_trait]
impl Outbox for SqliteOutbox {
    async fn enqueue(&self, task: &SentTask) -> Result<(), StoreError> {
        let t = task.clone();
        self.run(move |conn| {
            let row = SentRow::new(&t)?;
            conn.prepare_cached(concat!(
                "INSERT INTO sent_tasks (",
                sent_columns!(),
                ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, \
                 ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29)"
            ))
            .and_then(|mut stmt| stmt.execute(params_from_iter(row.cells().iter())))
            .map_err(db_err)?;
            Ok(())
        })
        .await
    }

    async fn claim_due(
        &self,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: usize,
    ) -> Result<Vec<SentTask>, StoreError> {
        let owner = owner.to_owned();
        self.run(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_err)?;
            let claimed = query(
                &tx,
                concat!(
                    "SELECT ",
                    sent_columns!(),
                    " FROM sent_tasks \
                     WHERE (status IN ('queued', 'failed') AND next_attempt_at <= ?1 \
                            AND (lease_until IS NULL OR lease_until < ?1)) \
                        OR (status IN ('sending', 'retrying') AND lease_until < ?1) \
                     ORDER BY created_at LIMIT ?2"
                ),
                params![nanos(now)?, i64::try_from(limit).unwrap_or(i64::MAX)],
                |r| decode_sent(r),
            )?;
            let lease_until = nanos(lease_until)?;
            for task in &claimed {
                tx.execute(
                    "UPDATE sent_tasks SET lease_owner = ?2, lease_until = ?3 WHERE id = ?1",
                    params![task.id, owner, lease_until],
                )
                .map_err(db_err)?;
            }
            tx.commit().map_err(db_err)?;
            Ok(claimed)
        })
        .await
    }

    async fn mark(&self, owner: &str, task: &SentTask) -> Result<bool, StoreError> {
        let (owner, task) = (owner.to_owned(), task.clone());
        self.run(move |conn| update_state(conn, &task, "AND lease_owner = ?10", &owner))
            .await
    }

    async fn finish_attempt(
        &self,
        owner: &str,
        task: &SentTask,
        attempt: &Attempt,
    ) -> Result<bool, StoreError> {
        let (owner, task, attempt) = (owner.to_owned(), task.clone(), attempt.clone());
        self.run(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_err)?;
            if !update_state(&tx, &task, "AND lease_owner = ?10", &owner)? {
                return Ok(false);
            }
            tx.execute(
                concat!(
                    "INSERT OR REPLACE INTO attempts (",
                    attempt_columns!(),
                    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                ),
                params_from_iter(attempt_cells(&attempt)?.iter()),
            )
            .map_err(db_err)?;
            tx.commit().map_err(db_err)?;
            Ok(true)
        })
        .await
    }

    async fn get(&self, id: &str) -> Result<Option<SentTask>, StoreError> {
        let id = id.to_owned();
        self.run(move |conn| get_sent(conn, &id)).await
    }

    async fn attempts(&self, id: &str) -> Result<Vec<Attempt>, StoreError> {
        let id = id.to_owned();
        self.run(move |conn| {
            query(
                conn,
                concat!(
                    "SELECT ",
                    attempt_columns!(),
                    " FROM attempts WHERE task_id = ?1 ORDER BY number"
                ),
                [id],
                |r| decode_attempt(r),
            )
        })
        .await
    }

    async fn list(&self, from_ods: &OdsCode, limit: usize) -> Result<Vec<SentTask>, StoreError> {
        let from = from_ods.as_str().to_owned();
        self.run(move |conn| {
            query(
                conn,
                concat!(
                    "SELECT ",
                    sent_columns!(),
                    " FROM sent_tasks WHERE from_ods = ?1 \
                     ORDER BY created_at DESC, id DESC LIMIT ?2"
                ),
                params![from, i64::try_from(limit).unwrap_or(i64::MAX)],
                |r| decode_sent(r),
            )
        })
        .await
    }

    async fn requeue(&self, id: &str, now: Timestamp) -> Result<Option<SentTask>, StoreError> {
        let id = id.to_owned();
        self.run(move |conn| {
            let changed = conn
                .execute(
                    "UPDATE sent_tasks SET status = 'queued', next_attempt_at = ?2, \
                     updated_at = ?2, cycle_attempts = 0, reason = NULL \
                     WHERE id = ?1 AND status = 'failed' AND next_attempt_at IS NULL",
                    params![id, nanos(now)?],
                )
                .map_err(db_err)?;
            if changed == 0 {
                return Ok(None);
            }
            get_sent(conn, &id)
        })
        .await
    }

    async fn next_due(&self) -> Result<Option<Timestamp>, StoreError> {
        self.run(|conn| {
            let next: Option<i64> = conn
                .query_row(
                    "SELECT MIN(t) FROM ( \
                       SELECT MIN(next_attempt_at) AS t FROM sent_tasks \
                         WHERE status IN ('queued', 'failed') AND next_attempt_at IS NOT NULL \
                       UNION ALL \
                       SELECT MIN(lease_until) FROM sent_tasks \
                         WHERE status IN ('sending', 'retrying') AND lease_until IS NOT NULL)",
                    [],
                    |r| r.get(0),
                )
                .map_err(db_err)?;
            next.map(from_ns).transpose()
        })
        .await
    }
}
