//! The multi-tenant GP Connect provider: `{public-url}/{ODS}/DSTU2/1/...`.
//! One entry handler applies the common rules of spec §3 in order, then
//! dispatches to the operation, and audits every request.

mod create_task;
mod lookups;
pub mod negotiate;
mod order_response;
pub mod resources;
pub mod response;
mod route;
pub mod search_params;
pub mod ssp_headers;

use crate::short;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header, request::Parts};
use axum::response::Response;
use gpc_domain::ProviderError;
use gpc_domain::audit::AuditRecord;
use gpc_domain::jwt::{self, AuditClaims};
use gpc_domain::reference::Organisation;
use gpc_fhir::Format;
use response::{FhirReply, error_response};
use route::Operation;

/// Request bodies larger than this are refused with 413.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Splits `/{ODS}/DSTU2/1/rest` into the tenant's ODS code and `/rest`.
pub(crate) fn split_root(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix('/')?;
    let (ods, rest) = rest.split_once('/')?;
    let rest = rest.strip_prefix("DSTU2/1")?;
    (rest.is_empty() || rest.starts_with('/')).then_some((ods, rest))
}

/// The entry point of every provider request.
pub async fn handle(State(state): State<AppState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let mut audit = AuditRecord {
        time: jiff::Timestamp::now(),
        method: parts.method.to_string(),
        path: parts.uri.path().chars().take(512).collect(),
        ..AuditRecord::default()
    };
    let format = negotiate::response_format(
        negotiate::format_param(parts.uri.query()).as_deref(),
        header_str(&parts.headers, header::ACCEPT),
        header_str(&parts.headers, header::CONTENT_TYPE),
    );
    let reply_format = format.as_ref().copied().unwrap_or(Format::Json);
    let outcome = process(&state, &parts, body, format, &mut audit).await;
    let mut error_code = None;
    let (response, audited) = match outcome {
        Ok((reply, audited)) => (
            not_modified_or(reply, &parts.headers, reply_format),
            audited,
        ),
        Err(error) => {
            let code = error.catalogue().code;
            error_code = Some(code);
            audit.error_code = Some(code.to_owned());
            (error_response(&error, reply_format), false)
        }
    };
    audit.status = response.status().as_u16();
    if parts.method == axum::http::Method::POST
        && crate::ops::labels::provider_route(parts.uri.path()) == "/{ods}/DSTU2/1/Order"
    {
        count_create(audit.status, error_code);
    }
    tracing::debug!(
        tenant = %audit.tenant,
        trace_id = audit.trace_id.as_deref().unwrap_or("-"),
        method = %audit.method,
        status = audit.status,
        error = audit.error_code.as_deref().unwrap_or("-"),
        "provider request"
    );
    if !audited {
        state.store.record_audit(audit);
    }
    response
}

/// `gpc_provider_creates_total{outcome}`: `created` (201), `duplicate`
/// (200, the task already held one of its identifiers) or the error's
/// GP Connect code.
fn count_create(status: u16, error_code: Option<&'static str>) {
    let outcome = match (status, error_code) {
        (_, Some(code)) => code,
        (201, None) => "created",
        (200, None) => "duplicate",
        // 304 cannot answer a POST; kept apart rather than guessed.
        _ => "other",
    };
    metrics::counter!("gpc_provider_creates_total", "outcome" => outcome).increment(1);
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// `If-None-Match` equal to the reply's ETag gives 304.
fn not_modified_or(reply: FhirReply, request: &HeaderMap, format: Format) -> Response {
    let etag = reply.headers.get(header::ETAG).cloned();
    let matches = etag.as_ref().is_some_and(|etag| {
        request
            .get_all(header::IF_NONE_MATCH)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|candidate| {
                let c = candidate.trim();
                c == "*"
                    || c.trim_start_matches("W/")
                        == etag.to_str().unwrap_or("").trim_start_matches("W/")
            })
    });
    if matches && reply.status == StatusCode::OK {
        return reply
            .with_status(StatusCode::NOT_MODIFIED)
            .without_body()
            .render(format);
    }
    reply.render(format)
}

