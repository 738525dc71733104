//! The sender's durable outbox (spec §10): a task is stored before its first
//! attempt, every attempt is recorded, and a worker claims due tasks under a
//! lease so that a task is delivered by one worker at a time, and a task left
//! by a dead worker is picked up again once its lease runs out.

mod postgres;
pub(crate) mod sqlite;

pub use postgres::{PostgresOutbox, SENT_CHANNEL};
pub use sqlite::{OUTBOX_FILE, SqliteOutbox};

use crate::StoreError;
use gpc_domain::OdsCode;
use gpc_domain::sent::{Attempt, SentTask};
use jiff::Timestamp;
use tokio::sync::broadcast;

/// A sent task's stored state changed (enqueued, marked, an attempt
/// finished, requeued), on some instance sharing the outbox. Ids only: read
/// the task with `Outbox::get`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentEvent {
    pub from_ods: OdsCode,
    pub task_id: String,
}

#[async_trait::async_trait]
pub trait Outbox: Send + Sync + 'static {
    /// Stores a new task; on disk when this returns Ok.
    async fn enqueue(&self, task: &SentTask) -> Result<(), StoreError>;

    /// Claims up to `limit` due tasks for `owner` until `lease_until`: those
    /// queued or failed with `next_attempt_at <= now`, and those still
    /// `Sending` whose lease has run out (their worker died). Claimed tasks are
    /// returned as they were before the claim, so the caller can tell a retry.
    async fn claim_due(
        &self,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: usize,
    ) -> Result<Vec<SentTask>, StoreError>;

    /// Marks a claimed task as being sent (status `Sending` or `Retrying`).
    async fn mark(&self, owner: &str, task: &SentTask) -> Result<bool, StoreError>;

    /// Records a finished attempt and the task's new state, in one
    /// transaction, if `owner` still holds the lease; false otherwise (the
    /// lease was lost and another worker owns the task now).
    async fn finish_attempt(
        &self,
        owner: &str,
        task: &SentTask,
        attempt: &Attempt,
    ) -> Result<bool, StoreError>;

    async fn get(&self, id: &str) -> Result<Option<SentTask>, StoreError>;

    async fn attempts(&self, id: &str) -> Result<Vec<Attempt>, StoreError>;

    /// Tasks sent by an organisation, newest first.
    async fn list(&self, from_ods: &OdsCode, limit: usize) -> Result<Vec<SentTask>, StoreError>;

    /// A person's retry: a `Failed` task with no automatic retry pending is
    /// queued now with a fresh retry budget. Returns the task, or `None` when
    /// it is not in that state.
    async fn requeue(&self, id: &str, now: Timestamp) -> Result<Option<SentTask>, StoreError>;

    /// When the next task becomes due, if any is waiting.
    async fn next_due(&self) -> Result<Option<Timestamp>, StoreError>;

    /// Changes committed from now on by any instance sharing this outbox,
    /// this one included; `None` when the backend has no such feed (SQLite:
    /// one instance, whose engine publishes its own status events).
    fn sent_events(&self) -> Option<broadcast::Receiver<SentEvent>> {
        None
    }
}
