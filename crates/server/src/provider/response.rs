//! Rendering FHIR responses in the negotiated format, with the headers every
//! response carries (spec §3.5), and errors as OperationOutcomes (§3.6).

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::Response;
use gpc_domain::ProviderError;
use gpc_fhir::Format;
use serde_json::Value;

/// A FHIR answer before rendering.
pub struct FhirReply {
    pub status: StatusCode,
    pub body: Option<Value>,
    pub headers: HeaderMap,
    /// The body already rendered in the response's format; it replaces `body`.
    rendered: Option<Bytes>,
}

impl FhirReply {
    pub fn ok(body: Value) -> Self {
        Self {
            status: StatusCode::OK,
            body: Some(body),
            headers: HeaderMap::new(),
            rendered: None,
        }
    }

    /// A 200 whose body was rendered ahead of time, in the format the
    /// response will be rendered in.
    pub fn rendered(bytes: Bytes) -> Self {
        Self {
            status: StatusCode::OK,
            body: None,
            headers: HeaderMap::new(),
            rendered: Some(bytes),
        }
    }

    /// The same answer without a body (304, `Prefer: return=minimal`).
    pub fn without_body(mut self) -> Self {
        self.body = None;
        self.rendered = None;
        self
    }

    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    pub fn with_header(mut self, name: HeaderName, value: &str) -> Self {
        if let Ok(v) = HeaderValue::from_str(value) {
            self.headers.insert(name, v);
        }
        self
    }

    /// `ETag: W/"{version}"` for a versioned resource.
    pub fn with_etag(self, version: &str) -> Self {
        self.with_header(header::ETAG, &format!("W/\"{version}\""))
    }

    pub fn render(self, format: Format) -> Response {
        let bytes = match self.rendered {
            Some(bytes) => Some(bytes),
            None => self
                .body
                .map(|b| Bytes::from(gpc_fhir::to_body(&b, format))),
        };
        let mut response = Response::new(bytes.map(Body::from).unwrap_or_else(Body::empty));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.extend(self.headers);
        no_cache_headers(headers, format);
        response
    }
}

/// `Prefer: return=minimal`: the client wants the headers of a create, not
/// the stored resource.
pub fn prefers_minimal(headers: &HeaderMap) -> bool {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim().eq_ignore_ascii_case("return=minimal"))
}

/// The caching and content-type headers every provider response carries.
pub fn no_cache_headers(headers: &mut HeaderMap, format: Format) {
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store, no-cache"),
    );
    headers.insert(header::EXPIRES, HeaderValue::from_static("0"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.mime()),
    );
}

/// The OperationOutcome for a failure.
pub fn outcome(error: &ProviderError) -> Value {
    let row = error.catalogue();
    gpc_fhir::operation_outcome(row.issue_type, row.code, row.display, error.diagnostics())
}

/// Renders a failure. A 415 is always JSON: the client's format is the problem.
pub fn error_response(error: &ProviderError, format: Format) -> Response {
    let row = error.catalogue();
    let format = if row.status == 415 {
        Format::Json
    } else {
        format
    };
    let mut reply = FhirReply::ok(outcome(error))
        .with_status(StatusCode::from_u16(row.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR));
    if row.status == 503 {
        reply = reply.with_header(header::RETRY_AFTER, "1");
    }
    reply.render(format)
}
