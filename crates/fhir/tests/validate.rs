//! Structural validation against DSTU2.

// A test crate sees every dev-dependency of its package, and uses only some.
#![allow(unused_crate_dependencies)]
// Helpers outside `#[test]` functions panic on purpose too: a failure is the test's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use gpc_fhir::{StructureError, operation_outcome, validate_resource};
use serde_json::{Value, json};

fn error_of(value: &Value) -> StructureError {
    validate_resource(value).expect_err("the resource should be refused")
}

/// Applies `edit` to the example Order and returns the error it causes.
fn order_error(edit: impl FnOnce(&mut Value)) -> StructureError {
    let mut order = example_order();
    edit(&mut order);
    error_of(&order)
}

fn assert_path(err: &StructureError, path: &str) {
    assert_eq!(err.path, path, "unexpected error: {err}");
}

#[test]
fn the_spec_example_order_is_valid() {
    validate_resource(&example_order()).unwrap();
}

#[test]
fn supporting_resources_are_valid() {
    for resource in [
        example_patient(),
        example_bundle(),
        example_conformance(),
        example_practitioner(),
        example_device(),
        json!({"resourceType": "Organization", "id": "7", "identifier": [{"system": "http://fhir.nhs.net/Id/ods-organization-code", "value": "GPC001"}], "name": "GP Connect Demonstrator"}),
        json!({"resourceType": "Patient", "identifier": [{"system": "http://fhir.nhs.net/Id/nhs-number", "value": "9476719931"}]}),
    ] {
        if let Err(e) = validate_resource(&resource) {
            panic!("{} refused: {e}", resource["resourceType"]);
        }
    }
}

#[test]
fn the_operation_outcome_builder_is_valid_gp_connect() {
    let oo = operation_outcome(
        "not-found",
        "REFERENCE_NOT_FOUND",
        "Referenced resource not found.",
        "Order.subject Patient/99 does not exist on this system",
    );
    validate_resource(&oo).unwrap();
    assert_eq!(
        oo,
        json!({ "resourceType": "OperationOutcome",
          "meta": {"profile": ["http://fhir.nhs.net/StructureDefinition/gpconnect-operationoutcome-1"]},
          "issue": [{ "severity": "error", "code": "not-found",
            "details": {"coding": [{"system": "http://fhir.nhs.net/ValueSet/gpconnect-error-or-warning-code-1",
                                    "code": "REFERENCE_NOT_FOUND", "display": "Referenced resource not found."}]},
            "diagnostics": "Order.subject Patient/99 does not exist on this system" }] })
    );
    let no_diagnostics = operation_outcome(
        "invalid",
        "BAD_REQUEST",
        "Submitted request is malformed / invalid.",
        "",
    );
    assert!(no_diagnostics["issue"][0].get("diagnostics").is_none());
    validate_resource(&no_diagnostics).unwrap();
}

#[test]
fn unknown_element() {
    let err = order_error(|o| o["invalidField"] = json!("x"));
    assert_eq!(err.to_string(), "Order.invalidField: unknown element");
}

#[test]
fn unknown_element_inside_a_contained_resource() {
    let err = order_error(|o| o["contained"][0]["invalidField"] = json!("x"));
    assert_path(&err, "Order.contained[0].invalidField");
    assert_eq!(err.message, "unknown element");
}

#[test]
fn unknown_element_deep_inside_a_datatype() {
    let err = order_error(|o| o["reasonCodeableConcept"]["coding"][0]["colour"] = json!("red"));
    assert_path(&err, "Order.reasonCodeableConcept.coding[0].colour");
}

#[test]
fn number_where_a_string_is_expected() {
    let err = order_error(|o| o["reasonCodeableConcept"]["coding"][0]["system"] = json!(5));
    assert_eq!(
        err.to_string(),
        "Order.reasonCodeableConcept.coding[0].system: expected a string"
    );
}

#[test]
fn wrong_json_types() {
    assert_path(
        &order_error(|o| o["subject"] = json!("Patient/1")),
        "Order.subject",
    );
    assert_path(&order_error(|o| o["date"] = json!(true)), "Order.date");
    assert_path(
        &order_error(|o| o["reasonCodeableConcept"]["coding"][0]["userSelected"] = json!("true")),
        "Order.reasonCodeableConcept.coding[0].userSelected",
    );
    assert_path(
        &order_error(|o| o["contained"][0] = json!("Basic")),
        "Order.contained[0]",
    );
}

