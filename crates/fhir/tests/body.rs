//! Request and response bodies.

// A test crate sees every dev-dependency of its package, and uses only some.
#![allow(unused_crate_dependencies)]
// Helpers outside `#[test]` functions panic on purpose too: a failure is the test's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use gpc_fhir::{Format, parse_body, to_body};
use serde_json::json;

fn message(bytes: &[u8], format: Format) -> String {
    parse_body(bytes, format)
        .expect_err("the body should be refused")
        .message
}

#[test]
fn empty_bodies_are_refused() {
    for format in [Format::Json, Format::Xml] {
        assert_eq!(message(b"", format), "the body is empty");
        assert_eq!(message(b" \r\n\t", format), "the body is empty");
    }
}

#[test]
fn invalid_utf8_is_refused() {
    for format in [Format::Json, Format::Xml] {
        assert!(message(b"{\"resourceType\": \"Order\xff\"}", format).contains("UTF-8"));
    }
}

#[test]
fn json_syntax_errors_are_refused() {
    let m = message(b"{\"resourceType\": \"Order\",}", Format::Json);
    assert!(m.starts_with("the body is not valid JSON"), "{m}");
    assert!(m.contains("line 1"), "{m}");
}

#[test]
fn json_that_is_not_a_resource_is_refused() {
    assert!(message(b"[1, 2]", Format::Json).contains("not a FHIR resource"));
    assert!(message(b"{\"id\": \"1\"}", Format::Json).contains("resourceType"));
    assert!(message(b"{\"resourceType\": 7}", Format::Json).contains("resourceType"));
}

#[test]
fn deep_json_is_a_parse_error_not_a_stack_overflow() {
    let deep = "[".repeat(10_000);
    assert!(message(deep.as_bytes(), Format::Json).contains("not valid JSON"));
    let sixty_five = format!(
        "{{\"resourceType\":\"Patient\",\"x\":{}1{}}}",
        "[".repeat(64),
        "]".repeat(64)
    );
    assert!(message(sixty_five.as_bytes(), Format::Json).contains("64"));
}

#[test]
fn xml_bodies_parse() {
    let order = parse_body(EXAMPLE_ORDER_XML.as_bytes(), Format::Xml).unwrap();
    assert_eq!(order, example_order());
    let m = message(
        b"<Order xmlns=\"http://hl7.org/fhir\"><date value=\"2026-11-25\"></Order>",
        Format::Xml,
    );
    assert!(m.starts_with("the body is not well-formed XML"), "{m}");
}

#[test]
fn json_bodies_parse_with_or_without_a_bom() {
    let bytes = serde_json::to_vec(&example_order()).unwrap();
    assert_eq!(parse_body(&bytes, Format::Json).unwrap(), example_order());
    let mut with_bom = b"\xEF\xBB\xBF".to_vec();
    with_bom.extend_from_slice(&bytes);
    assert_eq!(
        parse_body(&with_bom, Format::Json).unwrap(),
        example_order()
    );
}

#[test]
fn response_bodies_round_trip_in_both_formats() {
    for resource in [
        example_order(),
        example_patient(),
        example_bundle(),
        example_conformance(),
        gpc_fhir::operation_outcome(
            "invalid",
            "BAD_REQUEST",
            "Submitted request is malformed / invalid.",
            "the body is empty",
        ),
    ] {
        for format in [Format::Json, Format::Xml] {
            let body = to_body(&resource, format);
            assert_eq!(parse_body(&body, format).unwrap(), resource, "{format:?}");
        }
    }
    let xml = String::from_utf8(to_body(&json!({"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "invalid"}]}), Format::Xml)).unwrap();
    assert_eq!(
        xml,
        "<OperationOutcome xmlns=\"http://hl7.org/fhir\"><issue><severity value=\"error\"/><code value=\"invalid\"/></issue></OperationOutcome>"
    );
}

#[test]
fn mime_constants() {
    assert_eq!(gpc_fhir::JSON_MIME, "application/json+fhir");
    assert_eq!(gpc_fhir::XML_MIME, "application/xml+fhir");
    assert_eq!(Format::Xml.mime(), "application/xml+fhir;charset=utf-8");
}
