//! PDS: `GET /Patient/{nhs}`, as the national Personal Demographics Service
//! answers it (restricted records without address, telecom or GP; the
//! deceased with their date of death).

use super::outcome::ApiError;
use super::{Fhir, directory, r4};
use crate::state::AppState;
use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::get;
use gpc_directory::r4::REQUEST_ID;
use gpc_domain::NhsNumber;

pub fn routes() -> Router<AppState> {
    Router::new().route("/Patient/{id}", get(read_patient))
}

async fn read_patient(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> Result<Fhir, ApiError> {
    require_request_id(&headers)?;
    let nhs = id
        .ok()
        .and_then(|Path(id)| wire_nhs_number(&id))
        .ok_or_else(|| {
            ApiError::InvalidResourceId(
                "the id must be an NHS number: ten digits passing the Modulus 11 check".into(),
            )
        })?;
    let patient = directory(&state)
        .traced_patient(&nhs)
        .await
        .map_err(|_| ApiError::Unavailable("the patient store is busy; try again shortly".into()))?
        .ok_or_else(|| ApiError::NotFound("no patient has this NHS number".into()))?;
    Ok(Fhir(r4::patient(&patient)))
}

/// Exactly ten digits: the spaced form people read is not an id on the wire.
fn wire_nhs_number(id: &str) -> Option<NhsNumber> {
    let digits = id.len() == 10 && id.bytes().all(|b| b.is_ascii_digit());
    digits.then(|| NhsNumber::parse(id).ok()).flatten()
}

fn require_request_id(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(REQUEST_ID) else {
        return Err(ApiError::MissingValue(
            "X-Request-ID header must be supplied to access this resource".into(),
        ));
    };
    if value.to_str().is_ok_and(is_request_id) {
        Ok(())
    } else {
        Err(ApiError::InvalidValue(
            "X-Request-ID must be a UUID (8-4-4-4-12 hexadecimal digits)".into(),
        ))
    }
}

/// The hyphenated UUID form the national API requires.
pub fn is_request_id(value: &str) -> bool {
    value.len() == 36 && uuid::Uuid::try_parse(value).is_ok()
}
