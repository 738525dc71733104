//! The SSP's own answers (spec §7): each refusal knows its status, error
//! code and FHIR issue type, and renders as a JSON OperationOutcome whose
//! diagnostics start with the code.

use crate::provider::response::no_cache_headers;
use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use gpc_fhir::Format;

/// The string is the plain-words reason, after the code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    MissingOrInvalidHeader(String),
    SenderAsid(String),
    ReceiverAsid(String),
    Organisation(String),
    EndpointVaries(String),
    FlowOfTraffic(String),
    MethodNotAllowed(String),
    Communication(String),
    Timeout(String),
}

/// The verbs the SSP forwards.
pub const ALLOWED_METHODS: &str = "GET, POST, PUT, DELETE";

impl Refusal {
    /// Status, code, display, FHIR issue type.
    fn row(&self) -> (StatusCode, &'static str, &'static str, &'static str) {
        match self {
            Self::MissingOrInvalidHeader(_) => (
                StatusCode::BAD_REQUEST,
                "MISSING_OR_INVALID_HEADER",
                "Missing or invalid Spine header",
                "invalid",
            ),
            Self::SenderAsid(_) => (
                StatusCode::FORBIDDEN,
                "ASID_CHECK_FAILED_MESSAGESENDER",
                "Sending system check failed",
                "forbidden",
            ),
            Self::ReceiverAsid(_) => (
                StatusCode::FORBIDDEN,
                "ASID_CHECK_FAILED_MESSAGERECEIVER",
                "Receiving system check failed",
                "forbidden",
            ),
            Self::Organisation(_) => (
                StatusCode::FORBIDDEN,
                "ORGANISATION_CHECK_FAILED",
                "Requesting organisation check failed",
                "forbidden",
            ),
            Self::EndpointVaries(_) => (
                StatusCode::BAD_REQUEST,
                "ENDPOINT_VARIES_FROM_TARGETURL",
                "Target URL is not under the registered endpoint",
                "invalid",
            ),
            Self::FlowOfTraffic(_) => (
                StatusCode::FORBIDDEN,
                "FOT_CHECK_FAILED",
                "Flow of traffic check failed",
                "forbidden",
            ),
            Self::MethodNotAllowed(_) => (
                StatusCode::METHOD_NOT_ALLOWED,
                "METHOD_NOT_ALLOWED",
                "Method not allowed",
                "not-supported",
            ),
            Self::Communication(_) => (
                StatusCode::BAD_GATEWAY,
                "ERROR_COMMUNICATING_TO_ENDPOINT",
                "Error communicating with the endpoint",
                "transient",
            ),
            Self::Timeout(_) => (
                StatusCode::GATEWAY_TIMEOUT,
                "ENDPOINT_TIMEOUT",
                "The endpoint did not answer in time",
                "transient",
            ),
        }
    }

    pub fn code(&self) -> &'static str {
        self.row().1
    }

    pub fn status(&self) -> StatusCode {
        self.row().0
    }

    fn reason(&self) -> &str {
        match self {
            Self::MissingOrInvalidHeader(r)
            | Self::SenderAsid(r)
            | Self::ReceiverAsid(r)
            | Self::Organisation(r)
            | Self::EndpointVaries(r)
            | Self::FlowOfTraffic(r)
            | Self::MethodNotAllowed(r)
            | Self::Communication(r)
            | Self::Timeout(r) => r,
        }
    }

    pub fn diagnostics(&self) -> String {
        format!("{}: {}", self.code(), self.reason())
    }

    pub fn render(&self) -> Response {
        let (status, code, display, issue) = self.row();
        let body = gpc_fhir::operation_outcome(issue, code, display, &self.diagnostics());
        let mut response = Response::new(Body::from(gpc_fhir::to_body(&body, Format::Json)));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        no_cache_headers(headers, Format::Json);
        if status == StatusCode::METHOD_NOT_ALLOWED {
            headers.insert(header::ALLOW, HeaderValue::from_static(ALLOWED_METHODS));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagnostics_start_with_the_code() {
        let r = Refusal::FlowOfTraffic("no agreement".into());
        assert_eq!(r.diagnostics(), "FOT_CHECK_FAILED: no agreement");
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
    }
}
