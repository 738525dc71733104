//! Durable storage behind one trait, so that the handlers do not know which
//! database holds their tasks. SQLite (embedded, WAL, group commit) is the
//! default backend, for one instance; PostgreSQL serves several instances
//! as one system. Both pass one conformance suite (`tests/store_conformance.rs`,
//! `tests/outbox.rs`). `open_store` and `open_outbox` choose between them.

// The unit tests' crate sees every dev-dependency, which the integration tests use.
#![cfg_attr(test, allow(unused_crate_dependencies))]

pub mod metrics;
pub mod outbox;
mod postgres;
mod rows;
pub mod sessions;
mod sqlite;
#[cfg(any(test, feature = "test-support"))]
pub mod test_support;
#[cfg(test)]
mod upgrade_tests;

pub use postgres::{PostgresStore, RECEIVED_CHANNEL};
pub use sqlite::backup::{BackedUp, backup_data_dir, outbox_copy};
pub use sqlite::{DATABASE_FILE, SCHEMA_VERSION, SqliteStore};

use gpc_domain::audit::{AuditFilter, AuditRecord, SspAuditFilter, SspAuditRecord};
use gpc_domain::lifecycle::{InboxView, Refusal, TaskChange, TimelineEntry};
use gpc_domain::reference::{Patient, PatientKey, PatientRecord, ReferenceData};
use gpc_domain::task::{BusinessIdentifier, NewTask, ReceivedEvent, ReceivedTask};
use gpc_domain::updates::OutgoingUpdate;
use gpc_domain::{Asid, NhsNumber, OdsCode};
use jiff::Timestamp;
use outbox::{Outbox, PostgresOutbox, SqliteOutbox};
use sessions::{PendingSignIn, WebSession};
use std::path::Path;
use std::sync::Arc;
use tokio::sync::broadcast;

/// The received-task store: PostgreSQL at `database_url` when one is given,
/// otherwise SQLite in `data_dir` (created when missing). Either is migrated
/// to this binary's schema; a new one holds no reference data until the
/// caller writes some (`Store::upsert_reference`).
pub async fn open_store(
    database_url: Option<&str>,
    data_dir: &Path,
) -> Result<Arc<dyn Store>, StoreError> {
    match database_url {
        Some(url) => Ok(Arc::new(PostgresStore::connect(url).await?)),
        None => {
            let dir = data_dir.to_owned();
            // Opening migrates: file work, kept off the async workers.
            let store = tokio::task::spawn_blocking(move || SqliteStore::open(&dir))
                .await
                .map_err(|e| StoreError::Other(format!("opening the store failed: {e}")))??;
            Ok(Arc::new(store))
        }
    }
}

/// The sender's outbox, chosen like `open_store`: the same database (its own
/// tables) on PostgreSQL, its own file beside the store's on SQLite.
pub async fn open_outbox(
    database_url: Option<&str>,
    data_dir: &Path,
) -> Result<Arc<dyn Outbox>, StoreError> {
    match database_url {
        Some(url) => Ok(Arc::new(PostgresOutbox::connect(url).await?)),
        None => {
            let dir = data_dir.to_owned();
            let outbox = tokio::task::spawn_blocking(move || SqliteOutbox::open(&dir))
                .await
                .map_err(|e| StoreError::Other(format!("opening the outbox failed: {e}")))??;
            Ok(Arc::new(outbox))
        }
    }
}

