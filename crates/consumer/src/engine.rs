//! The sending engine: from "Send" to Delivered, Rejected or Failed (spec §10).
//!
//! `send` traces the patient, picks and routes the recipient, and stores the
//! task in the outbox before anything goes on the wire. A worker claims due
//! tasks under a lease, resolves patient and organisations on the recipient's
//! system through the SSP, posts the Order, classifies the answer and
//! schedules automatic retries. Every retry re-sends the same identifier, so
//! the recipient stores the task once whatever happens.

use crate::events::StatusEvent;
use crate::jwt_builder::Requester;
use crate::order_builder::{OrderParts, order};
use crate::sender_tls::SenderTls;
use crate::spine_client::{Accepted, CallError, Route, SpineClient};
use gpc_directory::{Directory, DirectoryError};
use gpc_domain::lifecycle::TaskState;
use gpc_domain::order_rules::{MAX_TEXT_CHARS, london_today};
use gpc_domain::reference::{Address, Practitioner};
use gpc_domain::region::ReferenceLookup;
use gpc_domain::sent::{Attempt, SendStatus, SentTask};
use gpc_domain::task::TaskType;
use gpc_domain::updates::RemoteState;
use gpc_domain::{Interaction, NhsNumber, OdsCode};
use gpc_store::StoreError;
use gpc_store::outbox::Outbox;
use jiff::Timestamp;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, broadcast};
use tokio::task::JoinSet;

#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Base of the Spine Security Proxy, e.g. `http://127.0.0.1:8080/ssp`.
    pub ssp_base: String,
    /// This consumer system's URL, the JWT's `iss`.
    pub system_url: String,
    /// Delays before each automatic retry; their number is the retry budget.
    pub retry_delays: Vec<Duration>,
    /// Longest wait for one HTTP answer.
    pub request_timeout: Duration,
    /// How long a worker owns a claimed task; another worker takes it over
    /// after that, so it must outlast one whole attempt.
    pub lease: Duration,
    pub worker_id: String,
    /// Longest sleep of an idle worker (others may add work to a shared outbox).
    pub poll_interval: Duration,
    /// What requests to the SSP trust and, per sending organisation,
    /// present; `None` for no CA of their own and no certificate.
    pub tls: Option<Arc<dyn SenderTls>>,
}

impl EngineConfig {
    pub fn new(ssp_base: &str, system_url: &str) -> Self {
        let request_timeout = Duration::from_secs(15);
        Self {
            ssp_base: ssp_base.to_owned(),
            system_url: system_url.to_owned(),
            retry_delays: vec![
                Duration::from_secs(2),
                Duration::from_secs(4),
                Duration::from_secs(8),
            ],
            request_timeout,
            // Four calls make one attempt.
            lease: request_timeout * 4 + Duration::from_secs(10),
            worker_id: format!("worker-{}", uuid::Uuid::new_v4()),
            poll_interval: Duration::from_secs(1),
            tls: None,
        }
    }
}

/// What a person asked to send.
#[derive(Debug, Clone)]
pub struct SendRequest {
    pub user: Who,
    /// The sending organisation; the user's own when `None`.
    pub from: Option<String>,
    /// The NHS number as typed (spaces allowed).
    pub patient: String,
    pub task_type: TaskType,
    pub text: String,
    /// The recipient; the patient's registered practice when `None`.
    pub to: Option<String>,
}

/// The person sending or cancelling.
#[derive(Debug, Clone)]
pub enum Who {
    /// A user of the reference data, by SDS user id (the CLI, the demo sign-in).
    Sds(String),
    /// A user as their sign-in named them (CIS2): taken as given, whether or
    /// not the reference data has them (sign-in.md §3).
    SignedIn(Practitioner),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("{0}")]
    InvalidInput(String),
    #[error("{0}")]
    NotFound(String),
    #[error("the national directory could not be reached: {0}")]
    DirectoryUnavailable(String),
    #[error("the outbox could not be written: {0}")]
    Store(String),
    /// The task is not in a state that allows this (a cancellation of a
    /// task already completed, say).
    #[error("{0}")]
    Refused(String),
}