/// The rules of spec §3 in order, then the operation. The flag says whether
/// the audit record was already written with the task.
async fn process(
    state: &AppState,
    parts: &Parts,
    body: Body,
    format: Result<Format, ProviderError>,
    audit: &mut AuditRecord,
) -> Result<(FhirReply, bool), ProviderError> {
    let path = parts.uri.path();
    let unknown = || {
        ProviderError::NotFound(format!(
            "{} is not a provider endpoint of this server",
            short(path, 100)
        ))
    };
    let (ods, rest) = split_root(path).ok_or_else(unknown)?;
    // One index for the whole request, whatever replaces it meanwhile.
    let region = state.region.current();
    // Every organisation with a Spine system has a root; what it serves
    // there depends on whether it receives tasks.
    let tenant = region.root(ods).ok_or_else(unknown)?;
    audit.tenant = tenant.ods.as_str().to_owned();
    if !route::path_exists(rest) {
        return Err(ProviderError::NotFound(format!(
            "{} is not a resource of this server",
            short(rest, 100)
        )));
    }
    if !route::path_served(rest, tenant) {
        return Err(ProviderError::NotFound(format!(
            "{} is not served here: {} receives no tasks, so its endpoint serves only /metadata and /OrderResponse",
            short(rest, 100),
            tenant.ods
        )));
    }

    let headers = ssp_headers::check(&parts.headers, tenant);
    // Record what was sent even when the check fails, for the audit.
    audit.trace_id =
        ssp_headers::header(&parts.headers, ssp_headers::TRACE_ID).map(|v| short(v, 100));
    audit.from_asid = ssp_headers::header(&parts.headers, ssp_headers::FROM).map(|v| short(v, 100));
    audit.to_asid = ssp_headers::header(&parts.headers, ssp_headers::TO).map(|v| short(v, 100));
    audit.interaction =
        ssp_headers::header(&parts.headers, ssp_headers::INTERACTION_ID).map(|v| short(v, 100));
    let headers = headers?;
    let operation = route::resolve(&parts.method, rest, &headers.interaction_id)?;

    let claims = jwt::decode(
        &state.claim_cache,
        header_str(&parts.headers, header::AUTHORIZATION),
        jiff::Timestamp::now().as_second(),
    )?;
    audit.practitioner_sds_id = Some(claims.practitioner_sds_id.clone());
    audit.organisation_ods = Some(claims.organisation_ods.clone());

    let query = parts.uri.query();
    match operation {
        Operation::CreateTask => {
            claims.check_for(operation.interaction(), tenant.ods.as_str(), None)?;
            let body_format = body_format(&parts.headers)?;
            let response_format = format?;
            let (bytes, body_format) = read_body(body, body_format).await?;
            let request = create_task::CreateRequest {
                region: &region,
                tenant,
                claims: &claims,
                sender_asid: headers.from.clone(),
                trace_id: &headers.trace_id,
                headers: &parts.headers,
                body: &bytes,
                body_format,
                response_format,
            };
            let mut task_audit = audit.clone();
            task_audit.status = 201;
            let (reply, task_id) = create_task::create_task(state, request, task_audit).await?;
            audit.task_id = Some(task_id);
            let audited = reply.status == StatusCode::CREATED;
            Ok((reply, audited))
        }
        Operation::CreateOrderResponse => {
            claims.check_for(operation.interaction(), tenant.ods.as_str(), None)?;
            let body_format = body_format(&parts.headers)?;
            // Checked here, in the order of §3; the reply is rendered in it later.
            format?;
            let (bytes, body_format) = read_body(body, body_format).await?;
            let request = order_response::UpdateRequest {
                region: &region,
                tenant,
                sender_asid: &headers.from,
                headers: &parts.headers,
                body: &bytes,
                body_format,
            };
            let reply =
                order_response::create_order_response(state, request, &mut audit.task_id).await?;
            Ok((reply, false))
        }
        other => {
            // §3.4: a Content-Type that is not a FHIR type is refused on
            // every request, a GET without a body included.
            let content_types = body_format(&parts.headers).and(format);
            let reply = lookup(
                state,
                &region,
                tenant,
                &claims,
                &other,
                query,
                content_types,
            )
            .await?;
            Ok((reply, false))
        }
    }
}

