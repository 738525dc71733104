//! Fixtures shared by the integration tests.
#![allow(dead_code)]

use serde_json::{Value, json};

pub const BASIC_ID: &str = "ad6a2e86-37a8-43c9-b0ae-f2adcff4de3a";

/// The §4.1 example Order of the spec.
pub fn example_order() -> Value {
    json!({
      "resourceType": "Order",
      "meta": {"profile": ["http://fhir.nhs.net/StructureDefinition/gpconnect-task-order-1"]},
      "identifier": [{"system": "urn:ietf:rfc:3986", "value": "urn:uuid:6f1c2f0e-5d5b-4d6e-9a3e-2b1c0f9d7a11"}],
      "contained": [{
        "resourceType": "Basic",
        "id": "ad6a2e86-37a8-43c9-b0ae-f2adcff4de3a",
        "meta": {"profile": ["http://fhir.nhs.net/StructureDefinition/gpconnect-task-description-basic-1"]},
        "text": {"status": "generated",
                 "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">Please review the patient's medications at the next available opportunity.</div>"},
        "code": {"coding": [{"system": "http://fhir.nhs.net/ValueSet/gpconnect-task-narrative-1", "code": "Task Narrative"}]}
      }],
      "date": "2026-11-25",
      "subject": {"reference": "Patient/1", "display": "Mrs Minnie DAWES"},
      "source":  {"reference": "Organization/7", "display": "North Lincolnshire Extended Access Hub"},
      "target":  {"reference": "Organization/1", "display": "GP Connect Demonstrator"},
      "reasonCodeableConcept": {
        "coding": [{"system": "http://fhir.nhs.net/ValueSet/gpconnect-task-type-1", "code": "2", "display": "Action needed"}],
        "text": "Action needed"
      },
      "detail": [{"reference": "#ad6a2e86-37a8-43c9-b0ae-f2adcff4de3a"}]
    })
}

/// The same Order as FHIR XML, written by hand in definition order.
pub const EXAMPLE_ORDER_XML: &str = r##"<?xml version="1.0" encoding="UTF-8"?>
<Order xmlns="http://hl7.org/fhir">
  <meta>
    <profile value="http://fhir.nhs.net/StructureDefinition/gpconnect-task-order-1"/>
  </meta>
  <contained>
    <Basic>
      <id value="ad6a2e86-37a8-43c9-b0ae-f2adcff4de3a"/>
      <meta>
        <profile value="http://fhir.nhs.net/StructureDefinition/gpconnect-task-description-basic-1"/>
      </meta>
      <text>
        <status value="generated"/>
        <div xmlns="http://www.w3.org/1999/xhtml">Please review the patient's medications at the next available opportunity.</div>
      </text>
      <code>
        <coding>
          <system value="http://fhir.nhs.net/ValueSet/gpconnect-task-narrative-1"/>
          <code value="Task Narrative"/>
        </coding>
      </code>
    </Basic>
  </contained>
  <identifier>
    <system value="urn:ietf:rfc:3986"/>
    <value value="urn:uuid:6f1c2f0e-5d5b-4d6e-9a3e-2b1c0f9d7a11"/>
  </identifier>
  <date value="2026-11-25"/>
  <subject>
    <reference value="Patient/1"/>
    <display value="Mrs Minnie DAWES"/>
  </subject>
  <source>
    <reference value="Organization/7"/>
    <display value="North Lincolnshire Extended Access Hub"/>
  </source>
  <target>
    <reference value="Organization/1"/>
    <display value="GP Connect Demonstrator"/>
  </target>
  <reasonCodeableConcept>
    <coding>
      <system value="http://fhir.nhs.net/ValueSet/gpconnect-task-type-1"/>
      <code value="2"/>
      <display value="Action needed"/>
    </coding>
    <text value="Action needed"/>
  </reasonCodeableConcept>
  <detail>
    <reference value="#ad6a2e86-37a8-43c9-b0ae-f2adcff4de3a"/>
  </detail>
</Order>
"##;

/// A GP Connect Patient with the NHS number verification status extension.
pub fn example_patient() -> Value {
    json!({
      "resourceType": "Patient",
      "id": "1",
      "meta": {"versionId": "1", "lastUpdated": "2026-11-25T09:00:00Z",
               "profile": ["http://fhir.nhs.net/StructureDefinition/gpconnect-patient-1"]},
      "identifier": [{
        "extension": [{
          "url": "http://fhir.nhs.net/StructureDefinition/extension-nhs-number-verification-status-1",
          "valueCodeableConcept": {"coding": [{
            "system": "http://fhir.nhs.net/ValueSet/nhs-number-verification-status-1",
            "code": "01", "display": "Number present and verified"}]}
        }],
        "system": "http://fhir.nhs.net/Id/nhs-number",
        "value": "9476719931"
      }],
      "active": true,
      "name": [{"use": "official", "family": ["DAWES"], "given": ["Minnie", "May"], "prefix": ["Mrs"]}],
      "telecom": [{"system": "phone", "value": "01632 960587", "use": "home", "rank": 1}],
      "gender": "female",
      "birthDate": "1952-05-31",
      "address": [{"use": "home", "line": ["24 Trinity Street", "Scunthorpe"], "postalCode": "DN15 6AB"}],
      "multipleBirthInteger": 2,
      "careProvider": [{"reference": "Practitioner/1"}],
      "managingOrganization": {"reference": "Organization/1", "display": "GP Connect Demonstrator"}
    })
}

pub fn example_bundle() -> Value {
    let mut second = example_patient();
    second["id"] = json!("2");
    second["deceasedDateTime"] = json!("2020-01-02T03:04:05+00:00");
    json!({
      "resourceType": "Bundle",
      "id": "b3c1e0a2-1111-4222-8333-944455556666",
      "meta": {"lastUpdated": "2026-11-25T09:00:00.123Z"},
      "type": "searchset",
      "total": 2,
      "link": [{"relation": "self", "url": "http://127.0.0.1:8080/GPC001/DSTU2/1/Patient?identifier=http://fhir.nhs.net/Id/nhs-number|9476719931"}],
      "entry": [
        {"fullUrl": "http://127.0.0.1:8080/GPC001/DSTU2/1/Patient/1", "resource": example_patient(), "search": {"mode": "match", "score": 1.5}},
        {"fullUrl": "http://127.0.0.1:8080/GPC001/DSTU2/1/Patient/2", "resource": second}
      ]
    })
}

pub fn example_conformance() -> Value {
    let resource = |ty: &str, profile: &str| {
        json!({
            "type": ty,
            "profile": {"reference": format!("http://fhir.nhs.net/StructureDefinition/{profile}")},
            "interaction": [{"code": "read"}, {"code": "search-type"}],
            "searchParam": [{"name": "identifier", "type": "token", "documentation": "system|value"}]
        })
    };
    json!({
      "resourceType": "Conformance",
      "version": "1.0.0-beta",
      "name": "GP Connect Task Management provider",
      "status": "active",
      "experimental": false,
      "publisher": "gpc",
      "contact": [{"name": "Support", "telecom": [{"system": "email", "value": "support@example.org"}]}],
      "date": "2026-11-25",
      "description": "Receives tasks & notifications",
      "kind": "instance",
      "software": {"name": "gpc-provider", "version": "0.1.0"},
      "implementation": {"description": "GPC001 endpoint", "url": "http://127.0.0.1:8080/GPC001/DSTU2/1"},
      "fhirVersion": "1.0.2",
      "acceptUnknown": "both",
      "format": ["application/json+fhir", "application/xml+fhir"],
      "rest": [{
        "mode": "server",
        "security": {"cors": true},
        "resource": [
          resource("Patient", "gpconnect-patient-1"),
          resource("Organization", "gpconnect-organization-1"),
          resource("Practitioner", "gpconnect-practitioner-1"),
          {"type": "Order",
           "profile": {"reference": "http://fhir.nhs.net/StructureDefinition/gpconnect-task-order-1"},
           "interaction": [{"code": "create"}],
           "conditionalCreate": true,
           "searchInclude": ["Order:subject"]}
        ],
        "operation": [{"name": "gpc.getcarerecord", "definition": {"reference": "OperationDefinition/gpc.getcarerecord"}}]
      }]
    })
}

pub fn example_practitioner() -> Value {
    json!({
      "resourceType": "Practitioner",
      "id": "1",
      "name": {"family": ["Jones"], "given": ["Claire"], "prefix": ["Dr."]},
      "identifier": [{"system": "http://fhir.nhs.net/sds-user-id", "value": "G13579135"},
                     {"system": "localSystem", "value": "1"}],
      "practitionerRole": [{"role": {"coding": [{"system": "http://fhir.nhs.net/ValueSet/sds-job-role-name-1", "code": "AssuranceJobRole"}]}}]
    })
}

pub fn example_device() -> Value {
    json!({
      "resourceType": "Device",
      "id": "1",
      "identifier": [{"system": "GPConnectTestSystem", "value": "Client"}],
      "model": "v1",
      "version": "1.1"
    })
}
