//! `POST /OrderResponse`: a task update arriving (task-lifecycle.md §2),
//! checks 2 to 7 in order (the common rules of step 1 are the entry
//! handler's). One endpoint hears both directions: a cancellation names a
//! task this organisation received, any other update a task it sent.

use super::response::{FhirReply, prefers_minimal};
use crate::state::AppState;
use axum::http::{HeaderMap, StatusCode, header};
use gpc_domain::lifecycle::{Change, Party, Refusal, TaskChange, TaskState};
use gpc_domain::order_response::{
    TaskUpdate, answer, answer_id, carried_version, check_structure, read_order_response,
};
use gpc_domain::reference::Organisation;
use gpc_domain::task::ReceivedEvent;
use gpc_domain::updates::{ReceivedUpdate, RemoteUpdate, Wire};
use gpc_domain::{Asid, Interaction, ProviderError, Region};
use gpc_fhir::Format;
use gpc_store::outbox::RemoteOutcome;
use gpc_store::{ChangeOutcome, StoreError};
use serde_json::Value;

/// What the request carried besides the body.
pub struct UpdateRequest<'a> {
    /// The reference data of this request.
    pub region: &'a Region,
    /// The organisation whose root was posted to.
    pub tenant: &'a Organisation,
    /// `Ssp-From`: its organisation is the one making the update.
    pub sender_asid: &'a Asid,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    pub body_format: Format,
}

/// How the update was answered, before rendering.
struct Answered {
    status: StatusCode,
    /// The stored OrderResponse.
    body: Value,
    /// The version the change has: `meta.versionId` and the ETag.
    version: u32,
}

/// The answer, and in `task_id` the local id of the task the update named
/// once step 4 found it (for the audit, also when a later step refuses).
pub async fn create_order_response(
    state: &AppState,
    request: UpdateRequest<'_>,
    task_id: &mut Option<String>,
) -> Result<FhirReply, ProviderError> {
    // Step 2: parse and structure, as for an Order.
    let body = gpc_fhir::parse_body(request.body, request.body_format)
        .map_err(|e| ProviderError::BadRequest(e.to_string()))?;
    check_structure(&body)?;
    // Step 3: content.
    let update = read_order_response(&body)?;
    let received = ReceivedUpdate {
        identifier: update.identifier.clone(),
        body: serde_json::to_string(&body).map_err(|e| {
            ProviderError::Internal(format!("the OrderResponse could not be encoded: {e}"))
        })?,
    };
    let root = state.provider_root(request.tenant.ods.as_str());
    // Steps 4 to 7. Who updates is the organisation owning `Ssp-From`: the
    // SSP has checked that the JWT's requesting organisation owns it.
    let from = request.region.organisation_by_asid(request.sender_asid);
    let answered = if update.state == TaskState::Cancelled {
        cancel_received(state, &request, from, &update, &body, received, task_id).await?
    } else {
        apply_to_sent(state, &request, from, &update, &body, received, task_id).await?
    };
    let version = answered.version.to_string();
    let location = format!("{root}/OrderResponse/{}", answer_id(&update.identifier));
    let mut reply = FhirReply::ok(answered.body)
        .with_status(answered.status)
        .with_etag(&version)
        .with_header(header::LOCATION, &location);
    if prefers_minimal(request.headers) {
        reply = reply.without_body();
    }
    Ok(reply)
}

/// Step 4's one answer, whether there is no such task at all, it is some
/// other organisation's, or the URL is not this system's: the sender of an
/// update learns nothing about tasks that are not its own.
fn not_found() -> ProviderError {
    ProviderError::ReferenceNotFound(
        "OrderResponse.request does not name a task that the sending organisation may update on this system".into(),
    )
}

fn store_error(e: StoreError) -> ProviderError {
    match e {
        StoreError::Busy(_) => {
            ProviderError::Unavailable("the task store is busy; try again shortly".into())
        }
        other => {
            tracing::error!(error = %other, "applying a task update failed");
            ProviderError::Internal("the task update could not be applied".into())
        }
    }
}

/// The answer to a repeat: the body kept with the change, at the version
/// the change was given (`version` of the kept body).
fn stored(body: &str, version: impl FnOnce(&Value) -> u32) -> Result<Answered, ProviderError> {
    let kept: Value = serde_json::from_str(body).map_err(|e| {
        tracing::error!(error = %e, "a stored task update cannot be read back");
        ProviderError::Internal("the stored task update could not be read".into())
    })?;
    let version = version(&kept);
    Ok(Answered {
        status: StatusCode::OK,
        body: answer(&kept, version),
        version,
    })
}

