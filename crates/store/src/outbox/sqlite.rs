//! The outbox in its own SQLite file beside the provider's, so that the
//! sending side can run without the receiving side. Sends are made by people,
//! a few a second at most, so one connection behind a mutex is enough; every
//! write is committed with `synchronous=FULL` before it returns.

use super::{Outbox, RemoteOutcome};
use crate::StoreError;
use crate::rows::sent::{
    SentRow, attempt_cells, attempt_columns, cancellation_statement, decode_attempt, decode_sent,
    decode_sent_entry, remote_entry_cells, remote_of, remote_statement, request_cancel_cells,
    request_cancel_statement, sent_columns, sent_entry_cells, sent_entry_select,
    sent_timeline_columns, state_statement,
};
use crate::rows::{from_ns, to_ns};
use crate::sqlite::db_err;
use gpc_domain::OdsCode;
use gpc_domain::lifecycle::TimelineEntry;
use gpc_domain::sent::{Attempt, SentTask};
use gpc_domain::updates::{Cancellation, ReceivedUpdate, RemoteUpdate};
use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params, params_from_iter};
use std::path::Path;
use std::sync::{Arc, LazyLock, Mutex};

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
    UPDATES,
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

/// The sender hears what became of its task (task-lifecycle.md §2, §3):
/// where the recipient's task stands, the sender's own cancellation with its
/// delivery, and every change the recipient reported. A task delivered
/// before this version is where its delivery left it: received, version 1.
const UPDATES: &str = r#"
ALTER TABLE sent_tasks ADD COLUMN remote_state TEXT;  -- TaskState::code, as last heard
ALTER TABLE sent_tasks ADD COLUMN remote_version INTEGER;
ALTER TABLE sent_tasks ADD COLUMN remote_owner_sds_id TEXT;
ALTER TABLE sent_tasks ADD COLUMN remote_owner_name TEXT;
ALTER TABLE sent_tasks ADD COLUMN remote_at INTEGER;  -- the recipient's time of that change
ALTER TABLE sent_tasks ADD COLUMN cancel_identifier TEXT;  -- the cancellation's OrderResponse identifier
ALTER TABLE sent_tasks ADD COLUMN cancel_reason TEXT;
ALTER TABLE sent_tasks ADD COLUMN cancel_by_sds_id TEXT;
ALTER TABLE sent_tasks ADD COLUMN cancel_by_name TEXT;
ALTER TABLE sent_tasks ADD COLUMN cancel_by_role_code TEXT;
ALTER TABLE sent_tasks ADD COLUMN cancel_by_role_display TEXT;
ALTER TABLE sent_tasks ADD COLUMN cancel_by_ods TEXT;
ALTER TABLE sent_tasks ADD COLUMN cancel_requested_at INTEGER;
ALTER TABLE sent_tasks ADD COLUMN cancel_seen_version INTEGER;
ALTER TABLE sent_tasks ADD COLUMN cancel_status TEXT;  -- UpdateStatus::code
ALTER TABLE sent_tasks ADD COLUMN cancel_attempts INTEGER;
ALTER TABLE sent_tasks ADD COLUMN cancel_next_attempt_at INTEGER;
ALTER TABLE sent_tasks ADD COLUMN cancel_http_status INTEGER;
ALTER TABLE sent_tasks ADD COLUMN cancel_detail TEXT;
ALTER TABLE sent_tasks ADD COLUMN cancel_finished_at INTEGER;
UPDATE sent_tasks
   SET remote_state = 'received', remote_version = 1,
       remote_at = COALESCE(delivered_at, updated_at)
 WHERE status = 'delivered';
CREATE INDEX sent_by_provider_task ON sent_tasks (from_ods, provider_task_id)
    WHERE provider_task_id IS NOT NULL;
CREATE INDEX sent_cancel_due ON sent_tasks (cancel_next_attempt_at)
    WHERE cancel_status = 'pending';

CREATE TABLE sent_timeline (
    sent_task_id    TEXT NOT NULL,
    version         INTEGER NOT NULL,  -- the recipient's version after the change
    at              INTEGER NOT NULL,  -- nanoseconds since the Unix epoch, the recipient's time
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
    update_id       TEXT,  -- the OrderResponse it arrived in; NULL for a cancellation's answer
    update_body     TEXT,
    PRIMARY KEY (sent_task_id, version)
) WITHOUT ROWID;
CREATE UNIQUE INDEX sent_timeline_update ON sent_timeline (update_id)
    WHERE update_id IS NOT NULL;
