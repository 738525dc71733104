/// A request body that could not be read as a FHIR resource (an HTTP 400 matter).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ParseError {
    pub message: String,
}

impl ParseError {
    pub fn new(message: impl Into<String>) -> Self {
        ParseError {
            message: message.into(),
        }
    }
}

/// A resource that breaks a DSTU2 structural rule (an HTTP 422 matter).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct StructureError {
    /// Where, e.g. `Order.reasonCodeableConcept.coding[0].system`.
    pub path: String,
    pub message: String,
}
