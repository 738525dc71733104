//! A store in front of the real one that fails the next task writes in the
//! ways a test queues: a panic (a bug), or a write error before or after
//! the task reached the disk. Everything else goes to the real store.
#![allow(dead_code)]

use gpc_domain::audit::{AuditFilter, AuditRecord, SspAuditFilter, SspAuditRecord};
use gpc_domain::lifecycle::{InboxView, TaskChange, TimelineEntry};
use gpc_domain::reference::{Patient, PatientKey, PatientRecord, ReferenceData};
use gpc_domain::task::{BusinessIdentifier, NewTask, ReceivedEvent, ReceivedTask};
use gpc_domain::updates::OutgoingUpdate;
use gpc_domain::{Asid, OdsCode};
use gpc_store::{ChangeOutcome, CreateOutcome, Store, StoreError};
use jiff::Timestamp;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// What one task write does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The write panics before touching the store.
    Panic,
    /// A disk error before anything was written.
    FailBeforeWriting,
    /// The task is stored, then the write reports a disk error: the client
    /// cannot tell this from the one before.
    FailAfterWriting,
}

pub struct FaultyStore {
    inner: Arc<dyn Store>,
    faults: Mutex<VecDeque<Fault>>,
}

impl FaultyStore {
    pub fn new(inner: Arc<dyn Store>) -> Self {
        Self {
            inner,
            faults: Mutex::default(),
        }
    }

    /// The next task write fails with `fault`, after those already queued.
    pub fn queue(&self, fault: Fault) {
        self.faults.lock().unwrap().push_back(fault);
    }

    fn next_fault(&self) -> Option<Fault> {
        self.faults.lock().unwrap().pop_front()
    }
}

fn disk_error() -> StoreError {
    // What the SQLite backend makes of SQLITE_IOERR and SQLITE_FULL.
    StoreError::Busy("disk I/O error".into())
}

use gpc_store::sessions::{PendingSignIn, WebSession};

#[async_trait::async_trait]
impl Store for FaultyStore {
    async fn reference_data(&self) -> Result<ReferenceData, StoreError> {
        self.inner.reference_data().await
    }

    async fn upsert_reference(&self, data: &ReferenceData) -> Result<(), StoreError> {
        self.inner.upsert_reference(data).await
    }

    async fn reference_index(&self) -> Result<ReferenceData, StoreError> {
        self.inner.reference_index().await
    }

    async fn reference_version(&self) -> Result<i64, StoreError> {
        self.inner.reference_version().await
    }

    async fn reference_counts(&self) -> Result<[u64; 5], StoreError> {
        self.inner.reference_counts().await
    }

    async fn patient(&self, nhs: &gpc_domain::NhsNumber) -> Result<Option<Patient>, StoreError> {
        self.inner.patient(nhs).await
    }

    async fn patient_record(
        &self,
        holder: &OdsCode,
        key: PatientKey<'_>,
    ) -> Result<Option<(Patient, PatientRecord)>, StoreError> {
        self.inner.patient_record(holder, key).await
    }

    async fn create_serialised(
        &self,
        task: NewTask,
        resource_json: String,
        audit: AuditRecord,
    ) -> Result<CreateOutcome, StoreError> {
        match self.next_fault() {
            None => {
                self.inner
                    .create_serialised(task, resource_json, audit)
                    .await
            }
            Some(Fault::Panic) => panic!("a bug in the store"),
            Some(Fault::FailBeforeWriting) => Err(disk_error()),
            Some(Fault::FailAfterWriting) => {
                self.inner
                    .create_serialised(task, resource_json, audit)
                    .await?;
                Err(disk_error())
            }
        }
    }

    async fn find_by_identifier(
        &self,
        tenant: &OdsCode,
        sender_asid: &Asid,
        key: &BusinessIdentifier,
    ) -> Result<Option<ReceivedTask>, StoreError> {
        self.inner
            .find_by_identifier(tenant, sender_asid, key)
            .await
    }

