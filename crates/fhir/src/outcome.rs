//! The GP Connect OperationOutcome (spec §3.6).

use serde_json::{Value, json};

pub const OPERATION_OUTCOME_PROFILE: &str =
    "http://fhir.nhs.net/StructureDefinition/gpconnect-operationoutcome-1";
pub const ERROR_OR_WARNING_CODE_SYSTEM: &str =
    "http://fhir.nhs.net/ValueSet/gpconnect-error-or-warning-code-1";

/// One error issue with exactly one GP Connect coding. An empty `display` or
/// `diagnostics` is left out rather than sent as an (invalid) empty string.
pub fn operation_outcome(issue_code: &str, code: &str, display: &str, diagnostics: &str) -> Value {
    let mut coding = json!({ "system": ERROR_OR_WARNING_CODE_SYSTEM, "code": code });
    if !display.is_empty() {
        coding["display"] = Value::String(display.to_owned());
    }
    let mut issue = json!({
        "severity": "error",
        "code": issue_code,
        "details": { "coding": [coding] },
    });
    if !diagnostics.is_empty() {
        issue["diagnostics"] = Value::String(diagnostics.to_owned());
    }
    json!({
        "resourceType": "OperationOutcome",
        "meta": { "profile": [OPERATION_OUTCOME_PROFILE] },
        "issue": [issue],
    })
}
