//! Every failure of the directory APIs, mapped in one table to the national
//! APIs' status, Spine error code and FHIR issue type.

use super::json_response;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use gpc_directory::r4::ERROR_CODES;
use serde_json::json;

/// The diagnostics say what was wrong in plain words and never repeat an
/// NHS number or a name: clients log them.
#[derive(Debug)]
pub enum ApiError {
    /// A required header or parameter is absent.
    MissingValue(String),
    /// A header or parameter is present but malformed.
    InvalidValue(String),
    /// The id in the path cannot be an id of this resource type.
    InvalidResourceId(String),
    NotFound(String),
    MethodNotAllowed,
    /// The store behind the directory could not answer: worth retrying.
    Unavailable(String),
}

struct Row {
    status: StatusCode,
    issue: &'static str,
    code: &'static str,
    display: &'static str,
}

impl ApiError {
    fn row(&self) -> Row {
        let (status, issue, code, display) = match self {
            Self::MissingValue(_) => (
                StatusCode::BAD_REQUEST,
                "required",
                "MISSING_VALUE",
                "Required value is missing",
            ),
            Self::InvalidValue(_) => (
                StatusCode::BAD_REQUEST,
                "value",
                "INVALID_VALUE",
                "Provided value is invalid",
            ),
            Self::InvalidResourceId(_) => (
                StatusCode::BAD_REQUEST,
                "value",
                "INVALID_RESOURCE_ID",
                "Resource Id is invalid",
            ),
            Self::NotFound(_) => (
                StatusCode::NOT_FOUND,
                "not-found",
                "RESOURCE_NOT_FOUND",
                "Resource not found",
            ),
            Self::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "not-supported",
                "METHOD_NOT_ALLOWED",
                "Method not allowed",
            ),
            Self::Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "transient",
                "SERVICE_UNAVAILABLE",
                "Service unavailable",
            ),
        };
        Row {
            status,
            issue,
            code,
            display,
        }
    }

    fn diagnostics(&self) -> &str {
        match self {
            Self::MissingValue(d)
            | Self::InvalidValue(d)
            | Self::InvalidResourceId(d)
            | Self::NotFound(d)
            | Self::Unavailable(d) => d,
            Self::MethodNotAllowed => "only GET is supported here",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let row = self.row();
        let outcome = json!({
            "resourceType": "OperationOutcome",
            "issue": [{
                "severity": "error",
                "code": row.issue,
                "details": {"coding": [{
                    "system": ERROR_CODES,
                    "version": "1",
                    "code": row.code,
                    "display": row.display,
                }]},
                "diagnostics": self.diagnostics(),
            }]
        });
        json_response(row.status, &outcome)
    }
}
