//! Spec §3.4 and §3.5: content types, response format, XML both ways, gzip,
//! ETag and If-None-Match.

// A test crate sees every dev-dependency of its package, and uses only some.
#![allow(unused_crate_dependencies)]
// Helpers outside `#[test]` functions panic on purpose too: a failure is the test's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gpc_testkit::*;
use std::io::Read;

async fn raw(req: reqwest::RequestBuilder) -> (u16, reqwest::header::HeaderMap, String) {
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.text().await.unwrap())
}

#[tokio::test]
async fn format_param_beats_accept_beats_content_type() {
    let s = TestServer::start().await;
    let (_, h, body) = raw(s
        .get("/metadata?_format=xml", METADATA)
        .header("accept", JSON))
    .await;
    assert_eq!(h["content-type"], "application/xml+fhir;charset=utf-8");
    assert!(
        body.contains("<Conformance xmlns=\"http://hl7.org/fhir\">"),
        "{body}"
    );
    let (_, h, _) = raw(s
        .get("/metadata?_format=application/json%2Bfhir", METADATA)
        .header("accept", XML))
    .await;
    assert_eq!(h["content-type"], "application/json+fhir;charset=utf-8");
    let (_, h, _) = raw(s.get("/metadata?_format=application/xml+fhir", METADATA)).await;
    assert_eq!(h["content-type"], "application/xml+fhir;charset=utf-8");
    let (_, h, _) = raw(s
        .get("/metadata", METADATA)
        .header("accept", "application/xml+fhir;charset=utf-8"))
    .await;
    assert_eq!(h["content-type"], "application/xml+fhir;charset=utf-8");
    let (_, h, _) = raw(s.get("/metadata", METADATA)).await;
    assert_eq!(h["content-type"], "application/json+fhir;charset=utf-8");
}

#[tokio::test]
async fn unsupported_types_are_415_in_json() {
    let s = TestServer::start().await;
    for accept in ["text/xml", "application/json", "text/html"] {
        let (status, h, body) = raw(s.get("/metadata", METADATA).header("accept", accept)).await;
        assert_eq!(status, 415, "{accept}");
        assert_eq!(h["content-type"], "application/json+fhir;charset=utf-8");
        assert!(body.contains("OperationOutcome"));
    }
    expect_error(
        s.get("/metadata?_format=text/xml", METADATA),
        415,
        "BAD_REQUEST",
    )
    .await;
    for ct in [
        "application/json",
        "application/xml",
        "text/xml",
        "text/plain",
    ] {
        let req = s.post_order_as("GPC001", GPC001_ASID, dawes_order().to_string(), ct);
        let body = expect_error(req, 415, "BAD_REQUEST").await;
        assert_eq!(body["issue"][0]["code"], "not-supported");
    }
    // A body without any Content-Type.
    let jwt = Jwt::new("organization/*.write", org_record("GPC001")).encode();
    let req = s
        .client
        .post(format!("{}/Order", s.root("GPC001")))
        .headers(headers(CREATE, GPC001_ASID, &jwt))
        .body(dawes_order().to_string());
    expect_error(req, 415, "BAD_REQUEST").await;
}

/// Every GET of the provider, with the interaction it needs.
fn every_get() -> Vec<(String, &'static str)> {
    vec![
        ("/metadata".into(), METADATA),
        ("/Patient/2".into(), READ_PATIENT),
        (
            format!("/Patient?identifier={NHS_SYSTEM}|9476719931"),
            SEARCH_PATIENT,
        ),
        ("/Organization/1".into(), READ_ORG),
        (
            format!("/Organization?identifier={ODS_SYSTEM}|GPC001"),
            SEARCH_ORG,
        ),
        ("/Practitioner/1".into(), READ_PRACTITIONER),
        (
            "/Practitioner?identifier=http://fhir.nhs.net/Id/sds-user-id|G13579135".into(),
            SEARCH_PRACTITIONER,
        ),
    ]
}

