//! `gpc_http_requests_total` and `gpc_http_request_duration_seconds`, by
//! route template: axum's matched route, or, for the fallback (the
//! provider, which routes by itself), the template of the provider path.

use super::labels;
use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use std::time::Instant;

/// Counts and times every request of the router it wraps (time to the
/// response head: a streamed body is not waited for). A layer of the
/// router, so that the matched route is known.
pub(crate) async fn track(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = labels::method(request.method());
    let route = match request.extensions().get::<MatchedPath>() {
        Some(matched) => labels::matched_route(matched.as_str()).to_owned(),
        None => labels::provider_route(request.uri().path()).to_owned(),
    };
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::histogram!(
        "gpc_http_request_duration_seconds",
        "route" => route.clone(),
        "method" => method
    )
    .record(started.elapsed().as_secs_f64());
    metrics::counter!(
        "gpc_http_requests_total",
        "route" => route,
        "method" => method,
        "status" => status
    )
    .increment(1);
    response
}
