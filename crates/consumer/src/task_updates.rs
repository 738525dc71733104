//! Task updates on the wire (task-lifecycle.md §2, §3): the receiving
//! side's changes going back to the task's sender, and the sender's
//! cancellation going to the receiver. Both are rows of a durable outbox,
//! written with the change they carry; a worker posts them through the SSP
//! as `OrderResponse`s, one task's in version order, retrying on 502/503/504,
//! timeouts and connection errors with a backoff capped at 5 minutes until
//! they are delivered, and stopping at a 4xx.

use crate::engine::{Engine, MAX_IN_FLIGHT, SendError, log_panic, name_parts};
use crate::jwt_builder::Requester;
use crate::spine_client::{CallError, Route, diagnostics};
use gpc_domain::lifecycle::{Actor, Owner, TaskState, TimelineEntry, check_text};
use gpc_domain::order_response::{Person, TaskUpdate, order_response};
use gpc_domain::sent::{SendStatus, SentTask};
use gpc_domain::systems::TASK_VERSION_EXTENSION;
use gpc_domain::task::ReceivedEvent;
use gpc_domain::updates::{Cancellation, OutgoingUpdate, UpdateStatus, update_backoff};
use gpc_domain::{Interaction, OdsCode};
use gpc_store::{Store, StoreError};
use jiff::Timestamp;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;
use tokio::task::JoinSet;

/// How one attempt of an update ended.
enum Answer {
    /// 200 or 201, with the body.
    Delivered { status: u16, body: Value },
    /// 4xx: the other side will not take it; why, in words.
    Refused { status: Option<u16>, detail: String },
    /// No answer, or 5xx: try again later.
    Failed { status: Option<u16>, detail: String },
}

fn classify(result: Result<(u16, Value), CallError>, other_side: &str) -> Answer {
    match result {
        Ok((status @ 200..=299, body)) => Answer::Delivered { status, body },
        Ok((status @ 400..=499, body)) => Answer::Refused {
            status: Some(status),
            detail: diagnostics(&body)
                .map(str::to_owned)
                .unwrap_or_else(|| format!("{other_side} answered HTTP {status}.")),
        },
        Ok((status, _)) => Answer::Failed {
            status: Some(status),
            detail: format!("{other_side} could not be reached (HTTP {status})."),
        },
        Err(CallError::Failed { status, reason }) => Answer::Failed {
            status,
            detail: reason,
        },
        // `exchange` answers every status; only a transport failure is an error.
        Err(CallError::Rejected { status, reason }) => Answer::Refused {
            status,
            detail: reason,
        },
    }
}

/// Why a cancellation cannot be asked for, in words for the sender.
fn cannot_cancel(task: &SentTask) -> String {
    if let Some(c) = &task.cancellation {
        return match c.status {
            UpdateStatus::Pending => "a cancellation of this task is already on its way".into(),
            UpdateStatus::Delivered => "this task is already cancelled".into(),
            UpdateStatus::Refused => format!(
                "this task was not cancelled: {}",
                c.detail.as_deref().unwrap_or("the recipient refused")
            ),
        };
    }
    match (&task.remote, task.status) {
        (Some(remote), _) if remote.state.is_final() => format!(
            "{} already {} this task at {}",
            task.to_name,
            remote.state.code(),
            remote.at
        ),
        (_, SendStatus::Delivered) => "this task cannot be cancelled now".into(),
        (_, status) => format!(
            "this task is {} and has not been delivered, so there is nothing to cancel at {}",
            status.label(),
            task.to_name
        ),
    }
}

impl Engine {
    /// The sender's cancellation of a delivered, open task (§2, §4): stored
    /// with the task and delivered by the worker. The user must work for the
    /// sending organisation; the reason is 1–1,000 characters.
    pub async fn cancel(
        &self,
        id: &str,
        who: &crate::engine::Who,
        reason: &str,
    ) -> Result<SentTask, SendError> {
        check_text(reason)
            .map_err(|e| SendError::InvalidInput(format!("the reason is not valid: {e}")))?;
        let outbox = &self.inner.outbox;
        let task = outbox
            .get(id)
            .await?
            .ok_or_else(|| SendError::NotFound(format!("there is no sent task {id}")))?;
        let user = self.acting(who, Some(task.from_ods.as_str()))?;
        let now = Timestamp::now();
        let cancellation = Cancellation {
            identifier: format!("urn:uuid:{}", uuid::Uuid::new_v4()),
            reason: reason.to_owned(),
            by: Actor::of(&user),
            requested_at: now,
            seen_version: task.remote.as_ref().map_or(1, |r| r.version),
            status: UpdateStatus::Pending,
            attempts: 0,
            next_attempt_at: Some(now),
            http_status: None,
            detail: None,
            finished_at: None,
        };
        match outbox.request_cancel(id, &cancellation).await? {
            Some(task) => {
                tracing::info!(task = %task.id, "cancellation queued");
                self.publish(&task, Some("Cancelling…".into()));
                self.inner.wake.notify_one();
                Ok(task)
            }
            None => {
                // Re-read: the task may have moved on since it was read above.
                let now = outbox.get(id).await?.unwrap_or(task);
                Err(SendError::Refused(cannot_cancel(&now)))
            }
        }
    }

