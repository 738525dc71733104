//! The sender's durable outbox (spec §10): a task is stored before its first
//! attempt, every attempt is recorded, and a worker claims due tasks under a
//! lease so that a task is delivered by one worker at a time, and a task left
//! by a dead worker is picked up again once its lease runs out. Once
//! delivered, a task keeps where the recipient's copy stands and the changes
//! the recipient reports (task-lifecycle.md §2, §3), and a cancellation is
//! sent under the same kind of lease.

/// What `Outbox::waiting` counts, the same on every backend.
const WAITING: &str = "SELECT \
       (SELECT COUNT(*) FROM sent_tasks \
         WHERE status IN ('queued', 'sending', 'retrying') \
            OR (status = 'failed' AND next_attempt_at IS NOT NULL)) \
     + (SELECT COUNT(*) FROM sent_tasks WHERE cancel_status = 'pending')";

mod postgres;
pub(crate) mod sqlite;

pub use postgres::{PostgresOutbox, SENT_CHANNEL};
pub use sqlite::{OUTBOX_FILE, SqliteOutbox};

use crate::StoreError;
use gpc_domain::OdsCode;
use gpc_domain::lifecycle::TimelineEntry;
use gpc_domain::sent::{Attempt, SentTask};
use gpc_domain::updates::{Cancellation, RemoteUpdate};
use jiff::Timestamp;
use tokio::sync::broadcast;

/// A sent task's stored state changed (enqueued, marked, an attempt
/// finished, requeued, a change reported, a cancellation asked for or
/// finished), on some instance sharing the outbox. Ids only: read
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

    /// The delivered task that `from_ods` sent and its recipient holds as
    /// `provider_task_id` (the id in the 201's Location); the caller checks
    /// that the recipient is the organisation asking.
    async fn find_delivered(
        &self,
        from_ods: &OdsCode,
        provider_task_id: &str,
    ) -> Result<Option<SentTask>, StoreError>;

    /// Applies a change the recipient reports to sent task `id`, in one
    /// transaction (task-lifecycle.md §2 steps 5, 6): an update whose
    /// `received.identifier` is already on a sent task's timeline is a
    /// `Repeat`; one whose version is not above `remote.version` is `Late`;
    /// neither changes anything. Otherwise `remote` becomes the entry's
    /// state, version, owner and time, and the entry (with the received
    /// identifier and body) joins the task's timeline: `Applied`, with the
    /// task as it is now. `updated_at` is left alone: the entry's time is
    /// the recipient's clock. `None` when there is no such task.
    async fn apply_remote(
        &self,
        id: &str,
        update: &RemoteUpdate,
    ) -> Result<Option<RemoteOutcome>, StoreError>;

    /// The recipient's changes of sent task `id` after its delivery, by version.
    async fn sent_timeline(&self, id: &str) -> Result<Vec<TimelineEntry>, StoreError>;

    /// Stores `cancellation` on sent task `id` if it is delivered, its
    /// remote state is not final and it has no cancellation yet: as given,
    /// but `Pending` (due at its `next_attempt_at`, which the caller sets to
    /// now), and `updated_at` becomes its `requested_at`. Returns the task
    /// as it is then; `None` when it is not in that state (nothing written).
    async fn request_cancel(
        &self,
        id: &str,
        cancellation: &Cancellation,
    ) -> Result<Option<SentTask>, StoreError>;

    /// Claims due cancellations like `claim_due` claims tasks: pending,
    /// `next_attempt_at <= now`, not leased or the lease ran out (the lease
    /// of the delivery, which a delivered task no longer needs). Oldest
    /// request first; returned as they were before the claim. Concurrent
    /// claims never share a task.
    async fn claim_cancellations(
        &self,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: usize,
    ) -> Result<Vec<SentTask>, StoreError>;

    /// Records how a cancellation attempt ended (`task.cancellation` and
    /// `task.updated_at` as they are now; nothing else of `task`) and
    /// releases the lease, if `owner` still holds it; false otherwise. With
    /// `applied` (the receiver's 201: the task cancelled at that version),
    /// applies it as `apply_remote` would, without a received update, in the
    /// same transaction; unless the version held is already as high (an
    /// update overtook the answer), which then stays.
    async fn finish_cancellation(
        &self,
        owner: &str,
        task: &SentTask,
        applied: Option<&TimelineEntry>,
    ) -> Result<bool, StoreError>;

    /// How many tasks and cancellations wait to be sent, due or not: queued,
    /// being sent, failed with an automatic retry to come, and pending
    /// cancellations (for `gpc_outbox_depth`).
    async fn waiting(&self) -> Result<u64, StoreError>;

    /// When the next task or cancellation becomes due, if any is waiting
    /// (for one being sent, when its lease runs out).
    async fn next_due(&self) -> Result<Option<Timestamp>, StoreError>;

    /// Changes committed from now on by any instance sharing this outbox,
    /// this one included; `None` when the backend has no such feed (SQLite:
    /// one instance, whose engine publishes its own status events).
    fn sent_events(&self) -> Option<broadcast::Receiver<SentEvent>> {
        None
    }
}

/// What `apply_remote` did.
#[derive(Debug, Clone, PartialEq)]
pub enum RemoteOutcome {
    /// The change was applied: the sent task as it is now.
    Applied(SentTask),
    /// An older version than the one held arrived late: nothing changed.
    Late(SentTask),
    /// This update was applied before: nothing changed; the body it was
    /// answered with then.
    Repeat { task: SentTask, body: String },
}
