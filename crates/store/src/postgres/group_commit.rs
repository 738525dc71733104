//! Group commit of creates on PostgreSQL: the creates waiting at a moment
//! go into one transaction, as the SQLite writer does, so that a batch
//! costs four round trips and one WAL flush instead of each create its own.
//! Each create answered Ok was committed (`synchronous_commit` stays on).
//!
//! Idempotency still rests on the primary key of `task_identifiers`: a
//! create whose key another batch holds (this instance's or another's)
//! waits for it at its insert, as before; a key held within the same batch
//! is seen at once. A create that is a duplicate takes back the keys it did
//! insert, in the same transaction, and is answered with the holder after
//! the commit. A batch that fails as a whole is repeated after a deadlock
//! or a serialisation failure; after any other error each of its creates
//! runs alone (`create_alone`), so that one bad create fails
//! only itself.

use super::codec;
use super::connection::{pg_err, pool_err};
use super::{
    CREATE_TRIES, Failure, INSERT_AUDIT, INSERT_KEY, RECEIVED_CHANNEL, create_alone, key_params,
    received_batch_payloads,
};
use crate::rows::Cell;
use crate::rows::audit::audit_cells;
use crate::rows::task::{TaskRow, distinct_keys};
use crate::{CreateOutcome, StoreError};
use deadpool_postgres::Pool;
use futures_util::future::try_join_all;
use gpc_domain::audit::AuditRecord;
use std::sync::Arc;
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio_postgres::types::ToSql;

/// Creates in one transaction at most: enough to amortise the round trips
/// and the flush, few enough that the first of them does not wait long.
const MAX_BATCH: usize = 256;

/// Batches in flight at once. While one commits, the creates arriving
/// gather for the next; more than one keeps the server busy during the
/// round trips (PostgreSQL groups their flushes again itself).
const BATCHERS: usize = 4;

/// One create waiting for its batch.
pub(super) struct Job {
    pub task: TaskRow,
    pub audit: AuditRecord,
    pub reply: oneshot::Sender<Result<CreateOutcome, StoreError>>,
}

/// The queue the batchers take from.
pub(super) struct GroupCommit {
    queue: mpsc::UnboundedSender<Box<Job>>,
}

impl GroupCommit {
    /// Starts the batchers on `pool`; they stop when this is dropped.
    pub fn spawn(pool: Pool) -> Self {
        let (queue, rx) = mpsc::unbounded_channel();
        let rx = Arc::new(Mutex::new(rx));
        for _ in 0..BATCHERS {
            tokio::spawn(batcher(Arc::clone(&rx), pool.clone()));
        }
        Self { queue }
    }

    /// Queues `job`; gives it back when the batchers have stopped.
    pub fn send(&self, job: Box<Job>) -> Result<(), Box<Job>> {
        self.queue.send(job).map_err(|e| e.0)
    }
}

async fn batcher(rx: Arc<Mutex<mpsc::UnboundedReceiver<Box<Job>>>>, pool: Pool) {
    loop {
        let batch = {
            let mut rx = rx.lock().await;
            let Some(first) = rx.recv().await else { return };
            let mut batch = vec![*first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(job) => batch.push(*job),
                    Err(_) => break,
                }
            }
            batch
        };
        run_batch(&pool, batch).await;
    }
}

/// What became of one create of a batch, before the commit.
enum Step {
    New,
    /// A key was held: the holder is read after the commit.
    Duplicate,
}

async fn run_batch(pool: &Pool, batch: Vec<Job>) {
    // An audit record that cannot be encoded fails its create alone, before
    // the transaction (as a create alone would).
    let mut ready = Vec::with_capacity(batch.len());
    for job in batch {
        match audit_cells(&job.audit) {
            Ok(_) => ready.push(job),
            Err(e) => {
                let _ = job.reply.send(Err(e));
            }
        }
    }
    let mut batch = ready;
    // Keys inserted in one order everywhere, so that two batches sharing
    // keys wait for each other rather than deadlock (mostly: a create's
    // keys are sorted, and the batch by each create's first key).
    batch.sort_by(|a, b| first_key(&a.task).cmp(&first_key(&b.task)));
    for tries in 1..=CREATE_TRIES {
        match try_batch(pool, &batch).await {
            Ok(steps) => return answer(pool, batch, steps).await,
            Err(Failure::Retry(e)) if tries < CREATE_TRIES => {
                tracing::debug!(error = %pg_err(e), tries, creates = batch.len(), "batch repeated");
            }
            Err(Failure::Retry(e)) => {
                tracing::debug!(error = %pg_err(e), creates = batch.len(), "batch failed; each create runs alone");
                break;
            }
            Err(Failure::Final(e)) => {
                tracing::debug!(error = %e, creates = batch.len(), "batch failed; each create runs alone");
                break;
            }
        }
    }
    for job in batch {
        let outcome = create_alone(pool, &job.task, &job.audit).await;
        let _ = job.reply.send(outcome);
    }
}

fn first_key(task: &TaskRow) -> Option<(&str, &str)> {
    distinct_keys(&task.task.task)
        .into_iter()
        .map(|k| (k.system.as_str(), k.value.as_str()))
        .min()
}

