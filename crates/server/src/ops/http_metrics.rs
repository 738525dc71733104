//! `gpc_http_requests_total` and `gpc_http_request_duration_seconds`, by
//! route template: axum's matched route, or the one a fallback handler
//! (the provider, which routes by itself) names in its response.

use super::labels;
use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use std::time::Instant;

/// The route template a handler outside axum's routing answered for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RouteLabel(pub &'static str);

/// Counts and times every request of the router it wraps (time to the
/// response head: a streamed body is not waited for).
pub(crate) async fn track(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = labels::method(request.method());
    let matched = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| labels::matched_route(m.as_str()).to_owned());
    let response = next.run(request).await;
    let route = match (response.extensions().get::<RouteLabel>(), matched) {
        (Some(RouteLabel(route)), _) => (*route).to_owned(),
        (None, Some(route)) => route,
        (None, None) => labels::UNMATCHED.to_owned(),
    };
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
