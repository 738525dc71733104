//! `POST /Order`: where a task is accepted (spec §4).

use super::response::FhirReply;
use crate::state::AppState;
use axum::http::{HeaderMap, StatusCode, header};
use gpc_domain::audit::AuditRecord;
use gpc_domain::jwt::AuditClaims;
use gpc_domain::jwt::RequestedRecord;
use gpc_domain::new_task::{FreshIds, Sender, task_from_order};
use gpc_domain::order_rules::{
    NamedRecords, check_record_is_subject, london_today, subject_id, validate_order,
};
use gpc_domain::reference::Organisation;
use gpc_domain::reference::PatientKey;
use gpc_domain::task::BusinessIdentifier;
use gpc_domain::{Asid, ProviderError, Region};
use gpc_fhir::Format;
use gpc_store::{CreateOutcome, StoreError};

/// What the request carried besides the body.
pub struct CreateRequest<'a> {
    /// The reference data of this request.
    pub region: &'a Region,
    pub tenant: &'a Organisation,
    pub claims: &'a AuditClaims,
    pub sender_asid: Asid,
    pub trace_id: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    pub body_format: Format,
    /// The format the answer is rendered in.
    pub response_format: Format,
}

/// The result and the id of the task it stored or found, for the audit.
pub async fn create_task(
    state: &AppState,
    request: CreateRequest<'_>,
    audit: AuditRecord,
) -> Result<(FhirReply, String), ProviderError> {
    let body = gpc_fhir::parse_body(request.body, request.body_format);
    let named = named_records(state, request.tenant, request.claims, body.as_ref().ok()).await?;
    // Step 1 still: the token's patient against the subject, before the
    // body's own checks (steps 2 to 7).
    check_record_is_subject(request.claims, body.as_ref().ok(), &named)?;
    let body = body.map_err(|e| ProviderError::BadRequest(e.to_string()))?;
    let now = jiff::Timestamp::now();
    let order = validate_order(
        body,
        request.tenant,
        request.region,
        &named,
        london_today(now),
    )?;
    let extra_keys = if_none_exist(request.headers)?.into_iter().collect();
    let sender = Sender {
        claims: request.claims,
        asid: request.sender_asid,
        trace_id: request.trace_id,
    };
    let task = task_from_order(
        order,
        request.tenant,
        sender,
        extra_keys,
        FreshIds::generate(),
        now,
    )?;
    // Serialised once: the store keeps this text and a JSON answer is this text.
    let resource_json = serde_json::to_string(&task.resource)
        .map_err(|e| ProviderError::Internal(format!("the Order could not be encoded: {e}")))?;
    let json_answer = (request.response_format == Format::Json).then(|| resource_json.clone());
    let id = task.id.clone();
    let audit = AuditRecord {
        status: 201,
        task_id: Some(id),
        ..audit
    };
    let (stored, status, rendered) = match state
        .store
        .create_serialised(task, resource_json, audit)
        .await
    {
        Ok(CreateOutcome::Created(t)) => {
            if state.announce_received {
                // Nobody watching the inbox is fine.
                let _ = state.received.send(gpc_domain::task::ReceivedEvent {
                    tenant: t.tenant.clone(),
                    task_id: t.id.clone(),
                });
            }
            (t, StatusCode::CREATED, json_answer)
        }
        Ok(CreateOutcome::Existing(t)) => (t, StatusCode::OK, None),
        Err(StoreError::Busy(_)) => {
            return Err(ProviderError::Unavailable(
                "the task store is busy; try again shortly".into(),
            ));
        }
        Err(e) => {
            tracing::error!(error = %e, "storing a task failed");
            return Err(ProviderError::Internal(
                "the task could not be stored".into(),
            ));
        }
    };
    let stored = stored.task;
    let location = format!(
        "{}/Order/{}/_history/{}",
        state.provider_root(request.tenant.ods.as_str()),
        stored.id,
        stored.version_id
    );
    let minimal = super::response::prefers_minimal(request.headers);
    let last_modified = jiff::fmt::rfc2822::DateTimePrinter::new()
        .timestamp_to_rfc9110_string(&stored.received_at)
        .unwrap_or_default();
    let reply = match rendered {
        Some(json) => FhirReply::rendered(json.into()),
        None => FhirReply::ok(stored.resource),
    };
    let mut reply = reply
        .with_status(status)
        .with_etag(&stored.version_id)
        .with_header(header::LOCATION, &location)
        .with_header(header::LAST_MODIFIED, &last_modified);
    if minimal {
        reply = reply.without_body();
    }
    Ok((reply, stored.id))
}

/// The tenant's records of the JWT's patient and of the Order's subject,
/// each one indexed read (the same read when both name one patient).
async fn named_records(
    state: &AppState,
    tenant: &Organisation,
    claims: &AuditClaims,
    body: Option<&serde_json::Value>,
) -> Result<NamedRecords, ProviderError> {
    let read = |key| state.store.patient_record(&tenant.ods, key);
    let unavailable = |e: StoreError| match e {
        StoreError::Busy(_) => {
            ProviderError::Unavailable("the patient store is busy; try again shortly".into())
        }
        e => {
            tracing::error!(error = %e, "reading a patient record failed");
            ProviderError::Internal("the patient record could not be read".into())
        }
    };
    let subject = match body.and_then(subject_id) {
        Some(id) => read(PatientKey::Id(id)).await.map_err(unavailable)?,
        None => None,
    };
    let token_patient = match &claims.requested_record {
        RequestedRecord::Patient(nhs) => match &subject {
            Some((patient, _)) if patient.nhs_number == *nhs => subject.clone(),
            _ => read(PatientKey::Nhs(nhs)).await.map_err(unavailable)?,
        },
        _ => None,
    };
    Ok(NamedRecords {
        token_patient,
        subject,
    })
}

/// The conditional-create header `If-None-Exist: identifier=system|value`.
fn if_none_exist(headers: &HeaderMap) -> Result<Option<BusinessIdentifier>, ProviderError> {
    let Some(value) = headers.get("if-none-exist") else {
        return Ok(None);
    };
    let bad = || ProviderError::BadRequest("If-None-Exist must be identifier=system|value".into());
    let text = value.to_str().map_err(|_| bad())?;
    let param = super::search_params::identifier(Some(text.trim())).map_err(|_| bad())?;
    Ok(Some(BusinessIdentifier {
        system: param.system,
        value: param.value,
    }))
}
