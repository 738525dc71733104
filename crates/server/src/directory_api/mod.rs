//! The national directory look-ups, shaped like the NHS FHIR R4 APIs and
//! answered from the region this server holds (spec §8): PDS, SDS and the
//! organisation directory, each under its own mount so that a consumer can
//! be pointed at these or at the real services by base URL alone.

mod ods;
mod outcome;
mod pds;
mod query;
mod r4;
mod sds;

use crate::state::AppState;
use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use gpc_directory::EmbeddedDirectory;
use gpc_directory::r4::{CORRELATION_ID, FHIR_JSON, ODS_MOUNT, PDS_MOUNT, REQUEST_ID, SDS_MOUNT};
use outcome::ApiError;
use serde_json::Value;

/// PDS, SDS and the organisation directory, each at its national-style mount.
pub fn routes() -> Router<AppState> {
    Router::new()
        .nest(PDS_MOUNT, api("pds", pds::routes()))
        .nest(SDS_MOUNT, api("sds", sds::routes()))
        .nest(ODS_MOUNT, api("ods", ods::routes()))
}

/// What every answer of one API shares: FHIR errors for unknown paths and
/// verbs, and the headers of [`finish`].
fn api(name: &'static str, routes: Router<AppState>) -> Router<AppState> {
    routes
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .fallback(|| async { ApiError::NotFound("no such resource or operation".into()) })
        .layer(middleware::from_fn(move |request: Request, next: Next| {
            finish(name, request, next)
        }))
}

/// The answers are about people, so nothing may cache them; the request and
/// correlation ids come back as the national APIs return them, so a caller
/// can tie an answer to its request.
async fn finish(api: &'static str, request: Request, next: Next) -> Response {
    let echoed: Vec<_> = [REQUEST_ID, CORRELATION_ID]
        .into_iter()
        .filter_map(|name| Some((name, request.headers().get(name)?.clone())))
        .collect();
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
    for (name, value) in echoed {
        headers.insert(name, value);
    }
    // Only a well-formed request id is logged: the header is free text.
    let request_id = response
        .headers()
        .get(REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| pds::is_request_id(v))
        .unwrap_or("-");
    tracing::debug!(
        api,
        status = response.status().as_u16(),
        request_id,
        "directory request"
    );
    response
}

/// The directory every handler answers from: the server's own region, with
/// the same provider endpoints the SSP's registry holds.
fn directory(state: &AppState) -> &EmbeddedDirectory {
    &state.directory
}

/// A 200 FHIR resource.
struct Fhir(Value);

impl IntoResponse for Fhir {
    fn into_response(self) -> Response {
        json_response(StatusCode::OK, &self.0)
    }
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(FHIR_JSON));
    (status, headers, body.to_string()).into_response()
}