    pub(crate) async fn claim_cancellations(
        &self,
        limit: usize,
    ) -> Result<Vec<SentTask>, StoreError> {
        let config = &self.inner.config;
        let now = Timestamp::now();
        self.inner
            .outbox
            .claim_cancellations(&config.worker_id, now, now + config.lease, limit)
            .await
    }

    /// One attempt of a claimed cancellation.
    pub(crate) async fn deliver_cancellation(&self, mut task: SentTask) {
        let Some(mut c) = task.cancellation.clone() else {
            return;
        };
        let provider_task_id = task.provider_task_id.clone().unwrap_or_default();
        let body = order_response(&TaskUpdate {
            identifier: c.identifier.clone(),
            version: c.seen_version,
            request: format!("{}/Order/{provider_task_id}", task.endpoint),
            date: c.requested_at,
            who: self.person(&c.by.sds_user_id, &c.by.organisation, &c.by.name),
            owner: None,
            state: TaskState::Cancelled,
            description: Some(c.reason.clone()),
        });
        let route = Route::of(&task);
        let who = self.requester_for(&c.by, &task.from_name);
        let result = self
            .inner
            .client
            .post_order_response(&route, &who, &body, task.to_ods.as_str())
            .await;
        let now = Timestamp::now();
        c.attempts += 1;
        let mut applied = None;
        match classify(result, &task.to_name) {
            Answer::Delivered {
                status,
                body: answer,
            } => {
                c.status = UpdateStatus::Delivered;
                c.next_attempt_at = None;
                c.finished_at = Some(now);
                c.http_status = Some(status);
                c.detail = None;
                let version = version_of(&answer)
                    .unwrap_or_else(|| task.remote.as_ref().map_or(1, |r| r.version) + 1);
                applied = Some(TimelineEntry {
                    version,
                    at: now,
                    by: c.by.clone(),
                    party: gpc_domain::lifecycle::Party::Sender,
                    state: TaskState::Cancelled,
                    owner: task.remote.as_ref().and_then(|r| r.owner.clone()),
                    note: Some(c.reason.clone()),
                });
            }
            Answer::Refused { status, detail } => {
                c.status = UpdateStatus::Refused;
                c.next_attempt_at = None;
                c.finished_at = Some(now);
                c.http_status = status;
                c.detail = Some(detail);
            }
            Answer::Failed { status, detail } => {
                c.next_attempt_at = Some(now + update_backoff(c.attempts));
                c.http_status = status;
                c.detail = Some(detail);
            }
        }
        task.cancellation = Some(c);
        task.updated_at = now;
        let owner = &self.inner.config.worker_id;
        match self
            .inner
            .outbox
            .finish_cancellation(owner, &task, applied.as_ref())
            .await
        {
            Ok(true) => {
                let status = task.cancellation.as_ref().map(|c| c.status.code());
                tracing::info!(
                    task = %task.id,
                    status = status.unwrap_or("-"),
                    "cancellation attempt finished"
                );
                let current = self.inner.outbox.get(&task.id).await.ok().flatten();
                self.publish(current.as_ref().unwrap_or(&task), None);
            }
            Ok(false) => {
                tracing::warn!(task = %task.id, "lease lost during a cancellation; another worker owns it")
            }
            Err(e) => {
                tracing::error!(task = %task.id, error = %e, "could not record a cancellation attempt")
            }
        }
    }