impl From<StoreError> for SendError {
    fn from(e: StoreError) -> Self {
        SendError::Store(e.to_string())
    }
}

fn directory_error(e: DirectoryError) -> SendError {
    match e {
        DirectoryError::NotFound(m) => SendError::NotFound(m),
        DirectoryError::Invalid(m) => SendError::InvalidInput(m),
        DirectoryError::Unavailable(m) | DirectoryError::Protocol(m) => {
            SendError::DirectoryUnavailable(m)
        }
    }
}

#[derive(Clone)]
pub struct Engine {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) config: EngineConfig,
    pub(crate) directory: Arc<dyn Directory>,
    pub(crate) outbox: Arc<dyn Outbox>,
    pub(crate) reference: Arc<dyn ReferenceLookup>,
    pub(crate) client: SpineClient,
    events: broadcast::Sender<StatusEvent>,
    pub(crate) wake: Notify,
}

impl Engine {
    pub fn new(
        config: EngineConfig,
        directory: Arc<dyn Directory>,
        outbox: Arc<dyn Outbox>,
        reference: Arc<dyn ReferenceLookup>,
    ) -> Result<Self, String> {
        let client =
            SpineClient::new(&config.ssp_base, config.request_timeout, config.tls.clone())?;
        let (events, _) = broadcast::channel(1024);
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                directory,
                outbox,
                reference,
                client,
                events,
                wake: Notify::new(),
            }),
        })
    }

    pub fn subscribe(&self) -> broadcast::Receiver<StatusEvent> {
        self.inner.events.subscribe()
    }

    pub fn outbox(&self) -> &Arc<dyn Outbox> {
        &self.inner.outbox
    }

    pub fn directory(&self) -> &Arc<dyn Directory> {
        &self.inner.directory
    }

    /// The reference data the engine reads (its users, their records).
    pub fn reference(&self) -> &Arc<dyn ReferenceLookup> {
        &self.inner.reference
    }

    /// Tells this process's live views that sent task `task` changed (its
    /// recipient's update was applied by the provider, say).
    pub fn announce(&self, task: &SentTask) {
        self.publish(task, None);
    }

    pub(crate) fn publish(&self, task: &SentTask, detail: Option<String>) {
        // Nobody listening is fine: the outbox holds the state.
        let _ = self.inner.events.send(StatusEvent::of(task, detail));
    }

    /// Who acts, at `from`: a signed-in user as they are (at their own
    /// organisation only), a user of the reference data by their record.
    pub fn acting(&self, who: &Who, from: Option<&str>) -> Result<Practitioner, SendError> {
        match who {
            Who::Sds(id) => self.user(id, from),
            Who::SignedIn(p) => match from {
                Some(ods) if ods != p.organisation.as_str() => Err(SendError::InvalidInput(
                    format!("user {} does not work for {ods}", p.sds_user_id),
                )),
                _ => Ok(p.clone()),
            },
        }
    }

    /// The user's practitioner record at `from` (or their first record).
    pub fn user(&self, sds_user_id: &str, from: Option<&str>) -> Result<Practitioner, SendError> {
        let region = self.inner.reference.current();
        let mut records = region.practitioners_by_sds(sds_user_id).peekable();
        let Some(first) = records.peek().copied() else {
            return Err(SendError::NotFound(format!(
                "there is no user with SDS user id {sds_user_id}"
            )));
        };
        match from {
            None => Ok(first.clone()),
            Some(ods) => records
                .find(|p| p.organisation.as_str() == ods)
                .cloned()
                .ok_or_else(|| {
                    SendError::InvalidInput(format!("user {sds_user_id} does not work for {ods}"))
                }),
        }
    }

    /// Validates, traces, routes and stores the task; delivery follows in the
    /// worker. A recipient without an electronic route ends here, with its
    /// telephone.
    pub async fn send(&self, request: SendRequest) -> Result<SentTask, SendError> {
        let text = request.text.trim();
        if text.is_empty() {
            return Err(SendError::InvalidInput(
                "the details of the task are empty".into(),
            ));
        }
        let chars = text.chars().count();
        if chars > MAX_TEXT_CHARS {
            return Err(SendError::InvalidInput(format!(
                "the details have {chars} characters; at most {MAX_TEXT_CHARS} are allowed"
            )));
        }
        let nhs = NhsNumber::parse(&request.patient).map_err(|e| {
            SendError::InvalidInput(format!(
                "'{}' is not a valid NHS number: {e}",
                request.patient.trim()
            ))
        })?;
        let from_code = match &request.from {
            Some(f) => Some(parse_ods(f)?),
            None => None,
        };
        let user = self.acting(&request.user, from_code.as_ref().map(OdsCode::as_str))?;
        let from_ods = from_code.unwrap_or_else(|| user.organisation.clone());
        let directory = &self.inner.directory;
        let from_org = directory
            .organisation(&from_ods)
            .await
            .map_err(directory_error)?
            .ok_or_else(|| SendError::NotFound(format!("there is no organisation {from_ods}")))?;
        let patient = directory.trace_patient(&nhs).await.map_err(|e| match e {
            DirectoryError::NotFound(_) => SendError::NotFound(format!(
                "no patient with NHS number {} was found in PDS",
                nhs.formatted()
            )),
            other => directory_error(other),
        })?;
        // No recipient may accept a task about a deceased patient (spec §4.2
        // rule 7), and the recipient's look-up would only say it holds no
        // record of them: PDS knows why, so say it before anything is sent.
        if let Some(died) = patient.deceased {
            return Err(SendError::Refused(format!(
                "this patient is recorded as deceased on {} (PDS), so a task cannot be sent about them",
                died.strftime("%-d %b %Y")
            )));
        }
        let to_ods = match &request.to {
            Some(to) => parse_ods(to)?,
            None => patient.registered_practice.clone().ok_or_else(|| {
                SendError::InvalidInput(
                    "PDS does not show this patient's registered practice; choose the recipient"
                        .into(),
                )
            })?,
        };
        let to_org = directory
            .organisation(&to_ods)
            .await
            .map_err(directory_error)?
            .ok_or_else(|| SendError::NotFound(format!("there is no organisation {to_ods}")))?;
        let create = Interaction::CreateTask.id();
        let endpoint = directory
            .endpoint(&to_ods, create)
            .await
            .map_err(directory_error)?;
        let from_asid = directory
            .asid(&from_ods, create)
            .await
            .map_err(directory_error)?;

        let now = Timestamp::now();
        let (status, reason, next_attempt_at) = match (&endpoint, &from_asid) {
            (None, _) => (
                SendStatus::NoRoute,
                Some(format!(
                    "{} cannot receive tasks electronically. Telephone {} instead.",
                    to_org.name, to_org.telephone
                )),
                None,
            ),
            (Some(_), None) => {
                return Err(SendError::InvalidInput(format!(
                    "{} has no Spine system to send from",
                    from_org.name
                )));
            }
            (Some(_), Some(_)) => (SendStatus::Queued, None, Some(now)),
        };
        let task = SentTask {
            id: uuid::Uuid::new_v4().to_string(),
            created_at: now,
            updated_at: now,
            from_ods: from_ods.clone(),
            from_name: from_org.name.clone(),
            from_asid,
            user_sds_id: user.sds_user_id.clone(),
            user_id: user.id.clone(),
            user_name: user.display_name(),
            user_role_code: user.role_code.clone(),
            user_role_display: user.role_display.clone(),
            nhs_number: nhs,
            patient_name: patient.display_name(),
            to_ods: to_ods.clone(),
            to_name: to_org.name.clone(),
            to_telephone: to_org.telephone.clone(),
            to_address: to_org.address.as_ref().map(one_line).unwrap_or_default(),
            endpoint: endpoint
                .as_ref()
                .map(|e| e.address.clone())
                .unwrap_or_default(),
            to_asid: endpoint.map(|e| e.asid),
            task_type: request.task_type,
            text: text.to_owned(),
            identifier: format!("urn:uuid:{}", uuid::Uuid::new_v4()),
            status,
            attempts: 0,
            cycle_attempts: 0,
            next_attempt_at,
            provider_task_id: None,
            delivered_at: None,
            reason,
            remote: None,
            cancellation: None,
        };
        self.inner.outbox.enqueue(&task).await?;
        tracing::info!(task = %task.id, status = task.status.code(), "task queued");
        self.publish(&task, None);
        self.inner.wake.notify_one();
        Ok(task)
    }

    /// A person's retry of a task that rests as Failed.
    pub async fn retry(&self, id: &str) -> Result<SentTask, SendError> {
        let current = self
            .inner
            .outbox
            .get(id)
            .await?
            .ok_or_else(|| SendError::NotFound(format!("there is no sent task {id}")))?;
        let task = self
            .inner
            .outbox
            .requeue(id, Timestamp::now())
            .await?
            .ok_or_else(|| {
                SendError::InvalidInput(format!(
                    "task {id} is {} and cannot be retried; only a task that failed can",
                    current.status.label()
                ))
            })?;
        self.publish(&task, None);
        self.inner.wake.notify_one();
        Ok(task)
    }

    /// Runs the delivery worker until the returned handle is aborted.
    /// Deliveries run side by side, so one recipient that answers slowly does
    /// not hold up the tasks queued behind it.
    pub fn spawn_worker(&self) -> tokio::task::JoinHandle<()> {
        let engine = self.clone();
        tokio::spawn(async move {
            let mut running = JoinSet::new();
            loop {
                while let Some(done) = running.try_join_next() {
                    log_panic(done);
                }
                let room = MAX_IN_FLIGHT.saturating_sub(running.len());
                if room > 0 {
                    match engine.claim(room).await {
                        Ok(tasks) => {
                            for task in tasks {
                                let engine = engine.clone();
                                running.spawn(async move { engine.deliver(task).await });
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, "outbox worker could not claim tasks"),
                    }
                }
                let room = MAX_IN_FLIGHT.saturating_sub(running.len());
                if room > 0 {
                    match engine.claim_cancellations(room).await {
                        Ok(tasks) => {
                            for task in tasks {
                                let engine = engine.clone();
                                running
                                    .spawn(async move { engine.deliver_cancellation(task).await });
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "outbox worker could not claim cancellations")
                        }
                    }
                }
                let sleep = match engine.inner.outbox.next_due().await {
                    Ok(Some(due)) => {
                        let wait = due.duration_since(Timestamp::now());
                        Duration::try_from(wait)
                            .unwrap_or(Duration::ZERO)
                            .min(engine.inner.config.poll_interval)
                    }
                    _ => engine.inner.config.poll_interval,
                };
                tokio::select! {
                    _ = engine.inner.wake.notified() => {}
                    _ = tokio::time::sleep(sleep) => {}
                    Some(done) = running.join_next(), if !running.is_empty() => log_panic(done),
                }
            }
        })
    }

    /// With an outbox shared by several instances, passes on the changes the
    /// other instances' workers make, so that every instance's live views
    /// follow every task. This instance's own changes come back too; a view
    /// showing the same state twice is harmless.
    pub fn follow_shared_outbox(&self) -> Option<tokio::task::JoinHandle<()>> {
        use tokio::sync::broadcast::error::RecvError;
        let mut changes = self.inner.outbox.sent_events()?;
        let engine = self.clone();
        Some(tokio::spawn(async move {
            loop {
                match changes.recv().await {
                    Ok(change) => {
                        if let Ok(Some(task)) = engine.inner.outbox.get(&change.task_id).await {
                            engine.publish(&task, None);
                        }
                    }
                    Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => return,
                }
            }
        }))
    }

    /// Claims every due task and cancellation and delivers them, waiting for all; returns how many.
    pub async fn deliver_due(&self) -> Result<usize, StoreError> {
        let claimed = self.claim(MAX_IN_FLIGHT).await?;
        let cancellations = self.claim_cancellations(MAX_IN_FLIGHT).await?;
        let count = claimed.len() + cancellations.len();
        let mut running = JoinSet::new();
        for task in claimed {
            let engine = self.clone();
            running.spawn(async move { engine.deliver(task).await });
        }
        for task in cancellations {
            let engine = self.clone();
            running.spawn(async move { engine.deliver_cancellation(task).await });
        }
        while let Some(done) = running.join_next().await {
            log_panic(done);
        }
        Ok(count)
    }

    async fn claim(&self, limit: usize) -> Result<Vec<SentTask>, StoreError> {
        let config = &self.inner.config;
        let now = Timestamp::now();
        self.inner
            .outbox
            .claim_due(&config.worker_id, now, now + config.lease, limit)
            .await
    }

    async fn deliver(&self, mut task: SentTask) {
        let owner = self.inner.config.worker_id.clone();
        let outbox = &self.inner.outbox;
        task.status = if task.attempts > 0 {
            SendStatus::Retrying
        } else {
            SendStatus::Sending
        };
        task.updated_at = Timestamp::now();
        task.next_attempt_at = None;
        match outbox.mark(&owner, &task).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                tracing::warn!(task = %task.id, error = %e, "could not mark a task as sending");
                return;
            }
        }
        self.publish(&task, Some(format!("Sending to {}", task.to_name)));
        let started_at = Timestamp::now();
        let result = self.attempt(&task).await;
        let finished_at = Timestamp::now();
        task.attempts += 1;
        task.cycle_attempts += 1;
        task.updated_at = finished_at;
        let (http_status, detail) = match result {
            Ok(accepted) => {
                task.status = SendStatus::Delivered;
                task.provider_task_id = Some(accepted.provider_task_id.clone());
                let delivered_at = accepted.last_updated.unwrap_or(finished_at);
                task.delivered_at = Some(delivered_at);
                task.reason = None;
                task.remote = Some(RemoteState {
                    state: TaskState::Received,
                    version: 1,
                    owner: None,
                    at: delivered_at,
                });
                (
                    Some(accepted.status),
                    format!(
                        "Delivered: {} holds it as task {}",
                        task.to_name, accepted.provider_task_id
                    ),
                )
            }
            Err(CallError::Rejected { status, reason }) => {
                task.status = SendStatus::Rejected;
                task.reason = Some(reason.clone());
                (status, reason)
            }
            Err(CallError::Failed { status, reason }) => {
                task.status = SendStatus::Failed;
                let delays = &self.inner.config.retry_delays;
                task.next_attempt_at = delays
                    .get(task.cycle_attempts as usize - 1)
                    .map(|d| finished_at + *d);
                let full = match task.next_attempt_at {
                    Some(_) => reason,
                    None => format!(
                        "{reason} Retry, or telephone {} on {}.",
                        task.to_name, task.to_telephone
                    ),
                };
                task.reason = Some(full.clone());
                (status, full)
            }
        };
        let attempt = Attempt {
            task_id: task.id.clone(),
            number: task.attempts,
            started_at,
            finished_at,
            outcome: task.status,
            http_status,
            detail,
        };
        match outbox.finish_attempt(&owner, &task, &attempt).await {
            Ok(true) => {
                tracing::info!(
                    task = %task.id,
                    attempt = task.attempts,
                    status = task.status.code(),
                    http_status = http_status.unwrap_or(0),
                    "delivery attempt finished"
                );
                // `failed` is final; `retry` has an automatic attempt to come.
                let outcome = match (task.status, task.next_attempt_at) {
                    (SendStatus::Failed, Some(_)) => "retry",
                    (status, _) => status.code(),
                };
                metrics::counter!("gpc_deliveries_total", "outcome" => outcome).increment(1);
                self.publish(&task, None);
            }
            Ok(false) => {
                tracing::warn!(task = %task.id, "lease lost during delivery; another worker owns the task")
            }
            Err(e) => {
                tracing::error!(task = %task.id, error = %e, "could not record a delivery attempt")
            }
        }
    }

    /// One attempt: resolve patient, recipient and sender on the recipient's
    /// system, then post the Order.
    async fn attempt(&self, task: &SentTask) -> Result<Accepted, CallError> {
        let route = Route::of(task);
        let who = self.requester(task);
        let client = &self.inner.client;
        let progress = |step: String| {
            let mut t = task.clone();
            t.updated_at = Timestamp::now();
            self.publish(&t, Some(step));
        };
        // A refusal before the Order says at which look-up it came, so that
        // nobody reads the look-up's answer as the recipient's word on the task.
        let before_order = |step: String| {
            move |e: CallError| match e {
                CallError::Rejected { status, reason } => CallError::Rejected {
                    status,
                    reason: format!("Refused at {step}, before the task was sent: {reason}"),
                },
                failed => failed,
            }
        };
        progress(format!("Finding the patient on {}'s system", task.to_name));
        let patient_id = client
            .find_patient(&route, &who, &task.nhs_number.as_digits())
            .await
            .map_err(before_order(format!(
                "the patient look-up on {}'s system",
                task.to_name
            )))?;
        progress("Resolving the organisations".to_owned());
        let target_id = client
            .find_organisation(&route, &who, task.to_ods.as_str(), task.to_ods.as_str())
            .await
            .map_err(before_order(format!(
                "the look-up of {} on its own system",
                task.to_ods
            )))?;
        let source_id = client
            .find_organisation(&route, &who, task.from_ods.as_str(), task.to_ods.as_str())
            .await
            .map_err(before_order(format!(
                "the look-up of {} on {}'s system",
                task.from_ods, task.to_name
            )))?;
        progress(format!("Sending the task to {}", task.to_name));
        let today = london_today(Timestamp::now()).to_string();
        let body = order(&OrderParts {
            identifier: &task.identifier,
            date: &today,
            patient_id: &patient_id,
            patient_display: &task.patient_name,
            source_id: &source_id,
            source_display: &task.from_name,
            target_id: &target_id,
            target_display: &task.to_name,
            task_type: task.task_type,
            text: &task.text,
        });
        client
            .create_task(&route, &who, &body, task.to_ods.as_str())
            .await
    }

    pub(crate) fn requester(&self, task: &SentTask) -> Requester {
        let region = self.inner.reference.current();
        let user = region
            .practitioner(&task.user_id)
            .filter(|p| p.sds_user_id == task.user_sds_id);
        let (title, given, family) = match user {
            Some(p) => (p.title.clone(), p.given.clone(), p.family.clone()),
            None => name_parts(&task.user_name),
        };
        Requester {
            system_url: self.inner.config.system_url.clone(),
            user_id: task.user_id.clone(),
            user_sds_id: task.user_sds_id.clone(),
            title,
            given,
            family,
            role_code: task.user_role_code.clone(),
            role_display: task.user_role_display.clone(),
            org_ods: task.from_ods.to_string(),
            org_name: task.from_name.clone(),
        }
    }
}