#[test]
fn array_where_a_single_value_is_expected() {
    let err = order_error(|o| o["date"] = json!(["2026-11-25"]));
    assert_path(&err, "Order.date");
    assert!(err.message.contains("single value"), "{err}");
    assert_path(
        &order_error(|o| o["subject"] = json!([{"reference": "Patient/1"}])),
        "Order.subject",
    );
}

#[test]
fn single_value_where_an_array_is_expected() {
    let err =
        order_error(|o| o["identifier"] = json!({"system": "urn:ietf:rfc:3986", "value": "x"}));
    assert_path(&err, "Order.identifier");
    assert!(err.message.contains("array"), "{err}");
    assert_path(
        &order_error(|o| o["detail"] = json!({"reference": "#x"})),
        "Order.detail",
    );
    assert_path(
        &order_error(|o| o["meta"]["profile"] = json!("http://x")),
        "Order.meta.profile",
    );
}

#[test]
fn empty_array() {
    assert_path(
        &order_error(|o| o["identifier"] = json!([])),
        "Order.identifier",
    );
}

#[test]
fn missing_required_elements() {
    let err = order_error(|o| {
        o.as_object_mut().unwrap().remove("detail");
    });
    assert_eq!(err.to_string(), "Order.detail: missing required element");
    let err = order_error(|o| {
        o["contained"][0].as_object_mut().unwrap().remove("code");
    });
    assert_path(&err, "Order.contained[0].code");
    let err = order_error(|o| {
        o["contained"][0]["text"]
            .as_object_mut()
            .unwrap()
            .remove("status");
    });
    assert_path(&err, "Order.contained[0].text.status");
}

#[test]
fn bad_date() {
    let err = order_error(|o| o["date"] = json!("2026-13-01"));
    assert_path(&err, "Order.date");
    assert!(err.message.contains("2026-13-01"), "{err}");
    assert_path(
        &order_error(|o| o["date"] = json!("25/11/2026")),
        "Order.date",
    );
    assert_path(
        &order_error(|o| o["date"] = json!("2026-11-25T10:00")),
        "Order.date",
    );
    // a dateTime with seconds and a zone is fine
    let mut order = example_order();
    order["date"] = json!("2026-11-25T10:00:00+00:00");
    validate_resource(&order).unwrap();
}

#[test]
fn bad_reference() {
    let err = order_error(|o| o["subject"]["reference"] = json!("Patient 1"));
    assert_path(&err, "Order.subject.reference");
    assert!(err.message.contains("not a valid reference"), "{err}");
    assert_path(
        &order_error(|o| o["detail"][0]["reference"] = json!("#bad id")),
        "Order.detail[0].reference",
    );
    let mut order = example_order();
    order["target"]["reference"] = json!("http://127.0.0.1:8080/GPC001/DSTU2/1/Organization/1");
    validate_resource(&order).unwrap();
}

#[test]
fn empty_string() {
    let err = order_error(|o| o["subject"]["display"] = json!(""));
    assert_path(&err, "Order.subject.display");
    assert!(err.message.contains("empty"), "{err}");
}

#[test]
fn null_values() {
    let err = order_error(|o| o["date"] = Value::Null);
    assert_eq!(err.to_string(), "Order.date: null is not allowed");
    assert_path(
        &order_error(|o| o["detail"] = json!([null])),
        "Order.detail[0]",
    );
    assert_path(
        &order_error(|o| o["meta"]["profile"] = json!([null])),
        "Order.meta.profile[0]",
    );
}

#[test]
fn two_choice_types_at_once() {
    let err = order_error(|o| o["reasonReference"] = json!({"reference": "Condition/1"}));
    assert_path(&err, "Order.reasonReference");
    assert!(err.message.contains("reason[x]"), "{err}");

    let mut patient = example_patient();
    patient["deceasedBoolean"] = json!(false);
    patient["deceasedDateTime"] = json!("2020-01-01");
    assert_path(&error_of(&patient), "Patient.deceasedDateTime");
}