"#;

pub struct SqliteOutbox {
    /// Taken asynchronously (`on`), so that calls waiting for a connection
    /// wait as tasks, not as blocking threads: 128 updates in flight had
    /// the runtime start a thread for each, each blocked on the connection.
    conn: Arc<tokio::sync::Mutex<Connection>>,
    /// For the reads, so that a page or an update looking up its task does
    /// not wait behind a commit's fsync on `conn` (WAL lets them run beside it).
    reader: Arc<tokio::sync::Mutex<Connection>>,
    /// Reported changes waiting for the next transaction: see `apply_remote`.
    reported: Arc<Mutex<ReportedQueue>>,
}

/// The reported changes not yet taken by a writer turn, and whether a turn
/// that will take them is already on its way.
#[derive(Default)]
struct ReportedQueue {
    waiting: Vec<Reported>,
    turn_scheduled: bool,
}

/// One `apply_remote` call waiting to be written, and where its answer goes.
struct Reported {
    id: String,
    update: RemoteUpdate,
    reply: tokio::sync::oneshot::Sender<Result<Option<RemoteOutcome>, StoreError>>,
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
        let reader = Connection::open_with_flags(
            data_dir.join(OUTBOX_FILE),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(db_err)?;
        reader
            .busy_timeout(std::time::Duration::from_secs(5))
            .map_err(db_err)?;
        Ok(Self {
            conn: Arc::new(tokio::sync::Mutex::new(conn)),
            reader: Arc::new(tokio::sync::Mutex::new(reader)),
            reported: Arc::default(),
        })
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        on(&self.conn, f).await
    }

    /// `f` on the read connection: it must not write.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        on(&self.reader, f).await
    }
}

async fn on<T: Send + 'static>(
    conn: &Arc<tokio::sync::Mutex<Connection>>,
    f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let mut guard = Arc::clone(conn).lock_owned().await;
    tokio::task::spawn_blocking(move || f(&mut guard))
        .await
        .map_err(|e| StoreError::Other(format!("outbox task failed: {e}")))?
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

fn placeholder(n: usize) -> String {
    format!("?{n}")
}

static UPDATE_STATE: LazyLock<String> = LazyLock::new(|| state_statement(placeholder));
static SET_REMOTE: LazyLock<String> = LazyLock::new(|| remote_statement(placeholder));
static FINISH_CANCELLATION: LazyLock<String> =
    LazyLock::new(|| cancellation_statement(placeholder));
static REQUEST_CANCEL: LazyLock<String> = LazyLock::new(|| request_cancel_statement(placeholder));

/// Writes every mutable column of `task`, if `owner` holds its lease.
fn update_state(conn: &Connection, task: &SentTask, owner: &str) -> Result<bool, StoreError> {
    let row = SentRow::new(task)?;
    let changed = conn
        .prepare_cached(&UPDATE_STATE)
        .and_then(|mut s| s.execute(params_from_iter(row.state_cells(owner).iter())))
        .map_err(db_err)?;
    Ok(changed == 1)
}

/// Makes `entry` the remote state of task `id` and adds it to the task's
/// timeline, with the OrderResponse it arrived in, if any.
fn apply_entry(
    conn: &Connection,
    id: &str,
    entry: &TimelineEntry,
    received: Option<&ReceivedUpdate>,
) -> Result<(), StoreError> {
    let remote = remote_entry_cells(id, entry)?;
    conn.prepare_cached(&SET_REMOTE)
        .and_then(|mut s| s.execute(params_from_iter(remote.iter())))
        .map_err(db_err)?;
    let cells = sent_entry_cells(id, entry, received)?;
    conn.prepare_cached(concat!(
        "INSERT INTO sent_timeline (",
        sent_timeline_columns!(),
        ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"
    ))
    .and_then(|mut s| s.execute(params_from_iter(cells.iter())))
    .map_err(db_err)?;
    Ok(())
}