    /// Runs the worker that delivers the receiving side's updates in `store`
    /// to the tasks' senders, until the returned handle is aborted. Changes
    /// made anywhere on the same data (a page, a CLI command in another
    /// process) are found by polling, at least every `poll_interval`. Each
    /// finished attempt is announced on `changed`, so that the task's open
    /// pages show whether the sender heard; `None` where the store
    /// announces it to every instance itself (`Store::changed_events`).
    pub fn spawn_update_worker(
        &self,
        store: Arc<dyn Store>,
        changed: Option<broadcast::Sender<ReceivedEvent>>,
    ) -> tokio::task::JoinHandle<()> {
        let engine = self.clone();
        tokio::spawn(async move {
            let mut running = JoinSet::new();
            loop {
                while let Some(done) = running.try_join_next() {
                    log_panic(done);
                }
                // A claim is one write that looks over the pending updates:
                // claiming again as each delivery finishes made 10,000 queued
                // updates cost 10,000 claims (117/s in bench/run). Refilling
                // once half the deliveries are done keeps the SSP busy with
                // one claim per 16 or more.
                let room = MAX_IN_FLIGHT.saturating_sub(running.len());
                if room >= MAX_IN_FLIGHT / 2 {
                    match engine.claim_updates(&store, room).await {
                        Ok(updates) => {
                            for update in updates {
                                let engine = engine.clone();
                                let store = store.clone();
                                let changed = changed.clone();
                                running.spawn(async move {
                                    let event = ReceivedEvent {
                                        tenant: update.tenant.clone(),
                                        task_id: update.task_id.clone(),
                                    };
                                    engine.deliver_update(&store, update).await;
                                    if let Some(changed) = changed {
                                        // Nobody watching is fine.
                                        let _ = changed.send(event);
                                    }
                                });
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "update worker could not claim updates")
                        }
                    }
                }
                let poll = engine.inner.config.poll_interval;
                // While deliveries run, their ends wake the loop; the due
                // time matters only to an idle worker.
                let due = if running.is_empty() {
                    store.next_update_due().await
                } else {
                    Ok(None)
                };
                let sleep = match due {
                    Ok(Some(due)) => Duration::try_from(due.duration_since(Timestamp::now()))
                        .unwrap_or(Duration::ZERO)
                        .min(poll),
                    _ => poll,
                };
                tokio::select! {
                    _ = tokio::time::sleep(sleep.max(Duration::from_millis(20))) => {}
                    Some(done) = running.join_next(), if !running.is_empty() => log_panic(done),
                }
            }
        })
    }

    /// Delivers every due update in `store` once, waiting for all; returns how many.
    pub async fn deliver_due_updates(&self, store: &Arc<dyn Store>) -> Result<usize, StoreError> {
        let claimed = self.claim_updates(store, MAX_IN_FLIGHT).await?;
        let count = claimed.len();
        let mut running = JoinSet::new();
        for update in claimed {
            let engine = self.clone();
            let store = store.clone();
            running.spawn(async move { engine.deliver_update(&store, update).await });
        }
        while let Some(done) = running.join_next().await {
            log_panic(done);
        }
        Ok(count)
    }

    async fn claim_updates(
        &self,
        store: &Arc<dyn Store>,
        limit: usize,
    ) -> Result<Vec<OutgoingUpdate>, StoreError> {
        let config = &self.inner.config;
        let now = Timestamp::now();
        store
            .claim_updates(&config.worker_id, now, now + config.lease, limit)
            .await
    }

    /// One attempt of a claimed update of a received task.
    async fn deliver_update(&self, store: &Arc<dyn Store>, mut update: OutgoingUpdate) {
        let result = self.post_update(&update).await;
        let now = Timestamp::now();
        update.attempts += 1;
        match result {
            Answer::Delivered { status, .. } => {
                update.status = UpdateStatus::Delivered;
                update.next_attempt_at = None;
                update.finished_at = Some(now);
                update.http_status = Some(status);
                update.detail = None;
            }
            Answer::Refused { status, detail } => {
                update.status = UpdateStatus::Refused;
                update.next_attempt_at = None;
                update.finished_at = Some(now);
                update.http_status = status;
                update.detail = Some(detail);
            }
            Answer::Failed { status, detail } => {
                update.next_attempt_at = Some(now + update_backoff(update.attempts));
                update.http_status = status;
                update.detail = Some(detail);
            }
        }
        let owner = &self.inner.config.worker_id;
        match store.finish_update(owner, &update).await {
            Ok(true) => tracing::info!(
                task = %update.task_id,
                tenant = %update.tenant,
                version = update.entry.version,
                status = update.status.code(),
                attempt = update.attempts,
                http_status = update.http_status.unwrap_or(0),
                "task update attempt finished"
            ),
            Ok(false) => tracing::warn!(
                task = %update.task_id,
                version = update.entry.version,
                "lease lost during a task update; another worker owns it"
            ),
            Err(e) => tracing::error!(
                task = %update.task_id,
                error = %e,
                "could not record a task update attempt"
            ),
        }
    }

