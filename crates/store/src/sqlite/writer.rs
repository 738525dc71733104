//! The single writer: one thread owns the write connection and commits
//! whatever is waiting in one transaction (group commit), so that throughput
//! is bounded by the number of fsyncs per batch, not per request. Each waiter
//! is answered only after the commit that holds its write.

use super::checkpointer::Checkpointer;
use super::codec;
use super::{PlainHandle, db_err};
use crate::rows::task::{TaskRow, distinct_keys, task_columns};
use crate::rows::timeline::{
    Earlier, decode_earlier, life_cells, not_a_repeat, repeat_query, timeline_cells,
    timeline_insert_columns,
};
use crate::rows::updates::{
    claim_order, claimable, decode_update, finish_cells, finish_statement, new_update_cells,
    update_insert_columns, updates_with_entries,
};
use crate::rows::{Cell, to_ns};
use crate::{ChangeOutcome, CreateOutcome, StoreError};
use gpc_domain::audit::{AuditRecord, SspAuditRecord};
use gpc_domain::lifecycle::{TaskChange, TaskState};
use gpc_domain::task::{BusinessIdentifier, NewTask, ReceivedTask};
use gpc_domain::updates::{OutgoingUpdate, Wire};
use gpc_domain::{Asid, OdsCode};
use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params, params_from_iter};
use std::sync::LazyLock;
use std::sync::mpsc;
use std::thread::JoinHandle;
use tokio::sync::oneshot;

/// Enough to amortise an fsync over many requests, small enough that one
/// commit does not keep the first waiter of the batch long.
const MAX_BATCH_OPS: usize = 512;

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

pub(super) enum Op {
    Create {
        task: Box<TaskRow>,
        audit: AuditRecord,
        reply: Reply<CreateOutcome>,
    },
    Audit(AuditRecord),
    SspAudit(SspAuditRecord),
    Bulk {
        tasks: Vec<TaskRow>,
        reply: Reply<()>,
    },
    Flush(Reply<()>),
    /// A change of a received task (`Store::change_task`).
    Change {
        tenant: OdsCode,
        id: String,
        change: Box<TaskChange>,
        reply: Reply<Option<ChangeOutcome>>,
    },
    /// Reference data to insert or update, in one transaction of its own.
    Reference {
        data: Box<gpc_domain::reference::ReferenceData>,
        reply: Reply<()>,
    },
    /// Due updates for their senders, leased to `owner` (`Store::claim_updates`).
    ClaimUpdates {
        owner: String,
        now: Timestamp,
        lease_until: Timestamp,
        limit: usize,
        reply: Reply<Vec<OutgoingUpdate>>,
    },
    /// How an attempt of a claimed update ended (`Store::finish_update`).
    FinishUpdate {
        owner: String,
        update: Box<OutgoingUpdate>,
        reply: Reply<bool>,
    },
    /// A write to the web UI's sessions (`Store::start_session`, ...).
    Session {
        op: Box<super::sessions::SessionOp>,
        reply: Reply<super::sessions::SessionAnswer>,
    },
}