/// An entry at or below the version held changes nothing: updates may
/// arrive out of order, and the highest version wins (§2 step 5).
/// Writes every queued reported change in one transaction and answers each.
fn apply_reported(conn: &mut Connection, queue: &Mutex<ReportedQueue>) {
    let batch = {
        let mut queue = queue.lock().unwrap_or_else(|p| p.into_inner());
        // From here on, a change queued finds no turn on its way and schedules one.
        queue.turn_scheduled = false;
        std::mem::take(&mut queue.waiting)
    };
    if batch.is_empty() {
        return;
    }
    let written = (|| {
        let mut tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(db_err)?;
        let mut outcomes = Vec::with_capacity(batch.len());
        for job in &batch {
            let sp = tx.savepoint().map_err(db_err)?;
            let outcome = apply_one(&sp, &job.id, &job.update);
            if outcome.is_ok() {
                sp.commit().map_err(db_err)?;
            }
            // Dropped uncommitted, a savepoint rolls its change back.
            outcomes.push(outcome);
        }
        tx.commit().map_err(db_err)?;
        Ok::<_, StoreError>(outcomes)
    })();
    match written {
        Ok(outcomes) => {
            for (job, outcome) in batch.into_iter().zip(outcomes) {
                let _ = job.reply.send(outcome);
            }
        }
        Err(e) => {
            for job in batch {
                let _ = job.reply.send(Err(e.clone()));
            }
        }
    }
}

/// Answers every waiting change with `err`: the turn that was to take them
/// did not run, and none is scheduled now.
fn fail_waiting(queue: &Mutex<ReportedQueue>, err: &StoreError) {
    let waiting = {
        let mut queue = queue.lock().unwrap_or_else(|p| p.into_inner());
        queue.turn_scheduled = false;
        std::mem::take(&mut queue.waiting)
    };
    for job in waiting {
        let _ = job.reply.send(Err(err.clone()));
    }
}

/// One reported change, inside the caller's transaction: see `Outbox::apply_remote`.
fn apply_one(
    conn: &Connection,
    id: &str,
    update: &RemoteUpdate,
) -> Result<Option<RemoteOutcome>, StoreError> {
    let Some(task) = get_sent(conn, id)? else {
        return Ok(None);
    };
    if let Some(received) = &update.received {
        let earlier: Option<Option<String>> = conn
            .prepare_cached("SELECT update_body FROM sent_timeline WHERE update_id = ?1")
            .and_then(|mut s| s.query_row([&received.identifier], |r| r.get(0)).optional())
            .map_err(db_err)?;
        if let Some(body) = earlier {
            let body = body.ok_or_else(|| crate::rows::corrupt("stored update"))?;
            return Ok(Some(RemoteOutcome::Repeat { task, body }));
        }
    }
    if !is_newer(&task, &update.entry) {
        return Ok(Some(RemoteOutcome::Late(task)));
    }
    apply_entry(conn, id, &update.entry, update.received.as_ref())?;
    let task = SentTask {
        remote: Some(remote_of(&update.entry)),
        ..task
    };
    Ok(Some(RemoteOutcome::Applied(task)))
}

fn is_newer(task: &SentTask, entry: &TimelineEntry) -> bool {
    task.remote
        .as_ref()
        .is_none_or(|remote| entry.version > remote.version)
}

