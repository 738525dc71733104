//! The outbox in its own SQLite file beside the provider's, so that the
//! sending side can run without the receiving side. Sends are made by people,
//! a few a second at most, so one connection behind a mutex is enough; every
//! write is committed with `synchronous=FULL` before it returns.

use super::Outbox;
use crate::StoreError;
use crate::sqlite::db_err;
use gpc_domain::sent::{Attempt, SendStatus, SentTask};
use gpc_domain::task::TaskType;
use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};
use std::path::Path;
use std::sync::{Arc, Mutex};

pub const OUTBOX_FILE: &str = "outbox.db";

const MIGRATIONS: &[&str] = &[r#"
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
"#];

const COLUMNS: &str = "id, created_at, updated_at, from_ods, from_name, from_asid, user_sds_id, \
    user_id, user_name, user_role_code, user_role_display, nhs_number, patient_name, to_ods, \
    to_name, to_telephone, to_address, endpoint, to_asid, task_type, text, identifier, status, \
    attempts, cycle_attempts, next_attempt_at, provider_task_id, delivered_at, reason";

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

fn nanos(t: Timestamp) -> i64 {
    i64::try_from(t.as_nanosecond()).unwrap_or(i64::MAX)
}

fn from_nanos(n: i64) -> rusqlite::Result<Timestamp> {
    Timestamp::from_nanosecond(i128::from(n)).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Integer, Box::new(e))
    })
}

fn conversion(msg: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        0,
        rusqlite::types::Type::Text,
        Box::<dyn std::error::Error + Send + Sync>::from(msg),
    )
}

fn decode(row: &Row<'_>) -> rusqlite::Result<SentTask> {
    let opt_time = |i: usize| -> rusqlite::Result<Option<Timestamp>> {
        row.get::<_, Option<i64>>(i)?.map(from_nanos).transpose()
    };
    let task_type: String = row.get(19)?;
    let status: String = row.get(22)?;
    Ok(SentTask {
        id: row.get(0)?,
        created_at: from_nanos(row.get(1)?)?,
        updated_at: from_nanos(row.get(2)?)?,
        from_ods: row.get(3)?,
        from_name: row.get(4)?,
        from_asid: row.get(5)?,
        user_sds_id: row.get(6)?,
        user_id: row.get(7)?,
        user_name: row.get(8)?,
        user_role_code: row.get(9)?,
        user_role_display: row.get(10)?,
        nhs_number: row.get(11)?,
        patient_name: row.get(12)?,
        to_ods: row.get(13)?,
        to_name: row.get(14)?,
        to_telephone: row.get(15)?,
        to_address: row.get(16)?,
        endpoint: row.get(17)?,
        to_asid: row.get(18)?,
        task_type: TaskType::from_code(&task_type)
            .ok_or_else(|| conversion(format!("unknown task type {task_type}")))?,
        text: row.get(20)?,
        identifier: row.get(21)?,
        status: SendStatus::parse(&status)
            .ok_or_else(|| conversion(format!("unknown status {status}")))?,
        attempts: row.get(23)?,
        cycle_attempts: row.get(24)?,
        next_attempt_at: opt_time(25)?,
        provider_task_id: row.get(26)?,
        delivered_at: opt_time(27)?,
        reason: row.get(28)?,
    })
}

fn decode_attempt(row: &Row<'_>) -> rusqlite::Result<Attempt> {
    let outcome: String = row.get(4)?;
    Ok(Attempt {
        task_id: row.get(0)?,
        number: row.get(1)?,
        started_at: from_nanos(row.get(2)?)?,
        finished_at: from_nanos(row.get(3)?)?,
        outcome: SendStatus::parse(&outcome)
            .ok_or_else(|| conversion(format!("unknown outcome {outcome}")))?,
        http_status: row.get(5)?,
        detail: row.get(6)?,
    })
}

/// Writes every mutable column of `task`; `extra` narrows the WHERE clause.
fn update_state(
    conn: &Connection,
    task: &SentTask,
    extra: &str,
    owner: &str,
) -> Result<bool, StoreError> {
    let sql = format!(
        "UPDATE sent_tasks SET updated_at = ?2, status = ?3, attempts = ?4, cycle_attempts = ?5, \
         next_attempt_at = ?6, provider_task_id = ?7, delivered_at = ?8, reason = ?9, \
         lease_owner = CASE WHEN ?3 IN ('Sending', 'Retrying') THEN lease_owner ELSE NULL END, \
         lease_until = CASE WHEN ?3 IN ('Sending', 'Retrying') THEN lease_until ELSE NULL END \
         WHERE id = ?1 {extra}"
    );
    let changed = conn
        .execute(
            &sql,
            params![
                task.id,
                nanos(task.updated_at),
                task.status.as_str(),
                task.attempts,
                task.cycle_attempts,
                task.next_attempt_at.map(nanos),
                task.provider_task_id,
                task.delivered_at.map(nanos),
                task.reason,
                owner,
            ],
        )
        .map_err(db_err)?;
    Ok(changed == 1)
}