#[tokio::test]
async fn a_content_type_that_is_not_fhir_is_415_on_a_get_too() {
    let s = TestServer::start().await;
    for (path, interaction) in every_get() {
        for ct in [
            "application/json",
            "application/xml",
            "text/xml",
            "text/plain",
            "application/json+fhir;charset=latin1",
        ] {
            let req = s.get(&path, interaction).header("content-type", ct);
            let body = expect_error(req, 415, "BAD_REQUEST").await;
            assert_eq!(body["issue"][0]["code"], "not-supported", "{path} {ct}");
            assert!(
                body["issue"][0]["diagnostics"]
                    .as_str()
                    .unwrap()
                    .contains("Content-Type"),
                "{path} {ct}: {body}"
            );
        }
        // The two FHIR types are fine, and without Accept or _format the
        // answer follows the Content-Type.
        let (status, h, body) = raw(s.get(&path, interaction).header("content-type", JSON)).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(h["content-type"], "application/json+fhir;charset=utf-8");
        let (status, h, body) = raw(s
            .get(&path, interaction)
            .header("content-type", "application/xml+fhir;charset=utf-8"))
        .await;
        assert_eq!(status, 200, "{path}: {body}");
        assert_eq!(h["content-type"], "application/xml+fhir;charset=utf-8");
    }
}

#[tokio::test]
async fn errors_follow_the_negotiated_format() {
    let s = TestServer::start().await;
    let (status, h, body) = raw(s.get("/Patient/999?_format=xml", READ_PATIENT)).await;
    assert_eq!(status, 404);
    assert_eq!(h["content-type"], "application/xml+fhir;charset=utf-8");
    assert!(
        body.contains("<OperationOutcome xmlns=\"http://hl7.org/fhir\">"),
        "{body}"
    );
    assert!(
        body.contains("<code value=\"PATIENT_NOT_FOUND\"/>"),
        "{body}"
    );
}

