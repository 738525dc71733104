//! FHIR DSTU2 wire codecs for the GP Connect Task Management provider.
//!
//! FHIR JSON (`serde_json::Value`) is the in-memory form everywhere. One
//! table of DSTU2 element definitions ([`schema`]) drives structural
//! validation, XML → JSON and JSON → XML. No I/O happens here.

// The unit tests' crate sees every dev-dependency, which the integration tests use.
#![cfg_attr(test, allow(unused_crate_dependencies))]
#![forbid(unsafe_code)]

mod error;
pub mod narrative;
mod outcome;
mod primitive;
mod schema;
mod validate;
mod xml_read;
mod xml_write;

use serde_json::Value;

pub use error::{ParseError, StructureError};
pub use outcome::{ERROR_OR_WARNING_CODE_SYSTEM, OPERATION_OUTCOME_PROFILE, operation_outcome};
pub use validate::validate_resource;

/// FHIR XML ↔ FHIR JSON.
pub mod xml {
    pub use crate::xml_read::from_xml;
    pub use crate::xml_write::to_xml;
}

pub const JSON_MIME: &str = "application/json+fhir";
pub const XML_MIME: &str = "application/xml+fhir";

/// Nesting allowed in a request body (JSON arrays/objects, XML elements).
pub const MAX_BODY_DEPTH: usize = 64;

/// A FHIR wire format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    Json,
    Xml,
}

impl Format {
    /// The response Content-Type.
    pub fn mime(self) -> &'static str {
        match self {
            Format::Json => "application/json+fhir;charset=utf-8",
            Format::Xml => "application/xml+fhir;charset=utf-8",
        }
    }

    /// Reads a FHIR media type, with an optional `charset=utf-8` parameter
    /// (case and spaces ignored). Plain `application/json` and the like are
    /// not FHIR media types in DSTU2 and give `None`.
    pub fn from_mime(value: &str) -> Option<Format> {
        let mut parts = value.split(';');
        let essence = parts.next()?.trim();
        let format = if essence.eq_ignore_ascii_case(JSON_MIME) {
            Format::Json
        } else if essence.eq_ignore_ascii_case(XML_MIME) {
            Format::Xml
        } else {
            return None;
        };
        for param in parts {
            let (key, val) = param.split_once('=')?;
            let val = val.trim().trim_matches('"');
            if !key.trim().eq_ignore_ascii_case("charset") || !val.eq_ignore_ascii_case("utf-8") {
                return None;
            }
        }
        Some(format)
    }
}

/// Parses a request body into FHIR JSON.
///
/// Refused: an empty body, invalid UTF-8, malformed JSON or XML, any XML
/// DOCTYPE or entity other than the predefined five and character
/// references, a root that is not a FHIR resource (JSON: not an object with a
/// string `resourceType`; XML: not an element in the FHIR namespace), and
/// nesting deeper than [`MAX_BODY_DEPTH`].
pub fn parse_body(bytes: &[u8], format: Format) -> Result<Value, ParseError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ParseError::new("the body is empty"));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        ParseError::new(format!(
            "the body is not valid UTF-8 (at byte {})",
            e.valid_up_to()
        ))
    })?;
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    match format {
        Format::Json => parse_json(text),
        Format::Xml => xml::from_xml(text),
    }
}

fn parse_json(text: &str) -> Result<Value, ParseError> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| ParseError::new(format!("the body is not valid JSON: {e}")))?;
    if json_depth_exceeds(&value, MAX_BODY_DEPTH) {
        return Err(ParseError::new(format!(
            "the body nests more than {MAX_BODY_DEPTH} levels deep"
        )));
    }
    match value.get("resourceType") {
        Some(Value::String(_)) => Ok(value),
        _ if !value.is_object() => Err(ParseError::new(
            "the body is not a FHIR resource: expected a JSON object",
        )),
        _ => Err(ParseError::new(
            "the body is not a FHIR resource: it has no resourceType string",
        )),
    }
}

/// Iterative, so a deep value cannot exhaust the stack here.
fn json_depth_exceeds(value: &Value, max: usize) -> bool {
    let mut stack = vec![(value, 1usize)];
    while let Some((value, depth)) = stack.pop() {
        let children: &mut dyn Iterator<Item = &Value> = match value {
            Value::Array(items) => &mut items.iter(),
            Value::Object(map) => &mut map.values(),
            _ => continue,
        };
        if depth > max {
            return true;
        }
        stack.extend(children.map(|child| (child, depth + 1)));
    }
    false
}

/// Serialises a resource for a response body.
pub fn to_body(resource: &Value, format: Format) -> Vec<u8> {
    match format {
        // Serialising a `Value` cannot fail: its keys are strings.
        Format::Json => serde_json::to_vec(resource).unwrap_or_default(),
        Format::Xml => xml::to_xml(resource).into_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mime_types() {
        assert_eq!(Format::Json.mime(), "application/json+fhir;charset=utf-8");
        assert_eq!(Format::Xml.mime(), "application/xml+fhir;charset=utf-8");
        assert_eq!(
            Format::from_mime("application/json+fhir"),
            Some(Format::Json)
        );
        assert_eq!(
            Format::from_mime("Application/XML+FHIR; charset=UTF-8"),
            Some(Format::Xml)
        );
        assert_eq!(Format::from_mime("application/json"), None);
        assert_eq!(Format::from_mime("text/xml"), None);
        assert_eq!(
            Format::from_mime("application/json+fhir;charset=latin1"),
            None
        );
    }

    #[test]
    fn json_depth() {
        let shallow: Value =
            serde_json::from_str(&format!("{}1{}", "[".repeat(64), "]".repeat(64))).unwrap();
        assert!(!json_depth_exceeds(&shallow, 64));
        let deep: Value =
            serde_json::from_str(&format!("{}1{}", "[".repeat(65), "]".repeat(65))).unwrap();
        assert!(json_depth_exceeds(&deep, 64));
    }
}