#[async_trait::async_trait]
impl Outbox for SqliteOutbox {
    async fn enqueue(&self, task: &SentTask) -> Result<(), StoreError> {
        let t = task.clone();
        self.run(move |conn| {
            conn.execute(
                &format!(
                    "INSERT INTO sent_tasks ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, \
                     ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, \
                     ?24, ?25, ?26, ?27, ?28, ?29)"
                ),
                params![
                    t.id,
                    nanos(t.created_at),
                    nanos(t.updated_at),
                    t.from_ods,
                    t.from_name,
                    t.from_asid,
                    t.user_sds_id,
                    t.user_id,
                    t.user_name,
                    t.user_role_code,
                    t.user_role_display,
                    t.nhs_number,
                    t.patient_name,
                    t.to_ods,
                    t.to_name,
                    t.to_telephone,
                    t.to_address,
                    t.endpoint,
                    t.to_asid,
                    t.task_type.code(),
                    t.text,
                    t.identifier,
                    t.status.as_str(),
                    t.attempts,
                    t.cycle_attempts,
                    t.next_attempt_at.map(nanos),
                    t.provider_task_id,
                    t.delivered_at.map(nanos),
                    t.reason,
                ],
            )
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
            let claimed = {
                let mut select = tx
                    .prepare_cached(&format!(
                        "SELECT {COLUMNS} FROM sent_tasks \
                         WHERE (status IN ('Queued', 'Failed') AND next_attempt_at <= ?1 \
                                AND (lease_until IS NULL OR lease_until < ?1)) \
                            OR (status IN ('Sending', 'Retrying') AND lease_until < ?1) \
                         ORDER BY created_at LIMIT ?2"
                    ))
                    .map_err(db_err)?;
                let rows = select
                    .query_map(params![nanos(now), limit as i64], decode)
                    .map_err(db_err)?;
                rows.collect::<Result<Vec<_>, _>>().map_err(db_err)?
            };
            for task in &claimed {
                tx.execute(
                    "UPDATE sent_tasks SET lease_owner = ?2, lease_until = ?3 WHERE id = ?1",
                    params![task.id, owner, nanos(lease_until)],
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
                "INSERT OR REPLACE INTO attempts (task_id, number, started_at, finished_at, \
                 outcome, http_status, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    attempt.task_id,
                    attempt.number,
                    nanos(attempt.started_at),
                    nanos(attempt.finished_at),
                    attempt.outcome.as_str(),
                    attempt.http_status,
                    attempt.detail,
                ],
            )
            .map_err(db_err)?;
            tx.commit().map_err(db_err)?;
            Ok(true)
        })
        .await
    }

    async fn get(&self, id: &str) -> Result<Option<SentTask>, StoreError> {
        let id = id.to_owned();
        self.run(move |conn| {
            conn.prepare_cached(&format!("SELECT {COLUMNS} FROM sent_tasks WHERE id = ?1"))
                .map_err(db_err)?
                .query_row([id], decode)
                .optional()
                .map_err(db_err)
        })
        .await
    }

    async fn attempts(&self, id: &str) -> Result<Vec<Attempt>, StoreError> {
        let id = id.to_owned();
        self.run(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT task_id, number, started_at, finished_at, outcome, http_status, \
                     detail FROM attempts WHERE task_id = ?1 ORDER BY number",
                )
                .map_err(db_err)?;
            let rows = stmt.query_map([id], decode_attempt).map_err(db_err)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(db_err)
        })
        .await
    }

    async fn list(&self, from_ods: &str, limit: usize) -> Result<Vec<SentTask>, StoreError> {
        let from = from_ods.to_owned();
        self.run(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM sent_tasks WHERE from_ods = ?1 \
                     ORDER BY created_at DESC, id DESC LIMIT ?2"
                ))
                .map_err(db_err)?;
            let rows = stmt
                .query_map(params![from, limit as i64], decode)
                .map_err(db_err)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(db_err)
        })
        .await
    }

    async fn requeue(&self, id: &str, now: Timestamp) -> Result<Option<SentTask>, StoreError> {
        let id = id.to_owned();
        self.run(move |conn| {
            let changed = conn
                .execute(
                    "UPDATE sent_tasks SET status = 'Queued', next_attempt_at = ?2, \
                     updated_at = ?2, cycle_attempts = 0, reason = NULL \
                     WHERE id = ?1 AND status = 'Failed' AND next_attempt_at IS NULL",
                    params![id, nanos(now)],
                )
                .map_err(db_err)?;
            if changed == 0 {
                return Ok(None);
            }
            conn.prepare_cached(&format!("SELECT {COLUMNS} FROM sent_tasks WHERE id = ?1"))
                .map_err(db_err)?
                .query_row([id], decode)
                .optional()
                .map_err(db_err)
        })
        .await
    }

    async fn next_due(&self) -> Result<Option<Timestamp>, StoreError> {
        self.run(|conn| {
            let next: Option<i64> = conn
                .query_row(
                    "SELECT MIN(t) FROM ( \
                       SELECT MIN(next_attempt_at) AS t FROM sent_tasks \
                         WHERE status IN ('Queued', 'Failed') AND next_attempt_at IS NOT NULL \
                       UNION ALL \
                       SELECT MIN(lease_until) FROM sent_tasks \
                         WHERE status IN ('Sending', 'Retrying') AND lease_until IS NOT NULL)",
                    [],
                    |r| r.get(0),
                )
                .map_err(db_err)?;
            next.map(from_nanos).transpose().map_err(db_err)
        })
        .await
    }
}