/// The sent tasks that a provider's task id may name, earliest first once
/// read. Unordered on purpose: with `ORDER BY created_at` SQLite walked
/// `sent_by_sender`, every task the organisation ever sent, for each update
/// (10,000 queued updates at 200/s); without it, it takes
/// `sent_by_provider_task` and reads the one or two rows the id names.
const FIND_DELIVERED: &str = concat!(
    "SELECT ",
    sent_columns!(),
    " FROM sent_tasks WHERE from_ods = ?1 AND provider_task_id = ?2 AND status = 'delivered'"
);

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
                 ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, \
                 ?31, ?32, ?33, ?34, ?35, ?36, ?37, ?38, ?39, ?40, ?41, ?42, ?43, ?44, ?45, \
                 ?46, ?47, ?48, ?49)"
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
        self.run(move |conn| update_state(conn, &task, &owner))
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
            if !update_state(&tx, &task, &owner)? {
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
        self.read(move |conn| get_sent(conn, &id)).await
    }

    async fn attempts(&self, id: &str) -> Result<Vec<Attempt>, StoreError> {
        let id = id.to_owned();
        self.read(move |conn| {
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
        self.read(move |conn| {
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

    async fn find_delivered(
        &self,
        from_ods: &OdsCode,
        provider_task_id: &str,
    ) -> Result<Option<SentTask>, StoreError> {
        let (from, provider_task_id) = (from_ods.as_str().to_owned(), provider_task_id.to_owned());
        self.read(move |conn| {
            query(conn, FIND_DELIVERED, params![from, provider_task_id], |r| {
                decode_sent(r)
            })
            .map(|found| {
                found
                    .into_iter()
                    .min_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)))
            })
        })
        .await
    }

    /// Reported changes arrive as fast as recipients post them (every
    /// practice a hub sends to), unlike sends, which people make. One
    /// transaction, and so one fsync, per change would cap them at the
    /// disk's sync rate; so each call queues its change and runs a writer
    /// turn that takes every change queued by then into one transaction
    /// (group commit), each in its own savepoint so that one failing does
    /// not undo the others. Only one turn is scheduled at a time: a turn per
    /// call had a blocking thread per posted update queue for the
    /// connection, to find the queue empty (futex wake-ups were the largest
    /// part of the profile).
    async fn apply_remote(
        &self,
        id: &str,
        update: &RemoteUpdate,
    ) -> Result<Option<RemoteOutcome>, StoreError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let schedule = {
            let mut queue = self.reported.lock().unwrap_or_else(|p| p.into_inner());
            queue.waiting.push(Reported {
                id: id.to_owned(),
                update: update.clone(),
                reply,
            });
            !std::mem::replace(&mut queue.turn_scheduled, true)
        };
        if schedule {
            let reported = Arc::clone(&self.reported);
            let conn = Arc::clone(&self.conn);
            // A task of its own: other calls' changes wait for this turn,
            // so the caller going away (its client hung up while the turn
            // waited for the connection) must not cancel it. The turn
            // answers every change it takes, this one included; it fails as
            // a whole only when its thread could not run.
            tokio::spawn(async move {
                let queue = Arc::clone(&reported);
                let turn = on(&conn, move |c| {
                    apply_reported(c, &queue);
                    Ok(())
                });
                if let Err(e) = turn.await {
                    fail_waiting(&reported, &e);
                }
            });
        }
        answer
            .await
            .map_err(|_| StoreError::Other("a reported change was dropped unanswered".into()))?
    }

    async fn sent_timeline(&self, id: &str) -> Result<Vec<TimelineEntry>, StoreError> {
        let id = id.to_owned();
        self.read(move |conn| {
            query(
                conn,
                concat!(sent_entry_select!(), "?1 ORDER BY version"),
                [id],
                |r| decode_sent_entry(r),
            )
        })
        .await
    }

    async fn request_cancel(
        &self,
        id: &str,
        cancellation: &Cancellation,
    ) -> Result<Option<SentTask>, StoreError> {
        let (id, cancellation) = (id.to_owned(), cancellation.clone());
        self.run(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_err)?;
            let cells = request_cancel_cells(&id, &cancellation)?;
            let changed = tx
                .prepare_cached(&REQUEST_CANCEL)
                .and_then(|mut s| s.execute(params_from_iter(cells.iter())))
                .map_err(db_err)?;
            if changed == 0 {
                return Ok(None);
            }
            let task = get_sent(&tx, &id)?;
            tx.commit().map_err(db_err)?;
            Ok(task)
        })
        .await
    }

    async fn claim_cancellations(
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
                     WHERE cancel_status = 'pending' AND cancel_next_attempt_at <= ?1 \
                       AND (lease_until IS NULL OR lease_until < ?1) \
                     ORDER BY cancel_requested_at, id LIMIT ?2"
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

    async fn finish_cancellation(
        &self,
        owner: &str,
        task: &SentTask,
        applied: Option<&TimelineEntry>,
    ) -> Result<bool, StoreError> {
        let (owner, task, applied) = (owner.to_owned(), task.clone(), applied.cloned());
        self.run(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(db_err)?;
            let row = SentRow::new(&task)?;
            let changed = tx
                .prepare_cached(&FINISH_CANCELLATION)
                .and_then(|mut s| {
                    s.execute(params_from_iter(row.cancellation_cells(&owner).iter()))
                })
                .map_err(db_err)?;
            if changed != 1 {
                return Ok(false);
            }
            if let Some(entry) = &applied {
                // The remote state as stored, not as the caller saw it: an
                // update may have arrived during the attempt.
                let current = get_sent(&tx, &task.id)?
                    .ok_or_else(|| StoreError::Corrupt("a written task is missing".into()))?;
                if is_newer(&current, entry) {
                    apply_entry(&tx, &task.id, entry, None)?;
                }
            }
            tx.commit().map_err(db_err)?;
            Ok(true)
        })
        .await
    }

    async fn waiting(&self) -> Result<u64, StoreError> {
        self.read(|conn| {
            conn.prepare_cached(super::WAITING)
                .and_then(|mut s| s.query_row([], |r| r.get::<_, i64>(0)))
                .map(i64::unsigned_abs)
                .map_err(db_err)
        })
        .await
    }

    async fn next_due(&self) -> Result<Option<Timestamp>, StoreError> {
        self.read(|conn| {
            // A cancellation being sent is leased: due again only when the
            // lease runs out (its worker died).
            let next: Option<i64> = conn
                .query_row(
                    "SELECT MIN(t) FROM ( \
                       SELECT MIN(next_attempt_at) AS t FROM sent_tasks \
                         WHERE status IN ('queued', 'failed') AND next_attempt_at IS NOT NULL \
                       UNION ALL \
                       SELECT MIN(lease_until) FROM sent_tasks \
                         WHERE status IN ('sending', 'retrying') AND lease_until IS NOT NULL \
                       UNION ALL \
                       SELECT MIN(MAX(cancel_next_attempt_at, \
                                      COALESCE(lease_until, cancel_next_attempt_at))) \
                         FROM sent_tasks \
                         WHERE cancel_status = 'pending' AND cancel_next_attempt_at IS NOT NULL)",
                    [],
                    |r| r.get(0),
                )
                .map_err(db_err)?;
            next.map(from_ns).transpose()
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gpc_domain::lifecycle::{Actor, Party, TaskState};
    use std::future::Future;

    fn update() -> RemoteUpdate {
        RemoteUpdate {
            entry: TimelineEntry {
                version: 2,
                at: Timestamp::now(),
                by: Actor {
                    sds_user_id: "G13579135".into(),
                    name: "Dr Nichole GILBERT".into(),
                    role_code: "R0260".into(),
                    role_display: "General Medical Practitioner".into(),
                    organisation: OdsCode::parse("GPC001").unwrap(),
                },
                party: Party::Receiver,
                state: TaskState::Accepted,
                owner: None,
                note: None,
            },
            received: None,
        }
    }

    /// The call that schedules a writer turn may go away (its client hung
    /// up) while the turn waits for the connection; the changes queued
    /// behind it are still written and answered.
    #[tokio::test]
    async fn a_caller_gone_while_its_turn_waits_does_not_stall_the_others() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = SqliteOutbox::open(dir.path()).unwrap();
        let held = Arc::clone(&outbox.conn).lock_owned().await;
        let update = update();
        {
            let mut first = Box::pin(outbox.apply_remote("no-such-task", &update));
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            assert!(first.as_mut().poll(&mut cx).is_pending());
            // Dropped here, its turn not yet run.
        }
        let second = outbox.apply_remote("no-such-task-either", &update);
        drop(held);
        let answer = tokio::time::timeout(std::time::Duration::from_secs(60), second)
            .await
            .expect("the change behind a gone caller's turn is answered");
        assert_eq!(answer.unwrap(), None, "no sent task has that id");
    }

    /// An update finds its sent task by the provider's id, not by reading
    /// every task the organisation sent.
    #[test]
    fn an_update_finds_its_task_by_the_providers_id() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        let mut stmt = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {FIND_DELIVERED}"))
            .unwrap();
        let plan: Vec<String> = stmt
            .query_map(params!["Y00001", "id"], |r| r.get(3))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let plan = plan.join("; ");
        assert!(plan.contains("USING INDEX sent_by_provider_task"), "{plan}");
    }
}