/// Deliveries one worker runs at once.
pub(crate) const MAX_IN_FLIGHT: usize = 32;

pub(crate) fn log_panic(done: Result<(), tokio::task::JoinError>) {
    if let Err(e) = done {
        tracing::error!(error = %e, "a delivery task panicked");
    }
}

fn parse_ods(text: &str) -> Result<OdsCode, SendError> {
    OdsCode::parse(&text.trim().to_uppercase())
        .ok_or_else(|| SendError::InvalidInput(format!("'{}' is not an ODS code", text.trim())))
}

fn one_line(a: &Address) -> String {
    let mut parts: Vec<&str> = a.lines.iter().map(String::as_str).collect();
    parts.push(&a.city);
    parts.push(&a.postcode);
    parts.retain(|p| !p.is_empty());
    parts.join(", ")
}

/// "Mrs Melissa PARSONS" back into its parts, for a user no longer in the reference data.
pub(crate) fn name_parts(name: &str) -> (String, String, String) {
    let parts: Vec<&str> = name.split_whitespace().collect();
    match parts.as_slice() {
        [title, given @ .., family] if !given.is_empty() => {
            (title.to_string(), given.join(" "), family.to_string())
        }
        [given, family] => (String::new(), given.to_string(), family.to_string()),
        _ => (String::new(), String::new(), name.to_owned()),
    }
}