/// The sending side; dropping it lets the thread drain the queue, commit and stop.
pub(super) struct Writer {
    tx: Option<mpsc::Sender<Op>>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    /// `plain` is held until the write connection has closed (see `PlainHandle`).
    pub fn spawn(
        conn: Connection,
        checkpointer: Checkpointer,
        plain: PlainHandle,
    ) -> Result<Self, StoreError> {
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("gpc-store-writer".into())
            .spawn(move || {
                raise_priority();
                run(conn, rx, checkpointer, plain)
            })
            .map_err(|e| StoreError::Other(format!("cannot start the store writer: {e}")))?;
        Ok(Self {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// Queues `op`; fails once the writer has stopped.
    pub fn send(&self, op: Op) -> Result<(), StoreError> {
        match &self.tx {
            Some(tx) => tx.send(op).map_err(|_| stopped()),
            None => Err(stopped()),
        }
    }

    /// Queues an op that carries `reply` and waits for its answer.
    pub async fn call<T>(&self, op: impl FnOnce(Reply<T>) -> Op) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.send(op(reply))?;
        answer.await.map_err(|_| stopped())?
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("store writer thread panicked");
        }
    }
}

/// The nice value the writer asks for.
const WRITER_NICE: i32 = -10;

/// Every create waits for this one thread, which shares two cores with the
/// request workers: when it waits for a CPU, every waiter of its batch
/// waits too. Raised above them (creates at 64 connections measured +8 to
/// +15 %, bench/run's quick A/B in bench/README.md) when the process may
/// (root or `CAP_SYS_NICE`); otherwise it runs at the normal priority.
fn raise_priority() {
    #[cfg(target_os = "linux")]
    {
        let tid = rustix::thread::gettid();
        match rustix::process::setpriority_process(Some(tid), WRITER_NICE) {
            Ok(()) => tracing::debug!(nice = WRITER_NICE, "store writer priority raised"),
            Err(e) => tracing::info!(
                error = %e,
                "store writer at normal priority (raising it needs CAP_SYS_NICE)"
            ),
        }
    }
}

fn stopped() -> StoreError {
    StoreError::Busy("the store writer has stopped".into())
}

fn run(
    mut conn: Connection,
    rx: mpsc::Receiver<Op>,
    checkpointer: Checkpointer,
    plain: PlainHandle,
) {
    // `recv` keeps returning queued ops after the sender is dropped and fails
    // only once the queue is empty, so shutdown commits everything queued.
    while let Ok(first) = rx.recv() {
        let mut batch = Vec::with_capacity(64);
        batch.push(first);
        while batch.len() < MAX_BATCH_OPS {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        commit_batch(&mut conn, batch);
        checkpointer.poke();
    }
    // Stopped before the write connection closes, so that this close can be
    // the last one, which checkpoints the WAL into the file; the plain
    // handle after it.
    drop(checkpointer);
    drop(conn);
    drop(plain);
    tracing::debug!("store writer stopped");
}

/// An op done inside the open transaction, to be answered after the commit.
enum Done {
    Create(Reply<CreateOutcome>, Box<Result<CreateOutcome, StoreError>>),
    Unit(Reply<()>, Result<(), StoreError>),
    Change(
        Reply<Option<ChangeOutcome>>,
        Box<Result<Option<ChangeOutcome>, StoreError>>,
    ),
    Claimed(
        Reply<Vec<OutgoingUpdate>>,
        Result<Vec<OutgoingUpdate>, StoreError>,
    ),
    Bool(Reply<bool>, Result<bool, StoreError>),
    Session(
        Reply<super::sessions::SessionAnswer>,
        Result<super::sessions::SessionAnswer, StoreError>,
    ),
}

fn commit_batch(conn: &mut Connection, batch: Vec<Op>) {
    let started = std::time::Instant::now();
    let ops_in_batch = batch.len();
    let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => {
            let err = db_err(e);
            tracing::error!(error = %err, ops = batch.len(), "store batch could not start");
            fail_all(batch, &err);
            return;
        }
    };
    let mut done = Vec::with_capacity(batch.len());
    let mut audits_lost = 0usize;
    // Counted once the commit has happened.
    let mut transitions = Vec::new();
    let mut ops = batch.into_iter();
    while let Some(op) = ops.next() {
        match op {
            Op::Create { task, audit, reply } => {
                match create(&tx, *task, &audit) {
                    Ok(result) => done.push(Done::Create(reply, Box::new(result))),
                    Err(Abandon(why)) => {
                        // Rows of a failed create may remain: nothing of
                        // this batch can be committed (dropping `tx` rolls
                        // it back).
                        let err = StoreError::Busy(format!("the batch was abandoned: {why}"));
                        let _ = reply.send(Err(err.clone()));
                        drop(tx);
                        abort(done, ops, &err);
                        return;
                    }
                }
            }
            Op::Audit(record) => {
                if let Err(e) = codec::insert_audit(&tx, &record) {
                    audits_lost += 1;
                    tracing::warn!(error = %e, "audit record not written");
                }
            }
            Op::SspAudit(record) => {
                if let Err(e) = codec::insert_ssp_audit(&tx, &record) {
                    audits_lost += 1;
                    tracing::warn!(error = %e, "SSP audit record not written");
                }
            }
            Op::Bulk { tasks, reply } => {
                let result = in_savepoint(&tx, |c| bulk(c, &tasks));
                done.push(Done::Unit(reply, result));
            }
            Op::Flush(reply) => done.push(Done::Unit(reply, Ok(()))),
            Op::Change {
                tenant,
                id,
                change,
                reply,
            } => {
                let result = in_savepoint(&tx, |c| change_task(c, &tenant, &id, &change)).map(
                    |(outcome, moved)| {
                        transitions.extend(moved);
                        outcome
                    },
                );
                done.push(Done::Change(reply, Box::new(result)));
            }
            Op::Reference { data, reply } => {
                let result = in_savepoint(&tx, |c| codec::upsert_reference(c, &data));
                done.push(Done::Unit(reply, result));
            }
            Op::ClaimUpdates {
                owner,
                now,
                lease_until,
                limit,
                reply,
            } => {
                let result =
                    in_savepoint(&tx, |c| claim_updates(c, &owner, now, lease_until, limit));
                done.push(Done::Claimed(reply, result));
            }
            Op::FinishUpdate {
                owner,
                update,
                reply,
            } => {
                let result = in_savepoint(&tx, |c| finish_update(c, &owner, &update));
                done.push(Done::Bool(reply, result));
            }
            Op::Session { op, reply } => {
                let result = in_savepoint(&tx, |c| super::sessions::apply(c, *op));
                done.push(Done::Session(reply, result));
            }
        }
        // SQLite rolls the whole transaction back on some errors (disk full,
        // I/O); going on would run the rest of the batch outside any
        // transaction, so the batch stops here and everyone is told.
        if tx.is_autocommit() {
            let err = StoreError::Busy("the batch transaction was rolled back".into());
            abort(done, ops, &err);
            return;
        }
    }
    match tx.commit() {
        Ok(()) => {
            crate::metrics::record_commit(ops_in_batch, started.elapsed());
            for (from, to) in transitions {
                crate::metrics::record_transition(from, to);
            }
            if audits_lost > 0 {
                tracing::warn!(count = audits_lost, "audit records lost");
            }
            answer(done, None);
        }
        Err(e) => {
            let err = db_err(e);
            tracing::error!(error = %err, ops = done.len(), "store batch commit failed");
            answer(done, Some(&err));
        }
    }
}

/// Ends a batch that cannot commit: the ops done so far and the ops not yet
/// run all fail with `err`.
fn abort(done: Vec<Done>, rest: impl Iterator<Item = Op>, err: &StoreError) {
    tracing::error!(error = %err, "store batch aborted");
    answer(done, Some(err));
    fail_all(rest.collect(), err);
}

/// Answers every waiter; `failed` replaces the successes when the commit did not happen.
fn answer(done: Vec<Done>, failed: Option<&StoreError>) {
    for d in done {
        // A waiter that gave up (its request was cancelled) is not an error.
        match d {
            Done::Create(reply, result) => {
                let _ = reply.send(override_ok(*result, failed));
            }
            Done::Unit(reply, result) => {
                let _ = reply.send(override_ok(result, failed));
            }
            Done::Change(reply, result) => {
                let _ = reply.send(override_ok(*result, failed));
            }
            Done::Claimed(reply, result) => {
                let _ = reply.send(override_ok(result, failed));
            }
            Done::Bool(reply, result) => {
                let _ = reply.send(override_ok(result, failed));
            }
            Done::Session(reply, result) => {
                let _ = reply.send(override_ok(result, failed));
            }
        }
    }
}

fn override_ok<T>(
    result: Result<T, StoreError>,
    failed: Option<&StoreError>,
) -> Result<T, StoreError> {
    match (result, failed) {
        (Ok(_), Some(e)) => Err(e.clone()),
        (r, _) => r,
    }
}

fn fail_all(ops: Vec<Op>, err: &StoreError) {
    let mut audits = 0usize;
    for op in ops {
        match op {
            Op::Create { reply, .. } => {
                let _ = reply.send(Err(err.clone()));
            }
            Op::Change { reply, .. } => {
                let _ = reply.send(Err(err.clone()));
            }
            Op::ClaimUpdates { reply, .. } => {
                let _ = reply.send(Err(err.clone()));
            }
            Op::FinishUpdate { reply, .. } => {
                let _ = reply.send(Err(err.clone()));
            }
            Op::Session { reply, .. } => {
                let _ = reply.send(Err(err.clone()));
            }
            Op::Bulk { reply, .. } | Op::Flush(reply) | Op::Reference { reply, .. } => {
                let _ = reply.send(Err(err.clone()));
            }
            Op::Audit(_) | Op::SspAudit(_) => audits += 1,
        }
    }
    if audits > 0 {
        tracing::warn!(count = audits, "audit records lost");
    }
}

/// Makes one op all-or-nothing inside the batch, so that its failure (a
/// constraint, say) leaves no half-written task and does not fail the others.
fn in_savepoint<T>(
    conn: &Connection,
    op: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let exec = |sql: &str| {
        conn.prepare_cached(sql)
            .and_then(|mut s| s.execute([]))
            .map_err(db_err)
    };
    exec("SAVEPOINT op")?;
    match op(conn) {
        Ok(v) => {
            exec("RELEASE op")?;
            Ok(v)
        }
        Err(e) => {
            if !conn.is_autocommit() {
                // Best effort: the original error is what the waiter needs to see.
                let _ = exec("ROLLBACK TO op").and_then(|_| exec("RELEASE op"));
            }
            Err(e)
        }
    }
}

/// A create's failure that left rows behind which could not be taken back.
struct Abandon(String);

/// One create, all-or-nothing inside the batch without a savepoint (a
/// savepoint copies every page the op touches into a sub-journal, a large
/// part of a create's cost in the writer): the keys are claimed first, so a
/// repeat stops before anything is written, and a later failure takes back
/// what this op wrote. The outer error abandons the whole batch.
fn create(
    conn: &Connection,
    task: TaskRow,
    audit: &AuditRecord,
) -> Result<Result<CreateOutcome, StoreError>, Abandon> {
    let t = &task.task.task;
    let keys = distinct_keys(t);
    // Earlier ops of this batch are visible here, so duplicates within one
    // batch resolve in arrival order like duplicates across batches.
    for (i, key) in keys.iter().enumerate() {
        match claim_key(conn, t, key) {
            Ok(true) => {}
            Ok(false) => {
                undo(conn, t, &keys[..i], false)?;
                return Ok(existing_holder(conn, t, key));
            }
            Err(e) => {
                undo(conn, t, &keys[..i], false)?;
                return Ok(Err(e));
            }
        }
    }
    let mut task_written = false;
    let written = codec::insert_task(conn, &task)
        .map_err(db_err)
        .and_then(|()| {
            task_written = true;
            codec::insert_audit(conn, audit)
        });
    if let Err(e) = written {
        undo(conn, t, &keys, task_written)?;
        return Ok(Err(e));
    }
    Ok(Ok(CreateOutcome::Created(task.task)))
}

/// The task that holds `key`, found when claiming it failed.
fn existing_holder(
    conn: &Connection,
    t: &NewTask,
    key: &BusinessIdentifier,
) -> Result<CreateOutcome, StoreError> {
    let holder = holder_of(conn, &t.tenant, &t.provenance.sender_asid, key)?
        .ok_or_else(|| StoreError::Corrupt("a claimed identifier has no holder".into()))?;
    let existing = read_task(conn, &holder)?
        .ok_or_else(|| StoreError::Corrupt("an identifier points to a missing task".into()))?;
    Ok(CreateOutcome::Existing(existing))
}

/// Inserts the key for `t`; false when another task already holds it.
fn claim_key(conn: &Connection, t: &NewTask, key: &BusinessIdentifier) -> Result<bool, StoreError> {
    conn.prepare_cached(
        "INSERT INTO task_identifiers (tenant, sender_asid, system, value, task_id) \
         VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT DO NOTHING",
    )
    .and_then(|mut s| {
        s.execute(params![
            t.tenant.as_str(),
            t.provenance.sender_asid.as_str(),
            key.system,
            key.value,
            t.id
        ])
    })
    .map(|changed| changed == 1)
    .map_err(db_err)
}

/// Takes back what a failed create wrote. If that fails too, the op's rows
/// cannot be told apart from the batch's others: the error says so, and
/// `commit_batch` rolls the whole batch back.
fn undo(
    conn: &Connection,
    t: &NewTask,
    keys: &[&BusinessIdentifier],
    task_written: bool,
) -> Result<(), Abandon> {
    if conn.is_autocommit() {
        // SQLite already rolled the transaction back; `commit_batch` sees it.
        return Ok(());
    }
    let result = (|| {
        let mut delete_key = conn.prepare_cached(
            "DELETE FROM task_identifiers \
             WHERE tenant = ?1 AND sender_asid = ?2 AND system = ?3 AND value = ?4 AND task_id = ?5",
        )?;
        for key in keys {
            delete_key.execute(params![
                t.tenant.as_str(),
                t.provenance.sender_asid.as_str(),
                key.system,
                key.value,
                t.id
            ])?;
        }
        if task_written {
            conn.prepare_cached("DELETE FROM tasks WHERE id = ?1")?
                .execute([&t.id])?;
        }
        Ok(())
    })();
    result.map_err(|e: rusqlite::Error| Abandon(db_err(e).to_string()))
}

/// The benchmark fast path: no audit, no lookup before the insert. A key
/// already held keeps its first task, as `create` would have.
fn bulk(conn: &Connection, tasks: &[TaskRow]) -> Result<(), StoreError> {
    for task in tasks {
        codec::insert_task(conn, task).map_err(db_err)?;
        for key in distinct_keys(&task.task.task) {
            claim_key(conn, &task.task.task, key)?;
        }
    }
    Ok(())
}

fn holder_of(
    conn: &Connection,
    tenant: &OdsCode,
    sender_asid: &Asid,
    key: &BusinessIdentifier,
) -> Result<Option<String>, StoreError> {
    conn.prepare_cached(
        "SELECT task_id FROM task_identifiers \
         WHERE tenant = ?1 AND sender_asid = ?2 AND system = ?3 AND value = ?4",
    )
    .and_then(|mut s| {
        s.query_row(
            params![tenant.as_str(), sender_asid.as_str(), key.system, key.value],
            |r| r.get(0),
        )
        .optional()
    })
    .map_err(db_err)
}

fn read_task(conn: &Connection, id: &str) -> Result<Option<ReceivedTask>, StoreError> {
    super::query_tasks(
        conn,
        concat!("SELECT ", task_columns!(), " FROM tasks WHERE id = ?1"),
        params![id],
    )
    .map(|mut v| v.pop())
}

/// The states an applied change moved a task between.
type Moved = Option<(TaskState, TaskState)>;

/// One change of a received task, against the task as the writer finds it:
/// the writer is the only one, so nothing can come between the read and
/// the write. With the outcome, the states it moved the task between, if
/// it was applied (for the metrics, once committed).
fn change_task(
    conn: &Connection,
    tenant: &OdsCode,
    id: &str,
    change: &TaskChange,
) -> Result<(Option<ChangeOutcome>, Moved), StoreError> {
    let found = super::query_tasks(
        conn,
        concat!(
            "SELECT ",
            task_columns!(),
            " FROM tasks WHERE id = ?1 AND tenant = ?2"
        ),
        params![id, tenant.as_str()],
    )?
    .pop();
    let Some(current) = found else {
        return Ok((None, None));
    };
    // Before the rules: a repeat of a cancellation that made the task final
    // would be refused by them, and must get its first answer instead.
    if let Wire::Incoming(received) = &change.wire
        && let Some(earlier) = earlier_change(conn, tenant, &received.identifier)?
    {
        return repeat(conn, tenant, current, earlier).map(|o| (Some(o), None));
    }
    let (life, entry) = match change.apply_to(&current.life) {
        Ok(applied) => applied,
        Err(refusal) => {
            return Ok((
                Some(ChangeOutcome::Refused {
                    refusal,
                    task: current,
                }),
                None,
            ));
        }
    };
    let updated = conn
        .prepare_cached(
            "UPDATE tasks SET state = ?1, version = ?2, owner_sds_id = ?3, owner_name = ?4 \
             WHERE id = ?5 AND version = ?6",
        )
        .and_then(|mut s| {
            s.execute(params_from_iter(
                life_cells(id, &life, current.life.version).iter(),
            ))
        })
        .map_err(db_err)?;
    if updated != 1 {
        return Err(StoreError::Corrupt(
            "a task changed under its only writer".into(),
        ));
    }
    let cells = timeline_cells(&current, &entry, &change.wire)?;
    conn.prepare_cached(concat!(
        "INSERT INTO task_timeline (",
        timeline_insert_columns!(),
        ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)"
    ))
    .and_then(|mut s| s.execute(params_from_iter(cells.iter())))
    .map_err(db_err)?;
    if change.notifies_sender() {
        let cells = new_update_cells(&current, &entry, change.wire.identifier(), change.at)?;
        conn.prepare_cached(concat!(
            "INSERT INTO task_updates (",
            update_insert_columns!(),
            ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
        ))
        .and_then(|mut s| s.execute(params_from_iter(cells.iter())))
        .map_err(db_err)?;
    }
    let moved = (current.life.state, life.state);
    let task = ReceivedTask {
        task: current.task,
        life,
    };
    Ok((Some(ChangeOutcome::Changed { task, entry }), Some(moved)))
}