    /// Finds the sender's endpoint in SDS and posts the update there.
    async fn post_update(&self, update: &OutgoingUpdate) -> Answer {
        let interaction = Interaction::CreateOrderResponse.id();
        let directory = &self.inner.directory;
        let region = self.inner.reference.current();
        let sender_name = region
            .organisation_by_ods(update.to_ods.as_str())
            .map_or_else(|| update.to_ods.to_string(), |o| o.name.clone());
        let own_name = region
            .organisation_by_ods(update.tenant.as_str())
            .map_or_else(|| update.tenant.to_string(), |o| o.name.clone());
        drop(region);
        let looked_up = async {
            let theirs = directory.endpoint(&update.to_ods, interaction).await?;
            let ours = directory.endpoint(&update.tenant, interaction).await?;
            Ok::<_, gpc_directory::DirectoryError>((theirs, ours))
        }
        .await;
        let (theirs, ours) = match looked_up {
            Ok((Some(theirs), Some(ours))) => (theirs, ours),
            Ok((None, _)) => {
                return Answer::Failed {
                    status: None,
                    detail: format!("SDS lists no endpoint for task updates at {sender_name}."),
                };
            }
            Ok((_, None)) => {
                return Answer::Failed {
                    status: None,
                    detail: format!("SDS lists no endpoint for task updates at {own_name}."),
                };
            }
            Err(e) => {
                return Answer::Failed {
                    status: None,
                    detail: format!("The national directory could not be reached: {e}"),
                };
            }
        };
        let entry = &update.entry;
        let mut who = self.person(&entry.by.sds_user_id, &update.tenant, &entry.by.name);
        // A signed-in user outside the reference data: the change recorded
        // their role, as their sign-in gave it (sign-in.md §3).
        if who.role_code.is_empty() {
            who.role_code = entry.by.role_code.clone();
            who.role_display = entry.by.role_display.clone();
        }
        // §2: the owner is `who` unless someone else was assigned it.
        let owner = entry
            .owner
            .as_ref()
            .filter(|o| o.sds_user_id != entry.by.sds_user_id)
            .map(|o: &Owner| self.person(&o.sds_user_id, &update.tenant, &o.name));
        let body = order_response(&TaskUpdate {
            identifier: update.identifier.clone(),
            version: entry.version,
            request: format!("{}/Order/{}", ours.address, update.task_id),
            date: entry.at,
            who,
            owner,
            state: entry.state,
            description: entry.note.clone(),
        });
        let route = Route {
            endpoint: theirs.address.clone(),
            from_ods: update.tenant.to_string(),
            from_asid: ours.asid.to_string(),
            to_asid: update.to_asid.to_string(),
            to_name: sender_name.clone(),
        };
        let requester = self.requester_for(&entry.by, &own_name);
        let result = self
            .inner
            .client
            .post_order_response(&route, &requester, &body, update.to_ods.as_str())
            .await;
        classify(result, &sender_name)
    }

    /// A practitioner as an update's contained resource names them: their
    /// record at `org` when the reference data still has it, else the name
    /// as recorded with the change.
    fn person(&self, sds_user_id: &str, org: &OdsCode, name: &str) -> Person {
        let region = self.inner.reference.current();
        match region
            .practitioners_by_sds(sds_user_id)
            .find(|p| &p.organisation == org)
        {
            Some(p) => Person {
                sds_user_id: p.sds_user_id.clone(),
                prefix: p.title.clone(),
                given: p.given.clone(),
                family: p.family.clone(),
                role_code: p.role_code.clone(),
                role_display: p.role_display.clone(),
            },
            None => {
                let (prefix, given, family) = name_parts(name);
                Person {
                    sds_user_id: sds_user_id.to_owned(),
                    prefix,
                    given,
                    family,
                    role_code: String::new(),
                    role_display: String::new(),
                }
            }
        }
    }

    /// The JWT's user for a change made by `actor`.
    fn requester_for(&self, actor: &Actor, org_name: &str) -> Requester {
        let region = self.inner.reference.current();
        let record = region
            .practitioners_by_sds(&actor.sds_user_id)
            .find(|p| p.organisation == actor.organisation);
        let (user_id, title, given, family) = match record {
            Some(p) => (
                p.id.clone(),
                p.title.clone(),
                p.given.clone(),
                p.family.clone(),
            ),
            None => {
                let (t, g, f) = name_parts(&actor.name);
                (actor.sds_user_id.clone(), t, g, f)
            }
        };
        Requester {
            system_url: self.inner.config.system_url.clone(),
            user_id,
            user_sds_id: actor.sds_user_id.clone(),
            title,
            given,
            family,
            role_code: actor.role_code.clone(),
            role_display: actor.role_display.clone(),
            org_ods: actor.organisation.to_string(),
            org_name: org_name.to_owned(),
        }
    }
}

/// The task's version an OrderResponse carries.
fn version_of(body: &Value) -> Option<u32> {
    body["extension"]
        .as_array()?
        .iter()
        .find(|e| e["url"] == TASK_VERSION_EXTENSION)?["valueInteger"]
        .as_u64()
        .and_then(|v| u32::try_from(v).ok())
}