#[test]
fn choice_types_accept_only_their_allowed_types() {
    assert_path(
        &order_error(|o| o["reasonString"] = json!("because")),
        "Order.reasonString",
    );
    let mut patient = example_patient();
    patient["deceasedString"] = json!("yes");
    assert_path(&error_of(&patient), "Patient.deceasedString");
    let mut patient = example_patient();
    patient["deceasedBoolean"] = json!("true");
    assert_path(&error_of(&patient), "Patient.deceasedBoolean");
}

#[test]
fn unknown_resource_type() {
    let err = error_of(&json!({"resourceType": "Foo", "id": "1"}));
    assert_path(&err, "resourceType");
    assert!(err.message.contains("Foo"), "{err}");
    let err = order_error(|o| o["contained"][0]["resourceType"] = json!("Baisc"));
    assert_path(&err, "Order.contained[0].resourceType");
    assert!(
        error_of(&json!({"id": "1"}))
            .message
            .contains("resourceType")
    );
    assert!(validate_resource(&json!([1])).is_err());
}

#[test]
fn contained_resource_rules() {
    let err = order_error(|o| {
        o["contained"][0].as_object_mut().unwrap().remove("id");
    });
    assert_path(&err, "Order.contained[0].id");
    let err = order_error(|o| o["contained"][0]["meta"]["versionId"] = json!("1"));
    assert_path(&err, "Order.contained[0].meta.versionId");
    let err = order_error(|o| {
        let inner = o["contained"][0].clone();
        o["contained"][0]["contained"] = json!([inner]);
    });
    assert_path(&err, "Order.contained[0].contained");
    let err = order_error(|o| o["contained"][0]["id"] = json!("not an id!"));
    assert_path(&err, "Order.contained[0].id");
}

#[test]
fn malformed_primitives() {
    let cases: &[(&str, Value, &str)] = &[
        ("active", json!("true"), "Patient.active"),
        (
            "multipleBirthInteger",
            json!(1.5),
            "Patient.multipleBirthInteger",
        ),
        (
            "multipleBirthInteger",
            json!(4_000_000_000u64),
            "Patient.multipleBirthInteger",
        ),
        ("gender", json!(" female"), "Patient.gender"),
        ("birthDate", json!("1952-02-30"), "Patient.birthDate"),
        ("id", json!("a b"), "Patient.id"),
        (
            "implicitRules",
            json!("http://a b"),
            "Patient.implicitRules",
        ),
        ("language", json!("en  GB"), "Patient.language"),
    ];
    for (key, value, path) in cases {
        let mut patient = example_patient();
        patient[*key] = value.clone();
        assert_path(&error_of(&patient), path);
    }
    let mut patient = example_patient();
    patient["telecom"][0]["rank"] = json!(0);
    assert_path(&error_of(&patient), "Patient.telecom[0].rank");
    let mut patient = example_patient();
    patient["meta"]["lastUpdated"] = json!("2026-11-25");
    assert_path(&error_of(&patient), "Patient.meta.lastUpdated");
    let mut patient = example_patient();
    patient["photo"] = json!([{"data": "not base64!"}]);
    assert_path(&error_of(&patient), "Patient.photo[0].data");
    let mut patient = example_patient();
    patient["identifier"][0]["extension"][0]
        .as_object_mut()
        .unwrap()
        .remove("valueCodeableConcept");
    patient["identifier"][0]["extension"][0]["valueOid"] = json!("1.2.3");
    assert_path(
        &error_of(&patient),
        "Patient.identifier[0].extension[0].valueOid",
    );
    let mut bundle = example_bundle();
    bundle["entry"][0]["search"]["score"] = json!("1.5");
    assert_path(&error_of(&bundle), "Bundle.entry[0].search.score");
    let mut patient = example_patient();
    patient["name"][0]["text"] = json!("bell\u{7}");
    assert_path(&error_of(&patient), "Patient.name[0].text");
}

#[test]
fn extensions() {
    let mut patient = example_patient();
    patient["identifier"][0]["extension"][0]
        .as_object_mut()
        .unwrap()
        .remove("url");
    assert_path(
        &error_of(&patient),
        "Patient.identifier[0].extension[0].url",
    );

    let mut patient = example_patient();
    patient["identifier"][0]["extension"][0]["valueCode"] = json!("01");
    assert_path(
        &error_of(&patient),
        "Patient.identifier[0].extension[0].valueCode",
    );

    let mut patient = example_patient();
    patient["identifier"][0]["extension"][0]["valueFoo"] = json!("01");
    assert_path(
        &error_of(&patient),
        "Patient.identifier[0].extension[0].valueFoo",
    );

    let mut patient = example_patient();
    patient["identifier"][0]["extension"][0]["extension"] =
        json!([{"url": "http://x", "valueString": "y"}]);
    assert!(error_of(&patient).message.contains("not both"));

    let mut patient = example_patient();
    patient["extension"] = json!([{"url": "http://x"}]);
    assert_path(&error_of(&patient), "Patient.extension[0]");
}

