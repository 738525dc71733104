//! SDS: where (`Endpoint`) and under which ASID (`Device`) an organisation
//! receives an interaction. An empty Bundle means no electronic route.

use super::outcome::ApiError;
use super::query::{Params, RawQuery, ods_token, token};
use super::{Fhir, directory, r4};
use crate::state::AppState;
use axum::Router;
use axum::extract::State;
use axum::http::Uri;
use axum::routing::get;
use gpc_directory::r4::{SDS_MOUNT, SERVICE_INTERACTION_ID};
use gpc_domain::OdsCode;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/Endpoint", get(search_endpoints))
        .route("/Device", get(search_devices))
}

/// Both searches take the organisation and the interaction, both required.
struct Search {
    ods: OdsCode,
    interaction: String,
}

impl Search {
    fn parse(query: RawQuery) -> Result<Self, ApiError> {
        let params = Params::new(query)?;
        let ods = ods_token("organization", params.required("organization")?)?;
        let interaction = token(
            "identifier",
            params.required("identifier")?,
            SERVICE_INTERACTION_ID,
            |system| system == SERVICE_INTERACTION_ID,
        )?;
        Ok(Self {
            ods,
            interaction: interaction.to_owned(),
        })
    }
}

async fn search_endpoints(
    State(state): State<AppState>,
    uri: Uri,
    query: RawQuery,
) -> Result<Fhir, ApiError> {
    let search = Search::parse(query)?;
    let base = format!("{}{SDS_MOUNT}", state.public_url);
    let found = directory(&state)
        .sds_endpoint(&search.ods, &search.interaction)
        .map(|e| r4::endpoint(&e, &search.interaction));
    Ok(Fhir(r4::searchset(
        &base,
        &uri,
        found.into_iter().collect(),
    )))
}

async fn search_devices(
    State(state): State<AppState>,
    uri: Uri,
    query: RawQuery,
) -> Result<Fhir, ApiError> {
    let search = Search::parse(query)?;
    let base = format!("{}{SDS_MOUNT}", state.public_url);
    let found = directory(&state)
        .sds_asid(&search.ods, &search.interaction)
        .map(|asid| r4::device(&search.ods, &asid, &search.interaction));
    Ok(Fhir(r4::searchset(
        &base,
        &uri,
        found.into_iter().collect(),
    )))
}
