//! Every way a provider request can fail, each knowing its HTTP status, GP
//! Connect error code, display and FHIR issue type (spec §3.6) — one table.

/// A provider failure. The string is the plain-words `diagnostics`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    #[error("{0}")]
    BadRequest(String),
    /// An `Order` carrying an `id` (spec §4.2 step 2): 422 with the BAD_REQUEST code.
    #[error("{0}")]
    UnprocessableBadRequest(String),
    #[error("{0}")]
    InvalidIdentifierSystem(String),
    #[error("{0}")]
    InvalidNhsNumber(String),
    #[error("{0}")]
    PatientNotFound(String),
    #[error("{0}")]
    OrganisationNotFound(String),
    #[error("{0}")]
    PractitionerNotFound(String),
    /// Unknown path or resource.
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    InvalidResource(String),
    #[error("{0}")]
    InvalidParameter(String),
    #[error("{0}")]
    ReferenceNotFound(String),
    #[error("{0}")]
    InvalidPatientDemographics(String),
    #[error("{0}")]
    NoRelationship(String),
    /// The resource is valid but the state of what it names forbids it: a
    /// cancellation of a task that is already final (task-lifecycle.md §2
    /// step 5). 409 with the INVALID_RESOURCE code.
    #[error("{0}")]
    Conflict(String),
    /// Storage busy or unavailable: the caller may retry (503 + Retry-After).
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
}

/// The row of the error catalogue a failure maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Catalogue {
    pub status: u16,
    pub code: &'static str,
    pub display: &'static str,
    pub issue_type: &'static str,
}

impl ProviderError {
    pub fn catalogue(&self) -> Catalogue {
        let (status, code, display, issue_type) = match self {
            Self::BadRequest(_) => (
                400,
                "BAD_REQUEST",
                "Submitted request is malformed / invalid.",
                "invalid",
            ),
            Self::UnprocessableBadRequest(_) => (
                422,
                "BAD_REQUEST",
                "Submitted request is malformed / invalid.",
                "invalid",
            ),
            Self::InvalidIdentifierSystem(_) => (
                400,
                "INVALID_IDENTIFIER_SYSTEM",
                "Invalid identifier system",
                "invalid",
            ),
            Self::InvalidNhsNumber(_) => (400, "INVALID_NHS_NUMBER", "NHS number invalid", "value"),
            Self::PatientNotFound(_) => (
                404,
                "PATIENT_NOT_FOUND",
                "Patient record not found",
                "not-found",
            ),
            Self::OrganisationNotFound(_) => (
                404,
                "ORGANISATION_NOT_FOUND",
                "Organisation record not found",
                "not-found",
            ),
            Self::PractitionerNotFound(_) => (
                404,
                "PRACTITIONER_NOT_FOUND",
                "Practitioner record not found",
                "not-found",
            ),
            Self::NotFound(_) => (
                404,
                "REFERENCE_NOT_FOUND",
                "Resource not found",
                "not-found",
            ),
            Self::MethodNotAllowed(_) => (
                405,
                "BAD_REQUEST",
                "Submitted request is malformed / invalid.",
                "not-supported",
            ),
            Self::UnsupportedMediaType(_) => (
                415,
                "BAD_REQUEST",
                "Unsupported media type",
                "not-supported",
            ),
            Self::PayloadTooLarge(_) => (
                413,
                "BAD_REQUEST",
                "Submitted request is malformed / invalid.",
                "too-long",
            ),
            Self::InvalidResource(_) => (
                422,
                "INVALID_RESOURCE",
                "Submitted resource is not valid.",
                "invalid",
            ),
            Self::InvalidParameter(_) => (
                422,
                "INVALID_PARAMETER",
                "Submitted parameter is not valid.",
                "invalid",
            ),
            Self::ReferenceNotFound(_) => (
                422,
                "REFERENCE_NOT_FOUND",
                "Referenced resource not found.",
                "invalid",
            ),
            Self::InvalidPatientDemographics(_) => (
                422,
                "INVALID_PATIENT_DEMOGRAPHICS",
                "Invalid patient demographics",
                "business-rule",
            ),
            Self::NoRelationship(_) => (
                422,
                "NO_RELATIONSHIP",
                "No legitimate relationship exists with this patient",
                "business-rule",
            ),
            Self::Conflict(_) => (
                409,
                "INVALID_RESOURCE",
                "Submitted resource is not valid.",
                "conflict",
            ),
            Self::Unavailable(_) => (
                503,
                "INTERNAL_SERVER_ERROR",
                "Unexpected internal server error.",
                "transient",
            ),
            Self::Internal(_) => (
                500,
                "INTERNAL_SERVER_ERROR",
                "Unexpected internal server error.",
                "exception",
            ),
        };
        Catalogue {
            status,
            code,
            display,
            issue_type,
        }
    }

    pub fn diagnostics(&self) -> &str {
        match self {
            Self::BadRequest(d)
            | Self::UnprocessableBadRequest(d)
            | Self::InvalidIdentifierSystem(d)
            | Self::InvalidNhsNumber(d)
            | Self::PatientNotFound(d)
            | Self::OrganisationNotFound(d)
            | Self::PractitionerNotFound(d)
            | Self::NotFound(d)
            | Self::MethodNotAllowed(d)
            | Self::UnsupportedMediaType(d)
            | Self::PayloadTooLarge(d)
            | Self::InvalidResource(d)
            | Self::InvalidParameter(d)
            | Self::ReferenceNotFound(d)
            | Self::InvalidPatientDemographics(d)
            | Self::NoRelationship(d)
            | Self::Conflict(d)
            | Self::Unavailable(d)
            | Self::Internal(d) => d,
        }
    }
}