/// The sender withdraws a task this organisation received from it: the
/// request is this root's own Order URL of that task.
async fn cancel_received(
    state: &AppState,
    request: &UpdateRequest<'_>,
    from: Option<&Organisation>,
    update: &TaskUpdate,
    body: &Value,
    received: ReceivedUpdate,
    task_id: &mut Option<String>,
) -> Result<Answered, ProviderError> {
    let from = from.ok_or_else(not_found)?;
    let tenant = &request.tenant.ods;
    // This root by either of its names: the URL its Locations carry, and
    // the address SDS lists it under, which the sender took for its task's
    // endpoint (they differ when the SSP reaches providers another way).
    let own_roots = [
        Some(state.provider_root(tenant.as_str())),
        state
            .directory
            .sds_endpoint(tenant, Interaction::CreateOrderResponse.id())
            .map(|e| e.address),
    ];
    let id = own_roots
        .iter()
        .flatten()
        .find_map(|root| update.request.strip_prefix(root.as_str()))
        .and_then(|rest| rest.strip_prefix("/Order/"))
        .filter(|id| !id.is_empty() && !id.contains('/'))
        .ok_or_else(not_found)?;
    let task = state
        .store
        .get_task(tenant, id)
        .await
        .map_err(store_error)?
        .filter(|t| t.provenance.organisation_ods == from.ods)
        .ok_or_else(not_found)?;
    *task_id = Some(task.id.clone());
    let change = TaskChange {
        change: Change::Cancel,
        by: update.who.as_actor(&from.ods),
        party: Party::Sender,
        text: update.description.clone(),
        // §2: a cancellation of an open task applies whatever changed since
        // the sender last looked; its version is information only.
        expected_version: None,
        at: jiff::Timestamp::now(),
        wire: Wire::Incoming(received),
    };
    let outcome = state
        .store
        .change_task(tenant, id, change)
        .await
        .map_err(store_error)?
        .ok_or_else(not_found)?;
    match outcome {
        ChangeOutcome::Changed { task, entry } => {
            // Ids and states only: never the reason or a name (§5).
            tracing::info!(
                tenant = %tenant,
                task = %task.id,
                update = %update.identifier,
                state = task.life.state.code(),
                version = entry.version,
                "received task cancelled by its sender"
            );
            if state.announce_changes {
                // Nobody watching is fine.
                let _ = state.changed.send(ReceivedEvent {
                    tenant: task.tenant.clone(),
                    task_id: task.id.clone(),
                });
            }
            Ok(Answered {
                status: StatusCode::CREATED,
                body: answer(body, entry.version),
                version: entry.version,
            })
        }
        ChangeOutcome::Repeat { task, entry, body } => {
            tracing::info!(
                tenant = %tenant,
                task = %task.id,
                update = %update.identifier,
                version = entry.version,
                "repeated cancellation answered as before"
            );
            stored(&body, |_| entry.version)
        }
        ChangeOutcome::Refused {
            refusal: Refusal::AlreadyFinal(final_state),
            task,
        } => {
            let since = state
                .store
                .timeline(tenant, &task.id)
                .await
                .map_err(store_error)?
                .last()
                .map_or(task.received_at, |e| e.at);
            tracing::info!(
                tenant = %tenant,
                task = %task.id,
                update = %update.identifier,
                state = final_state.code(),
                "cancellation refused: the task is final"
            );
            Err(ProviderError::Conflict(format!(
                "the task was {} at {}; it cannot be cancelled",
                final_state.code(),
                since.strftime("%Y-%m-%dT%H:%M:%SZ")
            )))
        }
        ChangeOutcome::Refused { refusal, task } => {
            tracing::info!(
                tenant = %tenant,
                task = %task.id,
                update = %update.identifier,
                refusal = %refusal,
                "cancellation refused"
            );
            Err(ProviderError::InvalidResource(format!(
                "the cancellation cannot be applied: {refusal}"
            )))
        }
    }
}

/// The recipient reports a change of a task this organisation sent it: the
/// request is the Order URL that recipient returned on delivery.
async fn apply_to_sent(
    state: &AppState,
    request: &UpdateRequest<'_>,
    from: Option<&Organisation>,
    update: &TaskUpdate,
    body: &Value,
    received: ReceivedUpdate,
    task_id: &mut Option<String>,
) -> Result<Answered, ProviderError> {
    let outbox = state.outbox.as_ref().ok_or_else(|| {
        ProviderError::Internal("this server keeps no record of sent tasks".into())
    })?;
    let from = from.ok_or_else(not_found)?;
    let tenant = &request.tenant.ods;
    let (endpoint, provider_task_id) = update
        .request
        .rsplit_once("/Order/")
        .ok_or_else(not_found)?;
    let sent = outbox
        .find_delivered(tenant, provider_task_id)
        .await
        .map_err(store_error)?
        .filter(|t| t.endpoint == endpoint && t.to_ods == from.ods)
        .ok_or_else(not_found)?;
    *task_id = Some(sent.id.clone());
    let held_owner = sent.remote.as_ref().and_then(|r| r.owner.clone());
    let remote = RemoteUpdate {
        entry: update.entry(&from.ods, Party::Receiver, held_owner),
        received: Some(received),
    };
    let outcome = outbox
        .apply_remote(&sent.id, &remote)
        .await
        .map_err(store_error)?
        .ok_or_else(not_found)?;
    let fresh = |status| Answered {
        status,
        body: answer(body, update.version),
        version: update.version,
    };
    let answered = match outcome {
        RemoteOutcome::Applied(task) => {
            // The sender's open pages of the task follow it. Where a shared
            // outbox also announces the change, a page hears it twice,
            // which shows the same state again and is harmless.
            if let Some(engine) = &state.engine {
                engine.announce(&task);
            }
            fresh(StatusCode::CREATED)
        }
        // Updates may overtake each other; the highest version has won, and
        // this one is acknowledged without changing anything.
        RemoteOutcome::Late(_) => fresh(StatusCode::OK),
        // The version the receiver gave it then, as the kept body says.
        RemoteOutcome::Repeat { body, .. } => stored(&body, |kept| {
            carried_version(kept).unwrap_or(update.version)
        })?,
    };
    // Ids and states only: never the note, the reason or a name (§5).
    tracing::info!(
        tenant = %tenant,
        sent_task = %sent.id,
        update = %update.identifier,
        state = update.state.code(),
        version = update.version,
        status = answered.status.as_u16(),
        "update of a sent task answered"
    );
    Ok(answered)
}
