//! The organisation directory: name, care setting, address and telephone of
//! every organisation; the telephone is the channel offered when a task
//! cannot be delivered electronically.

use super::outcome::ApiError;
use super::query::{Params, RawQuery, ods_code, ods_token};
use super::{Fhir, directory, r4};
use crate::state::AppState;
use axum::Router;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::Uri;
use axum::routing::get;
use gpc_directory::r4::ODS_MOUNT;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/Organization", get(search_organisations))
        .route("/Organization/{id}", get(read_organisation))
}

async fn read_organisation(
    State(state): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Fhir, ApiError> {
    let ods = id.ok().and_then(|Path(id)| ods_code(&id)).ok_or_else(|| {
        ApiError::InvalidResourceId("the id must be an ODS code: 3 to 10 letters and digits".into())
    })?;
    let found = directory(&state)
        .ods_organisation(&ods)
        .ok_or_else(|| ApiError::NotFound(format!("no organisation has the ODS code {ods}")))?;
    Ok(Fhir(r4::organization(&found)))
}

/// By `name` (a fragment of the name or code, any case) or by `identifier`
/// (`ods-organization-code|{ODS}`): one or the other, since together they
/// would leave unclear whether both must match.
async fn search_organisations(
    State(state): State<AppState>,
    uri: Uri,
    query: RawQuery,
) -> Result<Fhir, ApiError> {
    let params = Params::new(query)?;
    let directory = directory(&state);
    let found = match (params.single("name")?, params.single("identifier")?) {
        (Some(_), Some(_)) => {
            return Err(ApiError::InvalidValue(
                "search by name or by identifier, not both".into(),
            ));
        }
        (None, None) => {
            return Err(ApiError::MissingValue(
                "an Organization search takes name or identifier".into(),
            ));
        }
        (Some(name), None) if name.trim().is_empty() => {
            return Err(ApiError::InvalidValue("name must not be blank".into()));
        }
        (Some(name), None) => directory.ods_search(name),
        (None, Some(identifier)) => {
            let ods = ods_token("identifier", identifier)?;
            directory.ods_organisation(&ods).into_iter().collect()
        }
    };
    let base = format!("{}{ODS_MOUNT}", state.public_url);
    let resources = found.iter().map(r4::organization).collect();
    Ok(Fhir(r4::searchset(&base, &uri, resources)))
}