/// The change this tenant made for an arriving update with `identifier`, if any.
fn earlier_change(
    conn: &Connection,
    tenant: &OdsCode,
    identifier: &str,
) -> Result<Option<Earlier>, StoreError> {
    let mut stmt = conn
        .prepare_cached(repeat_query!("?1", "?2"))
        .map_err(db_err)?;
    let mut rows = stmt
        .query(params![tenant.as_str(), identifier])
        .map_err(db_err)?;
    rows.next().map_err(db_err)?.map(decode_earlier).transpose()
}

/// The answer to a repeat: the task the first arrival changed, as it is now.
fn repeat(
    conn: &Connection,
    tenant: &OdsCode,
    current: ReceivedTask,
    earlier: Earlier,
) -> Result<ChangeOutcome, StoreError> {
    let body = earlier.body.ok_or_else(not_a_repeat)?;
    let task = if earlier.task_id == current.id {
        current
    } else {
        super::query_tasks(
            conn,
            concat!(
                "SELECT ",
                task_columns!(),
                " FROM tasks WHERE id = ?1 AND tenant = ?2"
            ),
            params![earlier.task_id, tenant.as_str()],
        )?
        .pop()
        .ok_or_else(|| StoreError::Corrupt("a timeline row of a missing task".into()))?
    };
    Ok(ChangeOutcome::Repeat {
        task,
        entry: earlier.entry,
        body,
    })
}