#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// All reference data, each list in the order its rows were first written.
    async fn reference_data(&self) -> Result<ReferenceData, StoreError>;

    /// Inserts `data`, or updates the rows already held under the same key
    /// (an organisation's ODS code, a patient's or practitioner's id, a
    /// record's holder and patient, an agreement's three fields), in one
    /// transaction. Rows not in `data` are kept. An updated row keeps its
    /// place in the order; new rows go after the rest, in `data`'s order.
    /// Concurrent upserts (instances seeding a new database together) each
    /// apply whole, one after the other.
    async fn upsert_reference(&self, data: &ReferenceData) -> Result<(), StoreError>;

    /// What a server holds in memory: the organisations, practitioners and
    /// agreements of `reference_data`, without patients or records, which
    /// it reads one at a time (`patient`, `patient_record`).
    async fn reference_index(&self) -> Result<ReferenceData, StoreError>;

    /// A counter that every `upsert_reference` raises, in its transaction:
    /// a server whose index was built at another value reloads it.
    async fn reference_version(&self) -> Result<i64, StoreError>;

    /// Rows of organisations, patients, records, practitioners and
    /// agreements, in that order.
    async fn reference_counts(&self) -> Result<[u64; 5], StoreError>;

    /// The patient with this NHS number (PDS), by index.
    async fn patient(&self, nhs: &NhsNumber) -> Result<Option<Patient>, StoreError>;

    /// The record `holder`'s system keeps of a patient, with the patient.
    async fn patient_record(
        &self,
        holder: &OdsCode,
        key: PatientKey<'_>,
    ) -> Result<Option<(Patient, PatientRecord)>, StoreError>;

    /// Durably stores a task (on disk when this returns Ok) together with its audit record, unless
    /// a task of the same tenant + `provenance.sender_asid` already holds any of its
    /// `idempotency_keys` (system+value): then nothing is stored, the audit record included, and
    /// the already-stored task is returned. Exactly one task under concurrent duplicates.
    async fn create_task(
        &self,
        task: NewTask,
        audit: AuditRecord,
    ) -> Result<CreateOutcome, StoreError> {
        let resource_json = serde_json::to_string(&task.resource)
            .map_err(|e| StoreError::Other(format!("JSON encoding: {e}")))?;
        self.create_serialised(task, resource_json, audit).await
    }

    /// `create_task` for a caller that has already serialised `task.resource`
    /// (`resource_json`, serde_json's text of it) to send as its response,
    /// so that the Order is serialised once.
    async fn create_serialised(
        &self,
        task: NewTask,
        resource_json: String,
        audit: AuditRecord,
    ) -> Result<CreateOutcome, StoreError>;

    async fn find_by_identifier(
        &self,
        tenant: &OdsCode,
        sender_asid: &Asid,
        key: &BusinessIdentifier,
    ) -> Result<Option<ReceivedTask>, StoreError>;

    async fn get_task(
        &self,
        tenant: &OdsCode,
        id: &str,
    ) -> Result<Option<ReceivedTask>, StoreError>;

    /// Newest first (`received_at` desc, then id desc), at most `limit`, optionally strictly
    /// older than `before` in that order (keyset paging: pass the last task of a page).
    async fn inbox(
        &self,
        tenant: &OdsCode,
        limit: usize,
        before: Option<(Timestamp, String)>,
    ) -> Result<Vec<ReceivedTask>, StoreError> {
        self.inbox_view(tenant, &InboxView::all(), limit, before)
            .await
    }

    /// The tasks of `view` (To do, Assigned to me, Unassigned, Done, one
    /// state), ordered and paged as `inbox`.
    async fn inbox_view(
        &self,
        tenant: &OdsCode,
        view: &InboxView,
        limit: usize,
        before: Option<(Timestamp, String)>,
    ) -> Result<Vec<ReceivedTask>, StoreError>;

    /// Applies `change` to task `id` of `tenant` as the task stands at that
    /// moment, in one transaction: the rules of `Lifecycle::apply`, then the
    /// task's new state, version and owner with its timeline entry (which
    /// keeps the change's wire identifier, and for `Wire::Incoming` the body
    /// it arrived with), and, when `change.notifies_sender()`, the update for
    /// the task's sender (pending, due at `change.at`) under that identifier.
    /// A change that arrived (`Wire::Incoming`) whose identifier this tenant
    /// already applied is a `Repeat`, checked before the rules (a repeated
    /// cancellation of the task it cancelled is a repeat, not a refusal):
    /// nothing is written. Of changes made at once against one version (two
    /// people taking the task) exactly one is applied, across instances; the
    /// others are refused with the task as the winner left it. `None` when
    /// `tenant` has no such task.
    async fn change_task(
        &self,
        tenant: &OdsCode,
        id: &str,
        change: TaskChange,
    ) -> Result<Option<ChangeOutcome>, StoreError>;

    /// Due updates of received tasks for their senders, claimed for `owner`
    /// until `lease_until`: pending, `next_attempt_at <= now`, not leased
    /// (or the lease ran out: its worker died), and only the lowest pending
    /// version of each task, so that one task's updates go out in version
    /// order. Oldest change first (`created_at`, then version), at most
    /// `limit`, each with the entry of its change. Concurrent claims, on any
    /// instances, never return the same update.
    async fn claim_updates(
        &self,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: usize,
    ) -> Result<Vec<OutgoingUpdate>, StoreError>;

    /// Records how an attempt of a claimed update ended (`update`'s status,
    /// attempts, next_attempt_at, http_status, detail, finished_at) and
    /// releases the lease, if `owner` still holds it; false otherwise (the
    /// lease ran out and another worker claimed it, or it was released).
    async fn finish_update(&self, owner: &str, update: &OutgoingUpdate)
    -> Result<bool, StoreError>;

    /// When `claim_updates` will next find something, if any update is
    /// pending: the earliest `next_attempt_at` of the lowest pending
    /// version of each task, or, for one being attempted, its lease's end.
    async fn next_update_due(&self) -> Result<Option<Timestamp>, StoreError>;

    /// The updates queued for the sender of task `id` of `tenant`, by
    /// version, whatever their status.
    async fn task_updates(
        &self,
        tenant: &OdsCode,
        id: &str,
    ) -> Result<Vec<OutgoingUpdate>, StoreError>;

    /// The changes of task `id` since its delivery, oldest first.
    async fn timeline(&self, tenant: &OdsCode, id: &str) -> Result<Vec<TimelineEntry>, StoreError>;

    async fn count_tasks(&self, tenant: &OdsCode) -> Result<u64, StoreError>;

    /// How many updates of received tasks wait to go to their senders
    /// (pending, due or not), for `gpc_outbox_depth`; `None` where the
    /// backend does not count them.
    async fn waiting_updates(&self) -> Result<Option<u64>, StoreError> {
        Ok(None)
    }

    /// Records a new session; sessions and sign-ins that ended before its
    /// start are deleted on the way.
    async fn start_session(&self, session: &WebSession) -> Result<(), StoreError>;

    /// The session under `key` if it is live at `now`, its idle end moved to
    /// `now + idle` (never past its absolute end). A session that has ended
    /// is deleted and is `None`, as an unknown key is.
    async fn resume_session(
        &self,
        key: &str,
        now: Timestamp,
        idle: std::time::Duration,
    ) -> Result<Option<WebSession>, StoreError>;

    /// Ends the session under `key` for every instance; whether there was one.
    async fn end_session(&self, key: &str) -> Result<bool, StoreError>;

    /// Records a sign-in that has gone to the provider.
    async fn save_sign_in(&self, sign_in: &PendingSignIn) -> Result<(), StoreError>;

    /// Takes (deletes and returns) the sign-in under `key`, so that a
    /// callback is used once; `None` when unknown or expired at `now`.
    async fn take_sign_in(
        &self,
        key: &str,
        now: Timestamp,
    ) -> Result<Option<PendingSignIn>, StoreError>;

    /// Queues an audit record; never blocks the request path. Written with the next group commit.
    fn record_audit(&self, record: AuditRecord);

    /// Newest first; filter by tenant and `since` (inclusive); `limit` 0 = no limit.
    async fn audit(&self, filter: AuditFilter) -> Result<Vec<AuditRecord>, StoreError>;

    /// Queues the record of one request through the SSP, like `record_audit`.
    fn record_ssp_audit(&self, record: SspAuditRecord);

    /// Newest first; `since` inclusive; `limit` 0 = no limit.
    async fn ssp_audit(&self, filter: SspAuditFilter) -> Result<Vec<SspAuditRecord>, StoreError>;

    /// Waits until everything queued so far (audit included) is committed. Used at shutdown and by tests.
    async fn flush(&self) -> Result<(), StoreError>;

    /// Announces a stored task to every instance's `received_events`. A
    /// `Created` answer of `create_task` has already been announced (on
    /// PostgreSQL, inside its transaction, so only once committed); this is
    /// for tasks stored otherwise. Best effort: a failure is logged, not
    /// returned, as it loses no data. A no-op where there is only one
    /// instance (SQLite).
    async fn notify_received(&self, _tenant: &OdsCode, _task_id: &str) {}

    /// Tasks created from now on by any instance sharing this database, this
    /// one included; `None` when the backend has no such feed (SQLite: one
    /// instance, which publishes its own creates). Events are ids only; read
    /// the task with `get_task`. A receiver that falls behind gets `Lagged`
    /// and should reload.
    fn received_events(&self) -> Option<broadcast::Receiver<ReceivedEvent>> {
        None
    }

    /// Received tasks changed from now on (`change_task`, and a finished
    /// attempt of an update to their sender, `finish_update`) by any instance
    /// or process sharing this database, this one included; `None` when
    /// the backend has no such feed (SQLite), whose server announces the
    /// changes it makes itself. Ids only, like `received_events`.
    fn changed_events(&self) -> Option<broadcast::Receiver<ReceivedEvent>> {
        None
    }
}

