//! Spec §5: Patient, Organization and Practitioner reads and searches.

// A test crate sees every dev-dependency of its package, and uses only some.
#![allow(unused_crate_dependencies)]
// Helpers outside `#[test]` functions panic on purpose too: a failure is the test's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gpc_testkit::*;
use serde_json::Value;

fn patient_search(s: &TestServer, query: &str, record_nhs: &str) -> reqwest::RequestBuilder {
    let jwt = Jwt::new("patient/*.read", patient_record(record_nhs)).encode();
    s.client
        .get(format!("{}/Patient?{query}", s.root("GPC001")))
        .headers(headers(SEARCH_PATIENT, GPC001_ASID, &jwt))
}

fn entries(bundle: &Value) -> Vec<Value> {
    bundle["entry"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn patient_search_by_nhs_number() {
    let s = TestServer::start().await;
    for query in [
        format!("identifier={NHS_SYSTEM}|9476719931"),
        format!("identifier={NHS_SYSTEM}%7C9476719931"),
        "identifier=https://fhir.nhs.uk/Id/nhs-number|9476719931".to_string(),
        format!("identifier={NHS_SYSTEM}|9476719931&_format=json"),
    ] {
        let (status, _, b) = send(patient_search(&s, &query, "9476719931")).await;
        assert_eq!(status, 200, "{query}: {b}");
        assert_eq!(b["resourceType"], "Bundle");
        assert_eq!(b["type"], "searchset");
        let e = entries(&b);
        assert_eq!(e.len(), 1);
        let p = &e[0]["resource"];
        assert_eq!(e[0]["fullUrl"], format!("{}/Patient/2", s.root("GPC001")));
        assert_eq!(p["id"], "2");
        assert_eq!(p["meta"]["versionId"], "1");
        assert_eq!(
            p["meta"]["profile"][0],
            "http://fhir.nhs.net/StructureDefinition/gpconnect-patient-1"
        );
        assert_eq!(p["identifier"][0]["system"], NHS_SYSTEM);
        assert_eq!(p["identifier"][0]["value"], "9476719931");
        assert_eq!(
            p["identifier"][0]["extension"][0]["valueCodeableConcept"]["coding"][0]["code"],
            "01"
        );
        assert_eq!(p["name"][0]["use"], "official");
        assert_eq!(p["name"][0]["family"][0], "DAWES");
        assert_eq!(p["name"][0]["given"][0], "Minnie");
        assert_eq!(p["name"][0]["prefix"][0], "Mrs");
        assert_eq!(p["gender"], "female");
        assert_eq!(p["birthDate"], "1952-05-31");
        assert_eq!(p["address"][0]["postalCode"], "DN20 8AF");
        assert!(p["telecom"].is_array());
        assert_eq!(p["managingOrganization"]["reference"], "Organization/1");
        assert!(
            p["careProvider"][0]["reference"]
                .as_str()
                .unwrap()
                .starts_with("Practitioner/")
        );
    }
}

#[tokio::test]
async fn patient_search_rules() {
    let s = TestServer::start().await;
    // Unknown but valid number, and a patient held elsewhere: empty bundles.
    for nhs in ["9999999999", "9476719966"] {
        let (status, _, b) = send(patient_search(
            &s,
            &format!("identifier={NHS_SYSTEM}|{nhs}"),
            nhs,
        ))
        .await;
        assert_eq!(status, 200);
        assert_eq!(b["total"], 0);
        assert!(entries(&b).is_empty());
    }
    // Deceased patients are not returned.
    let (_, _, b) = send(patient_search(
        &s,
        &format!("identifier={NHS_SYSTEM}|9000000173"),
        "9000000173",
    ))
    .await;
    assert!(entries(&b).is_empty(), "{b}");
    // Restricted patient: no address, no telecom.
    let (_, _, b) = send(patient_search(
        &s,
        &format!("identifier={NHS_SYSTEM}|9476718897"),
        "9476718897",
    ))
    .await;
    let p = &entries(&b)[0]["resource"];
    assert_eq!(p["name"][0]["family"][0], "CASSIN");
    assert!(
        p.get("address").is_none() && p.get("telecom").is_none(),
        "{p}"
    );
    // Modulus 11.
    for nhs in ["9000000184", "1234567890", "123"] {
        expect_error(
            patient_search(&s, &format!("identifier={NHS_SYSTEM}|{nhs}"), "9476719931"),
            400,
            "INVALID_NHS_NUMBER",
        )
        .await;
    }
    // Unknown system.
    expect_error(
        patient_search(
            &s,
            "identifier=http://fhir.nhs.net/Id/nhs-numbers|9476719931",
            "9476719931",
        ),
        400,
        "INVALID_IDENTIFIER_SYSTEM",
    )
    .await;
}

#[tokio::test]
async fn search_parameter_errors() {
    let s = TestServer::start().await;
    let nhs = "9476719931";
    for query in [
        String::new(),
        format!("Identifier={NHS_SYSTEM}|{nhs}"),
        format!("identifiers={NHS_SYSTEM}|{nhs}"),
        format!("nhsNumberParam={NHS_SYSTEM}|{nhs}"),
        format!("identifier={NHS_SYSTEM}|{nhs}&identifier={NHS_SYSTEM}|{nhs}"),
        format!("identifier={NHS_SYSTEM}|{nhs}&family=DAWES"),
    ] {
        expect_error(patient_search(&s, &query, nhs), 400, "BAD_REQUEST").await;
    }
    for query in [
        format!("identifier={nhs}"),
        format!("identifier=|{nhs}"),
        format!("identifier={NHS_SYSTEM}|"),
    ] {
        expect_error(patient_search(&s, &query, nhs), 422, "INVALID_PARAMETER").await;
    }
    expect_error(
        s.get(
            "/Organization?identifier=http://example.org|GPC001",
            SEARCH_ORG,
        ),
        422,
        "INVALID_PARAMETER",
    )
    .await;
    expect_error(
        s.get(
            "/Practitioner?identifier=http://example.org|G13579135",
            SEARCH_PRACTITIONER,
        ),
        422,
        "INVALID_PARAMETER",
    )
    .await;
    expect_error(s.get("/Organization", SEARCH_ORG), 400, "BAD_REQUEST").await;
}

#[tokio::test]
async fn organization_search_by_code_and_site() {
    let s = TestServer::start().await;
    let (status, _, b) = send(s.get(
        &format!("/Organization?identifier={ODS_SYSTEM}|R1A14"),
        SEARCH_ORG,
    ))
    .await;
    assert_eq!(status, 200);
    let org = &entries(&b)[0]["resource"];
    assert_eq!(org["name"], "Test GP Care Trust");
    assert_eq!(
        org["meta"]["profile"][0],
        "http://fhir.nhs.net/StructureDefinition/gpconnect-organization-1"
    );
    let id = org["id"].clone();
    for site in ["Z33433", "Z33432"] {
        let (_, _, b) = send(s.get(
            &format!("/Organization?identifier=http://fhir.nhs.net/Id/ods-site-code|{site}"),
            SEARCH_ORG,
        ))
        .await;
        assert_eq!(entries(&b)[0]["resource"]["id"], id, "{site}");
    }
    // Any organisation of the directory resolves, with the same id on every system.
    let (_, _, b) = send(s.get(
        "/Organization?identifier=https://fhir.nhs.uk/Id/ods-organization-code|X11101",
        SEARCH_ORG,
    ))
    .await;
    assert_eq!(entries(&b)[0]["resource"]["name"], "NHS 111 Humber");
    let (_, _, b) = send(s.get(
        &format!("/Organization?identifier={ODS_SYSTEM}|NOPE99"),
        SEARCH_ORG,
    ))
    .await;
    assert!(entries(&b).is_empty());
}

#[tokio::test]
async fn practitioner_search_and_two_records_for_one_user() {
    let s = TestServer::start().await;
    let (status, _, b) = send(s.get(
        "/Practitioner?identifier=http://fhir.nhs.net/Id/sds-user-id|G22222226",
        SEARCH_PRACTITIONER,
    ))
    .await;
    assert_eq!(status, 200);
    let e = entries(&b);
    assert_eq!(e.len(), 2, "{b}");
    assert_ne!(e[0]["resource"]["id"], e[1]["resource"]["id"]);
    let p = &e[0]["resource"];
    assert_eq!(p["name"]["family"][0], "PARSONS");
    assert_eq!(
        p["practitionerRole"][0]["role"]["coding"][0]["system"],
        "http://fhir.nhs.net/ValueSet/sds-job-role-name-1"
    );
    assert_eq!(
        p["meta"]["profile"][0],
        "http://fhir.nhs.net/StructureDefinition/gpconnect-practitioner-1"
    );
    let (_, _, b) = send(s.get(
        "/Practitioner?identifier=http://fhir.nhs.net/Id/sds-user-id|G99999999",
        SEARCH_PRACTITIONER,
    ))
    .await;
    assert!(entries(&b).is_empty());
}

#[tokio::test]
async fn reads_and_unknown_ids() {
    let s = TestServer::start().await;
    let (status, h, p) = send(s.get("/Patient/2", READ_PATIENT)).await;
    assert_eq!(status, 200);
    assert_eq!(p["identifier"][0]["value"], "9476719931");
    assert_eq!(h["etag"], "W/\"1\"");
    let (status, _, o) = send(s.get("/Organization/1", READ_ORG)).await;
    assert_eq!(status, 200);
    assert_eq!(o["identifier"][0]["value"], "GPC001");
    let (status, _, pr) = send(s.get("/Practitioner/1", READ_PRACTITIONER)).await;
    assert_eq!(status, 200);
    assert_eq!(pr["identifier"][0]["value"], "G13579135");
    let long = "1".repeat(58);
    for id in ["999", "1.1445.23", "z.as.e", long.as_str()] {
        expect_error(
            s.get(&format!("/Patient/{id}"), READ_PATIENT),
            404,
            "PATIENT_NOT_FOUND",
        )
        .await;
        expect_error(
            s.get(&format!("/Organization/{id}"), READ_ORG),
            404,
            "ORGANISATION_NOT_FOUND",
        )
        .await;
        expect_error(
            s.get(&format!("/Practitioner/{id}"), READ_PRACTITIONER),
            404,
            "PRACTITIONER_NOT_FOUND",
        )
        .await;
    }
    // A patient held on another system is not found here.
    expect_error(s.get("/Patient/7", READ_PATIENT), 404, "PATIENT_NOT_FOUND").await;
}

/// The GP Connect error code of an answer in either format.
fn code_in(body: &str, format: gpc_fhir::Format) -> String {
    let outcome = gpc_fhir::parse_body(body.as_bytes(), format).unwrap();
    error_code(&outcome)
}

#[tokio::test]
async fn an_invalid_nhs_number_in_the_search_and_the_token_is_invalid_nhs_number() {
    // As the official suite sends it: the token's requested_record carries
    // the number searched for, invalid as it is.
    let s = TestServer::start().await;
    let formats = [
        ("json", gpc_fhir::Format::Json, JSON),
        ("xml", gpc_fhir::Format::Xml, XML),
    ];
    for nhs in ["9000000184", "947671993", "94767199311"] {
        for (param, format, mime) in formats {
            let query = format!("identifier={NHS_SYSTEM}|{nhs}&_format={param}");
            let resp = patient_search(&s, &query, nhs).send().await.unwrap();
            assert_eq!(resp.status(), 400, "{nhs} {param}");
            let content_type = resp.headers()["content-type"].to_str().unwrap().to_owned();
            assert!(content_type.starts_with(mime), "{content_type}");
            let body = resp.text().await.unwrap();
            assert_eq!(
                code_in(&body, format),
                "INVALID_NHS_NUMBER",
                "{nhs} {param}: {body}"
            );
        }
        // The parameter is refused first whatever number the token carries.
        expect_error(
            patient_search(&s, &format!("identifier={NHS_SYSTEM}|{nhs}"), "1234567890"),
            400,
            "INVALID_NHS_NUMBER",
        )
        .await;
    }
    // A valid search with an invalid number in the token: the token's error.
    let body = expect_error(
        patient_search(
            &s,
            &format!("identifier={NHS_SYSTEM}|9476719931"),
            "9000000184",
        ),
        400,
        "BAD_REQUEST",
    )
    .await;
    let diagnostics = body["issue"][0]["diagnostics"].as_str().unwrap();
    assert!(diagnostics.contains("requested_record"), "{diagnostics}");
    // So is a read, whose path carries no NHS number to compare.
    let jwt = Jwt::new("patient/*.read", patient_record("9000000184")).encode();
    expect_error(
        s.client
            .get(format!("{}/Patient/2", s.root("GPC001")))
            .headers(headers(READ_PATIENT, GPC001_ASID, &jwt)),
        400,
        "BAD_REQUEST",
    )
    .await;
}
