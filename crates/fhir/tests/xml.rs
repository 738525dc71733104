//! FHIR XML ↔ JSON.

// A test crate sees every dev-dependency of its package, and uses only some.
#![allow(unused_crate_dependencies)]
// Helpers outside `#[test]` functions panic on purpose too: a failure is the test's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use gpc_fhir::xml::{from_xml, to_xml};
use gpc_fhir::{ParseError, validate_resource};
use serde_json::{Value, json};

fn round_trip(resource: &Value) {
    validate_resource(resource).unwrap();
    let xml = to_xml(resource);
    let back = from_xml(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    assert_eq!(&back, resource, "{xml}");
    // and once more, from XML: the XML itself is stable
    assert_eq!(to_xml(&back), xml);
}

fn parse_err(xml: &str) -> ParseError {
    from_xml(xml).expect_err("the XML should be refused")
}

/// Byte offset of `needle` in `haystack`, failing the test if absent.
fn at(haystack: &str, needle: &str) -> usize {
    haystack
        .find(needle)
        .unwrap_or_else(|| panic!("{needle} not in {haystack}"))
}

#[test]
fn the_xml_example_order_parses_to_the_json_example() {
    assert_eq!(from_xml(EXAMPLE_ORDER_XML).unwrap(), example_order());
}

#[test]
fn the_example_order_round_trips() {
    round_trip(&example_order());
}

#[test]
fn xml_output_follows_definition_order_not_json_key_order() {
    let order = example_order();
    let mut shuffled = serde_json::Map::new();
    for key in [
        "detail",
        "reasonCodeableConcept",
        "target",
        "source",
        "subject",
        "date",
        "identifier",
        "contained",
        "meta",
        "resourceType",
    ] {
        shuffled.insert(key.into(), order[key].clone());
    }
    let xml = to_xml(&Value::Object(shuffled));
    let order_of = [
        "<Order xmlns=\"http://hl7.org/fhir\">",
        "<meta>",
        "<contained><Basic><id value=",
        "<identifier>",
        "<date value=\"2026-11-25\"/>",
        "<subject>",
        "<source>",
        "<target>",
        "<reasonCodeableConcept>",
        "<detail>",
        "</Order>",
    ];
    for pair in order_of.windows(2) {
        assert!(
            at(&xml, pair[0]) < at(&xml, pair[1]),
            "{} should come before {}:\n{xml}",
            pair[0],
            pair[1]
        );
    }
    // inside datatypes too: coding before text, system before code before display
    assert!(
        at(
            &xml,
            "<coding><system value=\"http://fhir.nhs.net/ValueSet/gpconnect-task-type-1\"/><code value=\"2\"/><display"
        ) > 0
    );
    assert!(
        at(
            &xml,
            "</coding><text value=\"Action needed\"/></reasonCodeableConcept>"
        ) > 0
    );
    assert!(!xml.starts_with("<?xml"));
}

#[test]
fn patient_with_nhs_number_verification_extension_round_trips() {
    let patient = example_patient();
    round_trip(&patient);
    let xml = to_xml(&patient);
    assert!(xml.contains(
        "<identifier><extension url=\"http://fhir.nhs.net/StructureDefinition/extension-nhs-number-verification-status-1\"><valueCodeableConcept><coding>"
    ), "{xml}");
    assert!(xml.contains("<active value=\"true\"/>"));
    assert!(xml.contains("<multipleBirthInteger value=\"2\"/>"));
    assert!(at(&xml, "<given value=\"Minnie\"/><given value=\"May\"/>") < at(&xml, "<prefix"));
}

#[test]
fn conformance_bundle_and_operation_outcome_round_trip() {
    round_trip(&example_conformance());
    round_trip(&example_bundle());
    round_trip(&gpc_fhir::operation_outcome(
        "invalid",
        "INVALID_RESOURCE",
        "Submitted resource is not valid.",
        "Order.date: '2026-13-01' is not a valid dateTime",
    ));
    round_trip(&example_practitioner());
    round_trip(&example_device());
    let xml = to_xml(&example_bundle());
    assert!(xml.contains("<entry><fullUrl value=\"http://127.0.0.1:8080/GPC001/DSTU2/1/Patient/1\"/><resource><Patient><id value=\"1\"/>"), "{xml}");
    assert!(xml.contains("<total value=\"2\"/>"));
    assert!(xml.contains("<score value=\"1.5\"/>"));
}

#[test]
fn a_single_occurrence_of_a_repeating_element_is_an_array() {
    let xml = r#"<Patient xmlns="http://hl7.org/fhir"><name><family value="DAWES"/></name><active value="false"/><multipleBirthInteger value="3"/></Patient>"#;
    assert_eq!(
        from_xml(xml).unwrap(),
        json!({"resourceType": "Patient", "name": [{"family": ["DAWES"]}], "active": false, "multipleBirthInteger": 3})
    );
}

#[test]
fn malformed_primitive_values_stay_strings_for_validation_to_report() {
    let xml = r#"<Patient xmlns="http://hl7.org/fhir"><active value="yes"/><birthDate value="1952-13-01"/></Patient>"#;
    let value = from_xml(xml).unwrap();
    assert_eq!(value["active"], json!("yes"));
    assert_eq!(
        validate_resource(&value).unwrap_err().path,
        "Patient.active"
    );
}

#[test]
fn predefined_entities_and_character_references_decode() {
    let xml = r#"<Patient xmlns="http://hl7.org/fhir"><name><text value="a &lt;b&gt; &amp; &quot;c&quot; caf&#233; &#x263A;"/></name></Patient>"#;
    assert_eq!(
        from_xml(xml).unwrap()["name"][0]["text"],
        json!("a <b> & \"c\" café ☺")
    );
}

#[test]
fn awkward_characters_round_trip() {
    let mut patient = example_patient();
    patient["name"][0]["text"] = json!("Tab\there & \"there\" <x>\nline2\r\n 'é' ☺");
    round_trip(&patient);
    let xml = to_xml(&patient);
    assert!(
        xml.contains("Tab&#9;here &amp; &quot;there&quot; &lt;x&gt;&#10;line2&#13;&#10;"),
        "{xml}"
    );
}

#[test]
fn literal_newlines_in_attributes_are_normalised_as_xml_requires() {
    let xml =
        "<Patient xmlns=\"http://hl7.org/fhir\"><name><text value=\"a\r\nb\tc\"/></name></Patient>";
    assert_eq!(from_xml(xml).unwrap()["name"][0]["text"], json!("a b c"));
}

#[test]
fn primitive_extensions_map_to_underscore_keys_and_back() {
    let xml = r#"<Patient xmlns="http://hl7.org/fhir"><name><given value="Minnie"/><given id="g2"><extension url="http://x"><valueBoolean value="true"/></extension></given></name><birthDate id="bd" value="1952-05-31"><extension url="http://x"><valueString value="approx"/></extension></birthDate></Patient>"#;
    let value = from_xml(xml).unwrap();
    assert_eq!(
        value,
        json!({"resourceType": "Patient",
               "name": [{"given": ["Minnie", null], "_given": [null, {"id": "g2", "extension": [{"url": "http://x", "valueBoolean": true}]}]}],
               "birthDate": "1952-05-31",
               "_birthDate": {"id": "bd", "extension": [{"url": "http://x", "valueString": "approx"}]}})
    );
    round_trip(&value);
}

#[test]
fn element_ids_are_attributes() {
    let mut order = example_order();
    order["subject"]["id"] = json!("subj");
    order["identifier"][0]["extension"] =
        json!([{"id": "e1", "url": "http://x", "valueString": "y"}]);
    let xml = to_xml(&order);
    assert!(xml.contains("<subject id=\"subj\"><reference"), "{xml}");
    assert!(
        xml.contains(
            "<extension id=\"e1\" url=\"http://x\"><valueString value=\"y\"/></extension>"
        ),
        "{xml}"
    );
    round_trip(&order);
    assert!(
        parse_err(
            r#"<Order xmlns="http://hl7.org/fhir"><subject><id value="x"/></subject></Order>"#
        )
        .message
        .contains("attribute")
    );
}

#[test]
fn unknown_elements_are_kept_for_validation_to_report() {
    let xml = r##"<Order xmlns="http://hl7.org/fhir"><invalidField value="x"/><subject><reference value="Patient/1"/><colour><shade value="red"/></colour></subject><detail><reference value="#a"/></detail></Order>"##;
    let value = from_xml(xml).unwrap();
    assert_eq!(value["invalidField"], json!("x"));
    assert_eq!(value["subject"]["colour"], json!({"shade": "red"}));
    assert_eq!(
        validate_resource(&value).unwrap_err().to_string(),
        "Order.invalidField: unknown element"
    );

    let contained = EXAMPLE_ORDER_XML.replace(
        "<id value=\"ad6a",
        "<invalidField value=\"1\"/><id value=\"ad6a",
    );
    let value = from_xml(&contained).unwrap();
    assert_eq!(
        validate_resource(&value).unwrap_err().path,
        "Order.contained[0].invalidField"
    );
}

#[test]
fn unknown_resource_types_parse_and_fail_validation() {
    let value = from_xml(
        r#"<Appointment xmlns="http://hl7.org/fhir"><status value="booked"/></Appointment>"#,
    )
    .unwrap();
    assert_eq!(
        value,
        json!({"resourceType": "Appointment", "status": "booked"})
    );
    assert_eq!(validate_resource(&value).unwrap_err().path, "resourceType");
}

#[test]
fn narrative_div_is_kept_verbatim() {
    let xml = r#"<Basic xmlns="http://hl7.org/fhir"><text><status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml" class="n"><p>Call <b>today</b> &amp; <br/>tomorrow</p></div></text><code><text value="x"/></code></Basic>"#;
    let value = from_xml(xml).unwrap();
    assert_eq!(
        value["text"]["div"],
        json!(
            r#"<div xmlns="http://www.w3.org/1999/xhtml" class="n"><p>Call <b>today</b> &amp; <br/>tomorrow</p></div>"#
        )
    );
    validate_resource(&value).unwrap();
    assert_eq!(to_xml(&value), xml);
}

#[test]
fn the_div_must_be_xhtml_and_other_elements_fhir() {
    let err = parse_err(
        r#"<Basic xmlns="http://hl7.org/fhir"><text><status value="generated"/><div>x</div></text></Basic>"#,
    );
    assert!(err.message.contains("namespace"), "{err}");
    let err =
        parse_err(r#"<Basic xmlns="http://hl7.org/fhir" xmlns:o="urn:other"><o:code/></Basic>"#);
    assert!(err.message.contains("FHIR namespace"), "{err}");
    let err = parse_err(r#"<Basic xmlns="http://hl7.org/fhir"><code xmlns="urn:other"/></Basic>"#);
    assert!(err.message.contains("namespace"), "{err}");
}

#[test]
fn root_must_be_a_fhir_resource() {
    assert!(
        parse_err(r#"<Order><date value="2026-11-25"/></Order>"#)
            .message
            .contains("FHIR namespace")
    );
    assert!(
        parse_err(r#"<Order xmlns="urn:not-fhir"/>"#)
            .message
            .contains("FHIR namespace")
    );
    assert!(
        parse_err(r#"<order xmlns="http://hl7.org/fhir"/>"#)
            .message
            .contains("not a FHIR resource")
    );
    assert!(parse_err("").message.contains("no root"));
    assert!(
        parse_err(r#"<Order xmlns="http://hl7.org/fhir"/><Order xmlns="http://hl7.org/fhir"/>"#)
            .message
            .contains("more than one root")
    );
}

#[test]
fn text_content_and_unknown_attributes_are_refused() {
    let err = parse_err(
        r#"<Order xmlns="http://hl7.org/fhir"><date value="2026-11-25">today</date></Order>"#,
    );
    assert!(err.message.contains("text"), "{err}");
    let err = parse_err(
        r#"<Order xmlns="http://hl7.org/fhir"><date value="2026-11-25" colour="red"/></Order>"#,
    );
    assert!(err.message.contains("colour"), "{err}");
    let err = parse_err(r#"<Order xmlns="http://hl7.org/fhir" colour="red"/>"#);
    assert!(err.message.contains("colour"), "{err}");
    // xsi:schemaLocation as in published examples is tolerated
    from_xml(r#"<Order xmlns="http://hl7.org/fhir" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="http://hl7.org/fhir ../../schema/order.xsd"/>"#).unwrap();
}

#[test]
fn contained_wrappers_hold_exactly_one_resource() {
    let two = r#"<Order xmlns="http://hl7.org/fhir"><contained><Basic><id value="a"/></Basic><Basic><id value="b"/></Basic></contained></Order>"#;
    assert!(parse_err(two).message.contains("exactly one"));
    assert!(
        parse_err(r#"<Order xmlns="http://hl7.org/fhir"><contained/></Order>"#)
            .message
            .contains("empty")
    );
}

#[test]
fn not_well_formed_xml_reports_the_line() {
    let err = parse_err(
        "<Order xmlns=\"http://hl7.org/fhir\">\n  <date value=\"2026-11-25\"/>\n  <subject>\n</Order>",
    );
    assert!(
        err.message.starts_with("the body is not well-formed XML"),
        "{err}"
    );
    assert!(err.message.contains("line 4"), "{err}");
    assert!(
        parse_err(r#"<Order xmlns="http://hl7.org/fhir"><date value="a & b"/></Order>"#)
            .message
            .contains("&")
    );
}

#[test]
fn billion_laughs_is_refused() {
    let xml = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<Patient xmlns="http://hl7.org/fhir"><name><text value="&lol3;"/></name></Patient>"#;
    let err = parse_err(xml);
    assert!(err.message.contains("DOCTYPE"), "{err}");
}

#[test]
fn external_entities_are_refused() {
    let xml = r#"<?xml version="1.0"?>
<!DOCTYPE Patient [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>
<Patient xmlns="http://hl7.org/fhir"><name><text value="&xxe;"/></name></Patient>"#;
    assert!(parse_err(xml).message.contains("DOCTYPE"));
    assert!(
        parse_err("<!DOCTYPE Patient><Patient xmlns=\"http://hl7.org/fhir\"/>")
            .message
            .contains("DOCTYPE")
    );
    // undeclared entities without a DOCTYPE are refused, never looked up
    let err = parse_err(
        r#"<Patient xmlns="http://hl7.org/fhir"><name><text value="&xxe;"/></name></Patient>"#,
    );
    assert!(err.message.contains("&xxe;"), "{err}");
    let err = parse_err(
        r#"<Basic xmlns="http://hl7.org/fhir"><text><status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml">&nbsp;</div></text></Basic>"#,
    );
    assert!(err.message.contains("&nbsp;"), "{err}");
}

#[test]
fn deep_nesting_is_refused_without_overflowing_the_stack() {
    let deep = format!(
        "<Patient xmlns=\"http://hl7.org/fhir\">{}{}</Patient>",
        "<extension url=\"http://x\">".repeat(10_000),
        "</extension>".repeat(10_000)
    );
    assert!(parse_err(&deep).message.contains("64"));
    // 64 levels in all is still fine
    let ok = format!(
        "<Patient xmlns=\"http://hl7.org/fhir\">{}<valueString value=\"x\"/>{}</Patient>",
        "<extension url=\"http://x\">".repeat(62),
        "</extension>".repeat(62)
    );
    from_xml(&ok).unwrap();
}

#[test]
fn non_utf8_encodings_are_refused() {
    let err = parse_err(
        "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><Patient xmlns=\"http://hl7.org/fhir\"/>",
    );
    assert!(err.message.contains("UTF-8"), "{err}");
    from_xml("\u{FEFF}<?xml version=\"1.0\" encoding=\"utf-8\"?><Patient xmlns=\"http://hl7.org/fhir\"/>").unwrap();
}

#[test]
fn comments_and_whitespace_are_ignored() {
    let xml = "<!-- hi -->\n<Patient xmlns=\"http://hl7.org/fhir\">\n  <!-- a comment -->\n  <active value=\"true\"/>\n</Patient>\n<!-- bye -->\n";
    assert_eq!(
        from_xml(xml).unwrap(),
        json!({"resourceType": "Patient", "active": true})
    );
}

#[test]
fn attribute_and_child_name_floods_are_refused() {
    let attrs: String = (0..100)
        .map(|i| format!(" xmlns:p{i}=\"urn:x{i}\""))
        .collect();
    let xml =
        format!("<Patient xmlns=\"http://hl7.org/fhir\"{attrs}><active value=\"true\"/></Patient>");
    assert!(parse_err(&xml).message.contains("attributes"));
    let div = format!(
        "<div xmlns=\"http://www.w3.org/1999/xhtml\"><p{}>x</p></div>",
        (0..100).map(|i| format!(" a{i}=\"\"")).collect::<String>()
    );
    assert!(
        gpc_fhir::narrative::div_text(&div)
            .unwrap_err()
            .contains("attributes")
    );
    let children: String = (0..300).map(|i| format!("<f{i} value=\"x\"/>")).collect();
    let xml = format!("<Patient xmlns=\"http://hl7.org/fhir\">{children}</Patient>");
    assert!(parse_err(&xml).message.contains("different child elements"));
}
