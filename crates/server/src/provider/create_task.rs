//! `POST /Order`: where a task is accepted (spec §4).

use super::response::FhirReply;
use crate::state::AppState;
use axum::http::{HeaderMap, StatusCode, header};
use gpc_domain::ProviderError;
use gpc_domain::audit::AuditRecord;
use gpc_domain::jwt::AuditClaims;
use gpc_domain::order_rules::{london_today, validate_order};
use gpc_domain::reference::Organisation;
use gpc_domain::systems::{PROFILE_ORDER, URN};
use gpc_domain::task::{BusinessIdentifier, NewTask, Provenance};
use gpc_fhir::Format;
use gpc_store::{CreateOutcome, StoreError};
use serde_json::{Map, Value, json};

/// What the request carried besides the body.
pub struct CreateRequest<'a> {
    pub tenant: &'a Organisation,
    pub claims: &'a AuditClaims,
    pub sender_asid: &'a str,
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
    let body = gpc_fhir::parse_body(request.body, request.body_format)
        .map_err(|e| ProviderError::BadRequest(e.to_string()))?;
    let now = jiff::Timestamp::now();
    let order = validate_order(body, request.tenant, &state.region, london_today(now))?;
    request
        .claims
        .check_task_subject(&order.patient.nhs_number)?;

    let mut keys = order.identifiers.clone();
    if let Some(condition) = if_none_exist(request.headers)? {
        keys.push(condition);
    }
    // Time-ordered (v7, still 74 random bits): a new task's id lands at the
    // end of the primary-key index instead of on a random page of it, so a
    // commit rewrites one index page rather than one per task.
    let id = uuid::Uuid::now_v7().to_string();
    let provider_identifier = format!("urn:uuid:{}", uuid::Uuid::new_v4());
    let version = "1";
    let resource = stored_resource(order.resource, &id, version, now, &provider_identifier);
    // Serialised once: the store keeps this text and a JSON answer is this text.
    let resource_json = serde_json::to_string(&resource)
        .map_err(|e| ProviderError::Internal(format!("the Order could not be encoded: {e}")))?;
    let json_answer = (request.response_format == Format::Json).then(|| resource_json.clone());
    let claims = request.claims;
    let task = NewTask {
        id: id.clone(),
        version_id: version.to_owned(),
        tenant: request.tenant.ods.as_str().to_owned(),
        idempotency_keys: keys,
        provider_identifier,
        patient_id: order.patient.id.clone(),
        nhs_number: order.patient.nhs_number.as_digits(),
        patient_name: order.patient.display_name(),
        source_org_id: order.source.id.clone(),
        task_type: order.task_type,
        text: order.text,
        received_at: now,
        provenance: Provenance {
            sender_asid: request.sender_asid.to_owned(),
            organisation_ods: claims.organisation_ods.clone(),
            organisation_name: claims.organisation_name.clone(),
            practitioner_sds_id: claims.practitioner_sds_id.clone(),
            practitioner_name: claims.practitioner_name.clone(),
            role_code: claims.role_code.clone(),
            role_display: claims.role_display.clone(),
            trace_id: request.trace_id.to_owned(),
        },
        resource,
    };
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
    let location = format!(
        "{}/Order/{}/_history/{}",
        state.provider_root(request.tenant.ods.as_str()),
        stored.id,
        stored.version_id
    );
    let minimal = request
        .headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim().eq_ignore_ascii_case("return=minimal"));
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

/// The Order as stored: server id and meta first, then what was submitted,
/// with the provider's own business identifier added.
fn stored_resource(
    submitted: Map<String, Value>,
    id: &str,
    version: &str,
    now: jiff::Timestamp,
    provider_identifier: &str,
) -> Value {
    let mut out = Map::with_capacity(submitted.len() + 2);
    out.insert("resourceType".into(), json!("Order"));
    out.insert("id".into(), json!(id));
    let mut meta = match submitted.get("meta") {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    };
    meta.insert("versionId".into(), json!(version));
    meta.insert("lastUpdated".into(), json!(now.to_string()));
    if !meta.contains_key("profile") {
        meta.insert("profile".into(), json!([PROFILE_ORDER]));
    }
    out.insert("meta".into(), Value::Object(meta));
    let mut identifier_added = false;
    for (key, value) in submitted {
        match key.as_str() {
            "resourceType" | "id" | "meta" => {}
            "identifier" => {
                let mut ids = match value {
                    Value::Array(a) => a,
                    _ => Vec::new(),
                };
                ids.push(json!({"system": URN, "value": provider_identifier}));
                out.insert(key, Value::Array(ids));
                identifier_added = true;
            }
            _ => {
                out.insert(key, value);
            }
        }
    }
    if !identifier_added {
        out.insert(
            "identifier".into(),
            json!([{"system": URN, "value": provider_identifier}]),
        );
    }
    Value::Object(out)
}
