//! What one client may take of the server: connections, time and header
//! space. Each limit ends in a clear answer (an OperationOutcome where the
//! request got far enough to have one) and never in a 500 or a hung socket.
//!
//! - **Connections**: at most `max_connections` at once. Over the cap, new
//!   connections wait in the listen backlog until one closes, rather than
//!   being accepted and starved: the slow-header and request timeouts below
//!   make sure that a slot always comes free.
//! - **Slow headers**: a connection that has not sent a complete request
//!   head within `header_read_timeout` (the first request or the next one on
//!   a kept-alive connection) is closed. The TLS handshake has its own bound.
//! - **Stuck requests**: a request whose handler has not produced its
//!   response head within `request_timeout` (a slow upload, a stuck store)
//!   gets a 503 OperationOutcome with `Retry-After`.
//! - **Header size**: more than `max_headers` fields, one field larger than
//!   `max_header_bytes_each`, or more than `max_header_bytes` in all is a 400
//!   OperationOutcome. A head too large even for the HTTP layer's read buffer
//!   (about 400 KiB) or with more than [`HTTP_MAX_HEADERS`] fields is refused
//!   by hyper itself, before any handler runs, with a bare 431.
//! - **Panics**: a handler that panics (a bug, never bad input) answers a 500
//!   OperationOutcome instead of dropping the connection; the panic's message
//!   is not logged, as it could hold request data.

use crate::provider::response::error_response;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use gpc_domain::ProviderError;
use gpc_fhir::Format;
use std::time::Duration;

/// Header fields hyper parses before answering 431 on its own; above
/// [`Limits::max_headers`] so that the common case gets an OperationOutcome.
pub const HTTP_MAX_HEADERS: usize = 256;

/// The limits of one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub request_timeout: Duration,
    pub max_headers: usize,
    pub max_header_bytes: usize,
    /// One field, name and value. A JWT may be up to 16 KiB.
    pub max_header_bytes_each: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            header_read_timeout: Duration::from_secs(30),
            // Above the SSP's default provider timeout (10 s), so that a slow
            // provider is the SSP's 504, not this 503.
            request_timeout: Duration::from_secs(30),
            max_headers: 100,
            max_header_bytes: 64 * 1024,
            max_header_bytes_each: 32 * 1024,
        }
    }
}

impl Limits {
    /// The defaults, overridden by `GPC_MAX_CONNECTIONS`,
    /// `GPC_HEADER_TIMEOUT_MS` and `GPC_HANDLER_TIMEOUT_MS`.
    pub fn from_env() -> Result<Self, String> {
        let mut limits = Self::default();
        if let Some(n) = env_number("GPC_MAX_CONNECTIONS")? {
            limits.max_connections = usize::try_from(n).unwrap_or(usize::MAX);
        }
        if let Some(ms) = env_number("GPC_HEADER_TIMEOUT_MS")? {
            limits.header_read_timeout = Duration::from_millis(ms);
        }
        if let Some(ms) = env_number("GPC_HANDLER_TIMEOUT_MS")? {
            limits.request_timeout = Duration::from_millis(ms);
        }
        Ok(limits)
    }
}

fn env_number(name: &str) -> Result<Option<u64>, String> {
    match std::env::var(name) {
        Err(_) => Ok(None),
        Ok(text) => match text.trim().parse::<u64>() {
            Ok(n) if n > 0 => Ok(Some(n)),
            _ => Err(format!(
                "{name} must be a positive whole number, not '{text}'"
            )),
        },
    }
}

/// `app` behind the header limits, the request timeout and the panic guard.
pub fn protect(app: Router, limits: &Limits) -> Router {
    app.layer(tower_http::catch_panic::CatchPanicLayer::custom(
        |_panic: Box<dyn std::any::Any + Send>| {
            tracing::error!("a request handler panicked");
            error_response(
                &ProviderError::Internal("the request could not be completed".into()),
                Format::Json,
            )
        },
    ))
    .layer(axum::middleware::from_fn_with_state(limits.clone(), guard))
}

/// The middleware every route runs behind: header limits, then the handler
/// under the request timeout.
pub async fn guard(State(limits): State<Limits>, request: Request, next: Next) -> Response {
    if let Err(error) = check_headers(request.headers(), &limits) {
        return error_response(&error, Format::Json);
    }
    match tokio::time::timeout(limits.request_timeout, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(
                timeout_ms = u64::try_from(limits.request_timeout.as_millis()).unwrap_or(u64::MAX),
                "request timed out"
            );
            error_response(
                &ProviderError::Unavailable(format!(
                    "the request was not answered within {} ms; try again shortly",
                    limits.request_timeout.as_millis()
                )),
                Format::Json,
            )
        }
    }
}

fn check_headers(headers: &HeaderMap, limits: &Limits) -> Result<(), ProviderError> {
    if headers.len() > limits.max_headers {
        return Err(ProviderError::BadRequest(format!(
            "the request has more than {} header fields",
            limits.max_headers
        )));
    }
    let mut total = 0usize;
    for (name, value) in headers {
        // ": " and CRLF, as on the wire.
        let size = name.as_str().len() + value.len() + 4;
        if size > limits.max_header_bytes_each {
            return Err(ProviderError::BadRequest(format!(
                "the header field {} is larger than {} bytes",
                name.as_str().chars().take(40).collect::<String>(),
                limits.max_header_bytes_each
            )));
        }
        total += size;
    }
    if total > limits.max_header_bytes {
        return Err(ProviderError::BadRequest(format!(
            "the request's header fields take more than {} bytes",
            limits.max_header_bytes
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn header_limits() {
        let limits = Limits::default();
        let mut h = HeaderMap::new();
        h.insert("a", HeaderValue::from_static("b"));
        assert!(check_headers(&h, &limits).is_ok());
        h.insert("big", HeaderValue::from_str(&"x".repeat(40_000)).unwrap());
        assert_eq!(
            check_headers(&h, &limits).unwrap_err().catalogue().status,
            400
        );
        let mut h = HeaderMap::new();
        for i in 0..3 {
            let name = axum::http::HeaderName::from_bytes(format!("h{i}").as_bytes()).unwrap();
            h.insert(name, HeaderValue::from_str(&"x".repeat(30_000)).unwrap());
        }
        assert!(check_headers(&h, &limits).is_err(), "90 KB in all");
    }
}