/// The body of a create, up to [`MAX_BODY_BYTES`], with its format: a body
/// without a Content-Type is a 415, no body at all a 400. Only a body over
/// the limit is a 413: one whose framing is broken (an invalid chunk, a
/// connection that ends before its Content-Length) is a 400.
async fn read_body(
    body: Body,
    format: Option<Format>,
) -> Result<(axum::body::Bytes, Format), ProviderError> {
    let bytes = axum::body::to_bytes(body, MAX_BODY_BYTES)
        .await
        .map_err(|e| {
            if over_the_limit(&e) {
                ProviderError::PayloadTooLarge(format!(
                    "the request body is larger than {MAX_BODY_BYTES} bytes"
                ))
            } else {
                ProviderError::BadRequest(
                    "the request body could not be read: its framing is malformed or it ended early"
                        .into(),
                )
            }
        })?;
    let format = format.ok_or_else(|| {
        if bytes.is_empty() {
            ProviderError::BadRequest("the request body is empty".into())
        } else {
            ProviderError::UnsupportedMediaType(
                "a request with a body needs Content-Type application/json+fhir or application/xml+fhir".into(),
            )
        }
    })?;
    Ok((bytes, format))
}

/// Whether reading a body failed on [`MAX_BODY_BYTES`], rather than on the
/// connection (the limit's error is wrapped once by axum).
fn over_the_limit(error: &axum::Error) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = cause {
        if e.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cause = e.source();
    }
    false
}

/// The request body's format: `None` when no Content-Type was sent, 415 when
/// an unsupported one was.
fn body_format(headers: &HeaderMap) -> Result<Option<Format>, ProviderError> {
    match header_str(headers, header::CONTENT_TYPE) {
        None => Ok(None),
        Some(ct) => negotiate::request_format(Some(ct)).map(Some),
    }
}

async fn lookup(
    state: &AppState,
    region: &gpc_domain::Region,
    tenant: &Organisation,
    claims: &AuditClaims,
    operation: &Operation,
    query: Option<&str>,
    format: Result<Format, ProviderError>,
) -> Result<FhirReply, ProviderError> {
    let interaction = operation.interaction();
    let provider_ods = tenant.ods.as_str();
    match operation {
        Operation::SearchPatient => {
            let param = search_params::identifier(query)?;
            let nhs = lookups::patient_search_nhs(&param)?;
            claims.check_for(interaction, provider_ods, Some(&nhs))?;
            format?;
            lookups::search_patient(state, region, tenant, &nhs).await
        }
        Operation::SearchOrganization | Operation::SearchPractitioner => {
            claims.check_for(interaction, provider_ods, None)?;
            let param = search_params::identifier(query)?;
            format?;
            if *operation == Operation::SearchOrganization {
                lookups::search_organization(state, region, tenant, &param)
            } else {
                lookups::search_practitioner(state, region, tenant, &param)
            }
        }
        _ => {
            claims.check_for(interaction, provider_ods, None)?;
            let format = format?;
            match operation {
                Operation::Metadata => Ok(FhirReply::rendered(resources::conformance_body(
                    &state.conformance_cache,
                    &state.provider_root(provider_ods),
                    tenant,
                    format,
                ))),
                Operation::ReadPatient(id) => {
                    lookups::read_patient(state, region, tenant, id).await
                }
                Operation::ReadOrganization(id) => lookups::read_organization(region, id),
                Operation::ReadPractitioner(id) => lookups::read_practitioner(region, id),
                Operation::SearchPatient
                | Operation::SearchOrganization
                | Operation::SearchPractitioner
                | Operation::CreateTask
                | Operation::CreateOrderResponse => unreachable!("handled above"),
            }
        }
    }
}
