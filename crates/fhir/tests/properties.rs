//! Property tests: the body parsers and the validator never panic, whatever
//! arrives, and a valid Order written as XML reads back as itself.

// A test crate sees every dev-dependency of its package, and uses only some.
#![allow(unused_crate_dependencies)]
// Helpers outside `#[test]` functions panic on purpose too: a failure is the test's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gpc_fhir::{Format, parse_body, validate_resource, xml};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

/// Pieces of FHIR XML and JSON, so that generated bodies get past the first
/// byte and into the deeper paths.
const XML_TOKENS: &[&str] = &[
    "<Order xmlns=\"http://hl7.org/fhir\">",
    "</Order>",
    "<Order xmlns=\"http://hl7.org/fhir\"/>",
    "<date value=\"2026-11-25\"/>",
    "<date value=\"\"/>",
    "<subject>",
    "</subject>",
    "<reference value=\"Patient/2\"/>",
    "<contained>",
    "</contained>",
    "<Basic>",
    "</Basic>",
    "<id value=\"x\"/>",
    "<text>",
    "</text>",
    "<div xmlns=\"http://www.w3.org/1999/xhtml\">",
    "</div>",
    "<p>",
    "</p>",
    "<extension url=\"u\">",
    "</extension>",
    "<valueString value=\"v\"/>",
    "<identifier>",
    "</identifier>",
    "&amp;",
    "&lt;",
    "&#0;",
    "&#x41;",
    "&x;",
    "<!--",
    "-->",
    "<![CDATA[",
    "]]>",
    "<?pi x?>",
    "<?xml version=\"1.0\"?>",
    "<!DOCTYPE Order>",
    "\"",
    "'",
    "=",
    " ",
    "x",
    "&",
    ";",
    "<",
    ">",
    "/",
    "é",
    "\u{0}",
    "xmlns:f=\"http://hl7.org/fhir\"",
    "<f:Order xmlns:f=\"http://hl7.org/fhir\">",
];

const JSON_TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"resourceType\"",
    "\"Order\"",
    "\"Basic\"",
    "\"contained\"",
    "\"meta\"",
    "\"profile\"",
    "\"date\"",
    "\"_date\"",
    "\"2026-11-25\"",
    "\"subject\"",
    "\"reference\"",
    "\"Patient/2\"",
    "\"text\"",
    "\"div\"",
    "\"<div xmlns=\\\"http://www.w3.org/1999/xhtml\\\">x</div>\"",
    "\"extension\"",
    "\"url\"",
    "\"valueString\"",
    "\"id\"",
    "\"identifier\"",
    "null",
    "true",
    "1",
    "-1e400",
    "1.5",
    "\"\\u0000\"",
    "\"\\ud800\"",
    " ",
];

fn tokens(set: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(set), 0..80).prop_map(|t| t.concat())
}

