//! The Spine headers every provider request carries (spec §3.1).

use axum::http::HeaderMap;
use gpc_domain::reference::Organisation;
use gpc_domain::{Asid, ProviderError};

pub const TRACE_ID: &str = "ssp-traceid";
pub const FROM: &str = "ssp-from";
pub const TO: &str = "ssp-to";
pub const INTERACTION_ID: &str = "ssp-interactionid";

/// The validated header values.
#[derive(Debug, Clone)]
pub struct SspHeaders {
    pub trace_id: String,
    pub from: Asid,
    pub to: Asid,
    pub interaction_id: String,
}

/// A header's value if present, text and non-blank.
pub fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
}

fn required<'a>(headers: &'a HeaderMap, name: &str, label: &str) -> Result<&'a str, ProviderError> {
    header(headers, name)
        .ok_or_else(|| ProviderError::BadRequest(format!("the {label} header is missing or empty")))
}

/// Checks the four `Ssp-*` headers against the tenant this request addresses.
pub fn check(headers: &HeaderMap, tenant: &Organisation) -> Result<SspHeaders, ProviderError> {
    let trace_id = required(headers, TRACE_ID, "Ssp-TraceID")?;
    let from = required(headers, FROM, "Ssp-From")?;
    let to = required(headers, TO, "Ssp-To")?;
    let interaction_id = required(headers, INTERACTION_ID, "Ssp-InteractionID")?;
    if headers.get(axum::http::header::AUTHORIZATION).is_none() {
        return Err(ProviderError::BadRequest(
            "the Authorization header is missing".into(),
        ));
    }
    if uuid::Uuid::try_parse(trace_id).is_err() {
        return Err(ProviderError::BadRequest(
            "Ssp-TraceID must be a UUID".into(),
        ));
    }
    let from = Asid::parse(from)
        .ok_or_else(|| ProviderError::BadRequest("Ssp-From must be an ASID (digits)".into()))?;
    let to = Asid::parse(to)
        .ok_or_else(|| ProviderError::BadRequest("Ssp-To must be an ASID (digits)".into()))?;
    if tenant.asid.as_ref() != Some(&to) {
        return Err(ProviderError::BadRequest(
            "Ssp-To is not the ASID of this endpoint".into(),
        ));
    }
    Ok(SspHeaders {
        trace_id: trace_id.to_owned(),
        from,
        to,
        interaction_id: interaction_id.to_owned(),
    })
}