    async fn get_task(
        &self,
        tenant: &OdsCode,
        id: &str,
    ) -> Result<Option<ReceivedTask>, StoreError> {
        self.inner.get_task(tenant, id).await
    }

    async fn inbox(
        &self,
        tenant: &OdsCode,
        limit: usize,
        before: Option<(Timestamp, String)>,
    ) -> Result<Vec<ReceivedTask>, StoreError> {
        self.inner.inbox(tenant, limit, before).await
    }

    async fn inbox_view(
        &self,
        tenant: &OdsCode,
        view: &InboxView,
        limit: usize,
        before: Option<(Timestamp, String)>,
    ) -> Result<Vec<ReceivedTask>, StoreError> {
        self.inner.inbox_view(tenant, view, limit, before).await
    }

    async fn change_task(
        &self,
        tenant: &OdsCode,
        id: &str,
        change: TaskChange,
    ) -> Result<Option<ChangeOutcome>, StoreError> {
        self.inner.change_task(tenant, id, change).await
    }

    async fn claim_updates(
        &self,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: usize,
    ) -> Result<Vec<OutgoingUpdate>, StoreError> {
        self.inner
            .claim_updates(owner, now, lease_until, limit)
            .await
    }

    async fn finish_update(
        &self,
        owner: &str,
        update: &OutgoingUpdate,
    ) -> Result<bool, StoreError> {
        self.inner.finish_update(owner, update).await
    }

    async fn next_update_due(&self) -> Result<Option<Timestamp>, StoreError> {
        self.inner.next_update_due().await
    }

    async fn task_updates(
        &self,
        tenant: &OdsCode,
        id: &str,
    ) -> Result<Vec<OutgoingUpdate>, StoreError> {
        self.inner.task_updates(tenant, id).await
    }

    async fn timeline(&self, tenant: &OdsCode, id: &str) -> Result<Vec<TimelineEntry>, StoreError> {
        self.inner.timeline(tenant, id).await
    }

    async fn count_tasks(&self, tenant: &OdsCode) -> Result<u64, StoreError> {
        self.inner.count_tasks(tenant).await
    }

    async fn start_session(&self, session: &WebSession) -> Result<(), StoreError> {
        self.inner.start_session(session).await
    }

    async fn resume_session(
        &self,
        key: &str,
        now: jiff::Timestamp,
        idle: std::time::Duration,
    ) -> Result<Option<WebSession>, StoreError> {
        self.inner.resume_session(key, now, idle).await
    }

    async fn end_session(&self, key: &str) -> Result<bool, StoreError> {
        self.inner.end_session(key).await
    }

    async fn save_sign_in(&self, sign_in: &PendingSignIn) -> Result<(), StoreError> {
        self.inner.save_sign_in(sign_in).await
    }

    async fn take_sign_in(
        &self,
        key: &str,
        now: jiff::Timestamp,
    ) -> Result<Option<PendingSignIn>, StoreError> {
        self.inner.take_sign_in(key, now).await
    }

    fn record_audit(&self, record: AuditRecord) {
        self.inner.record_audit(record);
    }

    async fn audit(&self, filter: AuditFilter) -> Result<Vec<AuditRecord>, StoreError> {
        self.inner.audit(filter).await
    }

    fn record_ssp_audit(&self, record: SspAuditRecord) {
        self.inner.record_ssp_audit(record);
    }

    async fn ssp_audit(&self, filter: SspAuditFilter) -> Result<Vec<SspAuditRecord>, StoreError> {
        self.inner.ssp_audit(filter).await
    }

    async fn flush(&self) -> Result<(), StoreError> {
        self.inner.flush().await
    }

    async fn notify_received(&self, tenant: &OdsCode, task_id: &str) {
        self.inner.notify_received(tenant, task_id).await;
    }

    fn received_events(&self) -> Option<broadcast::Receiver<ReceivedEvent>> {
        self.inner.received_events()
    }

    fn changed_events(&self) -> Option<broadcast::Receiver<ReceivedEvent>> {
        self.inner.changed_events()
    }
}