/// What `create_task` did: the request's answer is 201 for `Created`, 200 for `Existing`.
#[derive(Debug, Clone, PartialEq)]
pub enum CreateOutcome {
    Created(ReceivedTask),
    /// A task already held one of the idempotency keys; this is that task, unchanged.
    Existing(ReceivedTask),
}

impl CreateOutcome {
    pub fn task(&self) -> &ReceivedTask {
        match self {
            CreateOutcome::Created(t) | CreateOutcome::Existing(t) => t,
        }
    }

    pub fn into_task(self) -> ReceivedTask {
        match self {
            CreateOutcome::Created(t) | CreateOutcome::Existing(t) => t,
        }
    }

    pub fn is_created(&self) -> bool {
        matches!(self, CreateOutcome::Created(_))
    }
}

/// What `change_task` did.
#[derive(Debug, Clone, PartialEq)]
pub enum ChangeOutcome {
    /// Applied: the task as it is now, and the entry that records the change.
    Changed {
        task: ReceivedTask,
        entry: TimelineEntry,
    },
    /// An arriving update whose identifier was applied before: the task it
    /// changed, as it is now, the entry it made, and the body it arrived
    /// with (from which its answer is rebuilt). Nothing was written.
    Repeat {
        task: ReceivedTask,
        entry: TimelineEntry,
        body: String,
    },
    /// Not applied (the rules refuse it, or the task moved on from the
    /// version the change was made against); nothing was written. The task
    /// as it is now.
    Refused {
        refusal: Refusal,
        task: ReceivedTask,
    },
}

/// Messages never carry stored values (NHS numbers, names, task text), so they may be logged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// Storage busy or unavailable (locked, disk full, I/O error, shutting down): the caller
    /// answers 503 and the client may retry.
    #[error("storage busy or unavailable: {0}")]
    Busy(String),
    /// Stored data that cannot be read back as it was written.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("storage error: {0}")]
    Other(String),
}