/// One transaction for the whole batch: what each create came to.
async fn try_batch(pool: &Pool, batch: &[Job]) -> Result<Vec<Step>, Failure> {
    let started = std::time::Instant::now();
    let mut client = pool.get().await.map_err(|e| Failure::Final(pool_err(e)))?;
    let tx = client.transaction().await?;
    let insert_key = tx.prepare_cached(INSERT_KEY).await?;
    let delete_key = tx.prepare_cached(DELETE_KEY).await?;
    let insert_task = tx.prepare_cached(codec::INSERT_TASK).await?;
    let insert_audit = tx.prepare_cached(INSERT_AUDIT).await?;
    let notify = tx.prepare_cached("SELECT pg_notify($1, $2)").await?;

    // Every key of every create, in one pipeline: statements on one
    // connection run in the order they were sent.
    let keys: Vec<Vec<[Cell<'_>; 5]>> = batch
        .iter()
        .map(|job| {
            let t = &job.task.task.task;
            let mut keys = distinct_keys(t);
            keys.sort_by(|a, b| (&a.system, &a.value).cmp(&(&b.system, &b.value)));
            keys.into_iter().map(|k| key_params(t, k)).collect()
        })
        .collect();
    let key_params: Vec<Vec<_>> = keys
        .iter()
        .map(|of_one| of_one.iter().map(|k| codec::params(k)).collect())
        .collect();
    let inserted = try_join_all(
        key_params
            .iter()
            .flatten()
            .map(|params| tx.execute(&insert_key, params)),
    )
    .await?;
    let mut counts = inserted.as_slice();
    let mut taken = Vec::with_capacity(batch.len());
    for of_one in &key_params {
        let (mine, rest) = counts.split_at(of_one.len());
        counts = rest;
        taken.push(mine);
    }
    let steps: Vec<Step> = taken
        .iter()
        .map(|mine| {
            if mine.iter().all(|&n| n == 1) {
                Step::New
            } else {
                Step::Duplicate
            }
        })
        .collect();

    // The new creates' rows, and the keys a duplicate inserted before it
    // met a held one taken back, in a second pipeline.
    let new: Vec<&Job> = batch
        .iter()
        .zip(&steps)
        .filter(|(_, step)| matches!(step, Step::New))
        .map(|(job, _)| job)
        .collect();
    let task_cells: Vec<_> = new.iter().map(|job| job.task.cells()).collect();
    let audit_rows = new
        .iter()
        .map(|job| audit_cells(&job.audit))
        .collect::<Result<Vec<_>, _>>()
        .map_err(Failure::Final)?;
    // One notification for many tasks: a NOTIFY per create was a third of
    // the statements of a batch.
    let payloads = received_batch_payloads(
        new.iter()
            .map(|job| (&job.task.task.task.tenant, job.task.task.task.id.as_str())),
    );
    let task_params: Vec<_> = task_cells.iter().map(|c| codec::params(c)).collect();
    let audit_params: Vec<_> = audit_rows.iter().map(|c| codec::params(c)).collect();
    let notify_params: Vec<[&(dyn ToSql + Sync); 2]> = payloads
        .iter()
        .map(|p| {
            [
                &RECEIVED_CHANNEL as &(dyn ToSql + Sync),
                p as &(dyn ToSql + Sync),
            ]
        })
        .collect();
    let mut writes = Vec::new();
    for p in &task_params {
        writes.push(tx.execute(&insert_task, p));
    }
    for p in &audit_params {
        writes.push(tx.execute(&insert_audit, p));
    }
    for p in &notify_params {
        writes.push(tx.execute(&notify, p));
    }
    for ((of_one, mine), step) in key_params.iter().zip(&taken).zip(&steps) {
        if matches!(step, Step::Duplicate) {
            for (params, _) in of_one.iter().zip(mine.iter()).filter(|(_, n)| **n == 1) {
                writes.push(tx.execute(&delete_key, params));
            }
        }
    }
    try_join_all(writes).await?;
    tx.commit().await?;
    crate::metrics::record_commit(batch.len() + new.len(), started.elapsed());
    Ok(steps)
}

/// Answers each create of a committed batch: the new ones with their task,
/// the duplicates with the task holding their key.
async fn answer(pool: &Pool, batch: Vec<Job>, steps: Vec<Step>) {
    for (job, step) in batch.into_iter().zip(steps) {
        let outcome = match step {
            Step::New => Ok(CreateOutcome::Created(job.task.task.clone())),
            // The holder committed before this batch or with it: a create
            // alone finds it (and reports a key with no holder, which only
            // a corrupt store has).
            Step::Duplicate => create_alone(pool, &job.task, &job.audit).await,
        };
        let _ = job.reply.send(outcome);
    }
}

/// A key a duplicate inserted before meeting a held one, taken back.
const DELETE_KEY: &str = "DELETE FROM task_identifiers WHERE tenant = $1 AND sender_asid = $2 \
     AND system = $3 AND value = $4 AND task_id = $5";