#[test]
fn primitive_extensions_are_accepted_and_checked() {
    let mut patient = example_patient();
    patient["_birthDate"] =
        json!({"id": "bd", "extension": [{"url": "http://x", "valueString": "approx"}]});
    patient["name"][0]["given"] = json!(["Minnie", null]);
    patient["name"][0]["_given"] =
        json!([null, {"extension": [{"url": "http://x", "valueBoolean": true}]}]);
    validate_resource(&patient).unwrap();

    let mut bad = patient.clone();
    bad["_birthDate"]["foo"] = json!(1);
    assert_path(&error_of(&bad), "Patient._birthDate.foo");
    let mut bad = patient.clone();
    bad["name"][0]["_given"] = json!([null, null]);
    assert_path(&error_of(&bad), "Patient.name[0].given[1]");
    let mut bad = patient.clone();
    bad["name"][0]["given"] = json!(["Minnie", "May"]);
    bad["name"][0]["_given"] = json!([{"id": "x"}]);
    assert_path(&error_of(&bad), "Patient.name[0]._given");
    let mut bad = patient.clone();
    bad["_identifier"] = json!([{"id": "x"}]);
    assert_path(&error_of(&bad), "Patient._identifier");
    let mut bad = patient;
    bad["_birthDate"] = json!({});
    assert_path(&error_of(&bad), "Patient._birthDate");
}

#[test]
fn narrative_is_checked() {
    let div = |inner: &str| format!("<div xmlns=\"http://www.w3.org/1999/xhtml\">{inner}</div>");
    let err =
        order_error(|o| o["contained"][0]["text"]["div"] = json!(div("<script>alert(1)</script>")));
    assert_path(&err, "Order.contained[0].text.div");
    let err = order_error(|o| o["contained"][0]["text"]["div"] = json!("<div>no namespace</div>"));
    assert_path(&err, "Order.contained[0].text.div");
    let err = order_error(|o| o["contained"][0]["text"]["div"] = json!(div("<p>unclosed")));
    assert_path(&err, "Order.contained[0].text.div");
    let mut order = example_order();
    order["contained"][0]["text"]["div"] = json!(div("<p>Call <b>today</b></p><br/>"));
    validate_resource(&order).unwrap();
}

#[test]
fn bundle_entries_are_validated_recursively() {
    let mut bundle = example_bundle();
    bundle["entry"][1]["resource"]["invalidField"] = json!(1);
    assert_path(&error_of(&bundle), "Bundle.entry[1].resource.invalidField");
    let mut bundle = example_bundle();
    bundle["text"] = json!({"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>"});
    assert_path(&error_of(&bundle), "Bundle.text");
}

#[test]
fn jwt_resources_invalid_field() {
    for mut resource in [example_practitioner(), example_device()] {
        resource["invalidField"] = json!("x");
        let ty = resource["resourceType"].as_str().unwrap().to_owned();
        assert_eq!(
            error_of(&resource).to_string(),
            format!("{ty}.invalidField: unknown element")
        );
    }
}

#[test]
fn deeply_nested_values_are_refused_without_overflowing_the_stack() {
    // Built by hand: `json!` would serialise the interpolated value recursively.
    let mut ext = json!({"url": "http://x", "valueString": "leaf"});
    for _ in 0..5_000 {
        let mut outer = serde_json::Map::new();
        outer.insert("url".into(), json!("http://x"));
        outer.insert("extension".into(), Value::Array(vec![ext]));
        ext = Value::Object(outer);
    }
    let mut patient = json!({"resourceType": "Patient"});
    patient["extension"] = Value::Array(vec![ext]);
    let err = error_of(&patient);
    assert!(err.message.contains("nested"), "{err}");
    // serde_json's drop of a deep value recurses too; keep it off this thread's stack
    std::mem::forget(patient);
}
