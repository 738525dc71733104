//! Search parameters of the directory APIs. `|` may arrive percent-encoded;
//! the query decoder has already turned `%7C` back into it.

use super::outcome::ApiError;
use axum::extract::Query;
use axum::extract::rejection::QueryRejection;
use gpc_domain::OdsCode;
use gpc_domain::systems::IdSystem;

pub type RawQuery = Result<Query<Vec<(String, String)>>, QueryRejection>;

/// Decoded parameters. Unknown names are ignored, as FHIR servers do by
/// default; a required one that is absent is what gets reported.
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn new(query: RawQuery) -> Result<Self, ApiError> {
        query
            .map(|Query(pairs)| Self(pairs))
            .map_err(|_| ApiError::InvalidValue("the query string cannot be decoded".into()))
    }

    /// The value of `name`; `None` when absent. Given twice is ambiguous, so refused.
    pub fn single(&self, name: &str) -> Result<Option<&str>, ApiError> {
        let mut values = self.0.iter().filter(|(k, _)| k == name).map(|(_, v)| v);
        match (values.next(), values.next()) {
            (None, _) => Ok(None),
            (Some(v), None) => Ok(Some(v.as_str())),
            (Some(_), Some(_)) => Err(ApiError::InvalidValue(format!(
                "the parameter {name} is given more than once"
            ))),
        }
    }

    pub fn required(&self, name: &str) -> Result<&str, ApiError> {
        self.single(name)?
            .ok_or_else(|| ApiError::MissingValue(format!("the parameter {name} is required")))
    }
}

/// The code of a `system|code` token whose system is `expected` (as judged
/// by `is_expected`).
pub fn token<'a>(
    name: &str,
    raw: &'a str,
    expected: &str,
    is_expected: impl Fn(&str) -> bool,
) -> Result<&'a str, ApiError> {
    let invalid = || ApiError::InvalidValue(format!("{name} must be {expected}|{{value}}"));
    let (system, code) = raw.split_once('|').ok_or_else(invalid)?;
    if !is_expected(system) || code.trim().is_empty() {
        return Err(invalid());
    }
    Ok(code.trim())
}

/// An organisation identifier token (either spelling of the ODS system).
/// ODS codes are upper case by definition, so a lower-case one is read as meant.
pub fn ods_token(name: &str, raw: &str) -> Result<OdsCode, ApiError> {
    let code = token(
        name,
        raw,
        gpc_directory::r4::ODS_ORGANIZATION_CODE,
        |system| IdSystem::parse(system) == Some(IdSystem::OdsOrganizationCode),
    )?;
    ods_code(code).ok_or_else(|| {
        ApiError::InvalidValue(format!(
            "{name} does not hold an ODS code (3 to 10 letters and digits)"
        ))
    })
}

pub fn ods_code(raw: &str) -> Option<OdsCode> {
    OdsCode::parse(&raw.to_ascii_uppercase())
}