/// Arbitrary JSON whose keys are mostly FHIR element names.
fn fhir_ish_json() -> impl Strategy<Value = Value> {
    let key = prop::sample::select(
        &[
            "resourceType",
            "Order",
            "meta",
            "profile",
            "contained",
            "text",
            "status",
            "div",
            "id",
            "extension",
            "url",
            "valueString",
            "valueInteger",
            "_date",
            "date",
            "subject",
            "reference",
            "identifier",
            "system",
            "value",
            "coding",
            "code",
            "detail",
            "Basic",
            "entry",
            "resource",
            "x",
        ][..],
    );
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|n| json!(n)),
        prop::sample::select(
            &[
                "Order",
                "Basic",
                "Patient/2",
                "#x",
                "2026-11-25",
                "",
                "<div xmlns=\"http://www.w3.org/1999/xhtml\">t</div>",
                "Bundle"
            ][..]
        )
        .prop_map(|s| json!(s)),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(8, 128, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..6).prop_map(|kv| Value::Object(
                kv.into_iter()
                    .map(|(k, v)| (k.to_owned(), v))
                    .collect::<Map<_, _>>()
            )),
        ]
    })
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A structurally valid task Order with generated content.
fn valid_order() -> impl Strategy<Value = Value> {
    let word = "[A-Za-z0-9][A-Za-z0-9 .,'&<>é漢🙂\"-]{0,30}";
    (
        "[0-9a-f-]{1,36}",
        "[A-Za-z0-9][A-Za-z0-9 .,;:!?'\"&<>é漢🙂\n\t-]{0,200}",
        (1900u32..2100, 1u32..13, 1u32..29),
        prop::sample::select(&["1", "2"][..]),
        (word, word, word),
        prop::option::of(word),
        "[A-Za-z0-9-]{1,40}",
    )
        .prop_map(|(uuid, text, (y, m, d), code, (subject, source, target), reason, basic_id)| {
            let mut order = json!({
                "resourceType": "Order",
                "meta": {"profile": ["http://fhir.nhs.net/StructureDefinition/gpconnect-task-order-1"]},
                "identifier": [{"system": "urn:ietf:rfc:3986", "value": format!("urn:uuid:{uuid}")}],
                "contained": [{
                    "resourceType": "Basic",
                    "id": basic_id,
                    "meta": {"profile": ["http://fhir.nhs.net/StructureDefinition/gpconnect-task-description-basic-1"]},
                    "text": {"status": "generated",
                             "div": format!("<div xmlns=\"http://www.w3.org/1999/xhtml\">{}</div>", escape(&text))},
                    "code": {"coding": [{"system": "http://fhir.nhs.net/ValueSet/gpconnect-task-narrative-1", "code": "Task Narrative"}]}
                }],
                "date": format!("{y:04}-{m:02}-{d:02}"),
                "subject": {"reference": "Patient/2", "display": subject},
                "source": {"reference": "Organization/5", "display": source},
                "target": {"reference": "Organization/1", "display": target},
                "reasonCodeableConcept": {
                    "coding": [{"system": "http://fhir.nhs.net/ValueSet/gpconnect-task-type-1", "code": code}]
                },
                "detail": [{"reference": format!("#{basic_id}")}]
            });
            if let Some(reason) = reason {
                order["reasonCodeableConcept"]["text"] = json!(reason);
            }
            order
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parse_body_never_panics_on_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_body(&bytes, Format::Json);
        let _ = parse_body(&bytes, Format::Xml);
    }

    #[test]
    fn xml_bodies_never_panic(body in tokens(XML_TOKENS)) {
        if let Ok(value) = parse_body(body.as_bytes(), Format::Xml) {
            let _ = validate_resource(&value);
        }
    }

    #[test]
    fn json_bodies_never_panic(body in tokens(JSON_TOKENS)) {
        if let Ok(value) = parse_body(body.as_bytes(), Format::Json) {
            let _ = validate_resource(&value);
        }
    }

    #[test]
    fn validation_never_panics(value in fhir_ish_json()) {
        let _ = validate_resource(&value);
        let _ = validate_resource(&json!({"resourceType": "Order", "contained": [value.clone()]}));
        let _ = validate_resource(&json!({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": value}]}));
    }

    #[test]
    fn narratives_never_panic(div in tokens(XML_TOKENS)) {
        let _ = gpc_fhir::narrative::div_text(&div);
    }

    #[test]
    fn a_valid_order_reads_back_from_xml_as_itself(order in valid_order()) {
        prop_assert!(validate_resource(&order).is_ok(), "{:?}", validate_resource(&order));
        let written = xml::to_xml(&order);
        let back = xml::from_xml(&written).map_err(|e| TestCaseError::fail(format!("{}: {}", e, written)))?;
        prop_assert_eq!(&back, &order);
        // And through the request path, as a provider would read it.
        let parsed = parse_body(written.as_bytes(), Format::Xml).unwrap();
        prop_assert_eq!(parsed, order);
    }
}