pub(crate) const CLAIM_UPDATES: &str = concat!(
    updates_with_entries!(),
    " WHERE ",
    claimable!("?1"),
    " ORDER BY ",
    claim_order!(),
    " LIMIT ?2"
);

/// Leases the due updates to `owner`; the writer is the only one, so no
/// other claim can come between the choice and the lease.
fn claim_updates(
    conn: &Connection,
    owner: &str,
    now: Timestamp,
    lease_until: Timestamp,
    limit: usize,
) -> Result<Vec<OutgoingUpdate>, StoreError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut claimed = Vec::new();
    {
        let mut stmt = conn.prepare_cached(CLAIM_UPDATES).map_err(db_err)?;
        let mut rows = stmt.query(params![to_ns(now)?, limit]).map_err(db_err)?;
        while let Some(row) = rows.next().map_err(db_err)? {
            claimed.push(decode_update(row)?);
        }
    }
    let mut lease = conn
        .prepare_cached(
            "UPDATE task_updates SET lease_owner = ?2, lease_until = ?3 WHERE identifier = ?1",
        )
        .map_err(db_err)?;
    let until = to_ns(lease_until)?;
    for update in &claimed {
        lease
            .execute(params![update.identifier, owner, until])
            .map_err(db_err)?;
    }
    Ok(claimed)
}

static FINISH_UPDATE: LazyLock<String> = LazyLock::new(|| finish_statement(|n| format!("?{n}")));

fn finish_update(
    conn: &Connection,
    owner: &str,
    update: &OutgoingUpdate,
) -> Result<bool, StoreError> {
    let cells: [Cell<'_>; 8] = finish_cells(owner, update)?;
    conn.prepare_cached(&FINISH_UPDATE)
        .and_then(|mut s| s.execute(params_from_iter(cells.iter())))
        .map(|changed| changed == 1)
        .map_err(db_err)
}