#[tokio::test]
async fn xml_order_is_accepted_and_answered_in_xml() {
    let s = TestServer::start().await;
    let today = today();
    let xml = format!(
        r##"<Order xmlns="http://hl7.org/fhir">
  <meta><profile value="http://fhir.nhs.net/StructureDefinition/gpconnect-task-order-1"/></meta>
  <contained>
    <Basic>
      <id value="t1"/>
      <meta><profile value="http://fhir.nhs.net/StructureDefinition/gpconnect-task-description-basic-1"/></meta>
      <text><status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml"><p>Blood results &amp; <b>follow-up</b></p></div></text>
      <code><coding><system value="http://fhir.nhs.net/ValueSet/gpconnect-task-narrative-1"/><code value="Task Narrative"/></coding></code>
    </Basic>
  </contained>
  <identifier><system value="urn:ietf:rfc:3986"/><value value="urn:uuid:{}"/></identifier>
  <date value="{today}"/>
  <subject><reference value="Patient/2"/></subject>
  <source><reference value="Organization/5"/></source>
  <target><reference value="Organization/1"/></target>
  <reasonCodeableConcept><coding><system value="http://fhir.nhs.net/ValueSet/gpconnect-task-type-1"/><code value="1"/></coding></reasonCodeableConcept>
  <detail><reference value="#t1"/></detail>
</Order>"##,
        uuid::Uuid::new_v4()
    );
    let req = s.post_order_as(
        "GPC001",
        GPC001_ASID,
        xml,
        "application/xml+fhir;charset=utf-8",
    );
    let (status, h, body) = raw(req).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(h["content-type"], "application/xml+fhir;charset=utf-8");
    assert!(
        body.starts_with("<Order xmlns=\"http://hl7.org/fhir\">")
            || body.contains("<Order xmlns=\"http://hl7.org/fhir\">")
    );
    // The narrative div is kept intact, in the XHTML namespace.
    assert!(
        body.contains(r#"<div xmlns="http://www.w3.org/1999/xhtml"><p>Blood results &amp; <b>follow-up</b></p></div>"#),
        "{body}"
    );
    // Elements in definition order: id, meta, contained, identifier, date, subject.
    let pos = |needle: &str| {
        body.find(needle)
            .unwrap_or_else(|| panic!("{needle} in {body}"))
    };
    assert!(pos("<id value=") < pos("<meta>"));
    assert!(pos("<contained>") < pos("<identifier>"));
    assert!(pos("<identifier>") < pos("<date value="));
    assert!(pos("<date value=") < pos("<subject>"));
    assert!(pos("<target>") < pos("<reasonCodeableConcept>"));
    assert!(pos("<reasonCodeableConcept>") < pos("<detail>"));
}

#[tokio::test]
async fn malformed_xml_and_dtds_are_refused() {
    let s = TestServer::start().await;
    for body in [
        "<Order xmlns=\"http://hl7.org/fhir\"><date value=\"x\"></Order>".to_string(),
        "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\"><!ENTITY lol2 \"&lol;&lol;\">]><Order xmlns=\"http://hl7.org/fhir\"><date value=\"&lol2;\"/></Order>".to_string(),
        "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]><Order xmlns=\"http://hl7.org/fhir\"><date value=\"&xxe;\"/></Order>".to_string(),
        "not xml at all".to_string(),
    ] {
        let req = s.post_order_as("GPC001", GPC001_ASID, body.clone(), XML);
        let (status, h, text) = raw(req).await;
        assert_eq!(status, 400, "{body}: {text}");
        // Answered in the request's format, as an OperationOutcome.
        assert_eq!(h["content-type"], "application/xml+fhir;charset=utf-8");
        let outcome = gpc_fhir::parse_body(text.as_bytes(), gpc_fhir::Format::Xml).unwrap();
        assert_eq!(outcome["resourceType"], "OperationOutcome", "{text}");
        assert_eq!(error_code(&outcome), "BAD_REQUEST", "{body}: {text}");
        assert!(!text.contains("root:"), "no file content leaks");
    }
}

#[tokio::test]
async fn every_resource_is_served_as_xml() {
    let s = TestServer::start().await;
    let cases = [
        (
            "/Patient/2",
            READ_PATIENT,
            "<Patient xmlns=\"http://hl7.org/fhir\">",
        ),
        (
            "/Organization/1",
            READ_ORG,
            "<Organization xmlns=\"http://hl7.org/fhir\">",
        ),
        (
            "/Practitioner/1",
            READ_PRACTITIONER,
            "<Practitioner xmlns=\"http://hl7.org/fhir\">",
        ),
        (
            "/Organization?identifier=http://fhir.nhs.net/Id/ods-organization-code|GPC001",
            SEARCH_ORG,
            "<Bundle xmlns=\"http://hl7.org/fhir\">",
        ),
    ];
    for (path, interaction, root) in cases {
        let (status, _, body) = raw(s.get(path, interaction).header("accept", XML)).await;
        assert_eq!(status, 200, "{path}: {body}");
        assert!(body.contains(root), "{path}: {body}");
        // Parses back to the same resource as the JSON answer.
        let from_xml = gpc_fhir::parse_body(body.as_bytes(), gpc_fhir::Format::Xml).unwrap();
        let (_, _, json) = send(s.get(path, interaction)).await;
        if json["resourceType"] == "Bundle" {
            assert_eq!(from_xml["entry"], json["entry"]);
        } else {
            assert_eq!(from_xml, json, "{path}");
        }
    }
    // The NHS number identifier carries its verification-status extension in XML.
    let (_, _, body) = raw(s.get("/Patient/2", READ_PATIENT).header("accept", XML)).await;
    assert!(body.contains("<extension url=\"http://fhir.nhs.net/StructureDefinition/extension-nhs-number-verification-status-1\">"), "{body}");
    assert!(body.contains("<birthDate value=\"1952-05-31\"/>"));
}

#[tokio::test]
async fn gzip_is_honoured() {
    let s = TestServer::start().await;
    let resp = s
        .get("/metadata", METADATA)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-encoding"], "gzip");
    let bytes = resp.bytes().await.unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(&bytes[..])
        .read_to_string(&mut text)
        .unwrap();
    assert!(text.contains("\"Conformance\""));
}

#[tokio::test]
async fn etag_and_if_none_match() {
    let s = TestServer::start().await;
    let (status, h, _) = raw(s.get("/Patient/2", READ_PATIENT)).await;
    assert_eq!(status, 200);
    let etag = h["etag"].to_str().unwrap().to_owned();
    assert_eq!(etag, "W/\"1\"");
    let (status, h, body) = raw(s
        .get("/Patient/2", READ_PATIENT)
        .header("if-none-match", &etag))
    .await;
    assert_eq!(status, 304);
    assert!(body.is_empty());
    assert_eq!(h["cache-control"], "no-store, no-cache");
    let (status, _, _) = raw(s
        .get("/Patient/2", READ_PATIENT)
        .header("if-none-match", "W/\"2\""))
    .await;
    assert_eq!(status, 200);
}
