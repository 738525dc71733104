//! Spec §3.3: the JWT, every claim rule with its 400 or 422.

// A test crate sees every dev-dependency of its package, and uses only some.
#![allow(unused_crate_dependencies)]
// Helpers outside `#[test]` functions panic on purpose too: a failure is the test's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gpc_testkit::*;
use serde_json::{Value, json};

/// Sends GET /metadata to GPC001 with the given token text.
async fn metadata_with(s: &TestServer, authorization: &str) -> (u16, Value) {
    let mut h = headers(METADATA, GPC001_ASID, "x");
    h.insert("authorization", authorization.parse().unwrap());
    let (status, _, body) = send(
        s.client
            .get(format!("{}/metadata", s.root("GPC001")))
            .headers(h),
    )
    .await;
    (status, body)
}

async fn metadata_claims(s: &TestServer, claims: &Value) -> (u16, Value) {
    metadata_with(s, &format!("Bearer {}", encode_jwt(claims))).await
}

/// A change to valid claims.
type ClaimChange = Box<dyn Fn(&mut Value)>;

fn valid() -> Jwt {
    Jwt::new("organization/*.read", org_record("GPC001"))
}

fn assert_code(result: (u16, Value), status: u16, code: &str, case: &str) {
    assert_eq!(result.0, status, "{case}: {}", result.1);
    assert_eq!(error_code(&result.1), code, "{case}: {}", result.1);
}

#[tokio::test]
async fn valid_token_accepted() {
    let s = TestServer::start().await;
    let (status, body) = metadata_claims(&s, &valid().claims).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn malformed_tokens_are_bad_request() {
    let s = TestServer::start().await;
    let good = valid().encode();
    for auth in [
        good.clone(), // no "Bearer "
        format!("Basic {good}"),
        "Bearer".to_string(),
        "Bearer abc".to_string(),
        "Bearer a.b".to_string(),
        "Bearer !!!.###.".to_string(),
        format!("Bearer {}.{}.", "e30", "bm90IGpzb24"), // payload "not json"
    ] {
        assert_code(metadata_with(&s, &auth).await, 400, "BAD_REQUEST", &auth);
    }
}

#[tokio::test]
async fn each_missing_claim_is_bad_request() {
    let s = TestServer::start().await;
    for claim in [
        "iss",
        "sub",
        "aud",
        "iat",
        "exp",
        "reason_for_request",
        "requested_record",
        "requested_scope",
        "requesting_device",
        "requesting_organization",
        "requesting_practitioner",
    ] {
        let mut jwt = valid();
        jwt.claims.as_object_mut().unwrap().remove(claim);
        assert_code(
            metadata_claims(&s, &jwt.claims).await,
            400,
            "BAD_REQUEST",
            claim,
        );
    }
}

#[tokio::test]
async fn claim_values_are_checked() {
    let s = TestServer::start().await;
    let now = jiff::Timestamp::now().as_second();
    let cases: Vec<(&str, ClaimChange)> = vec![
        (
            "aud wrong",
            Box::new(|c| c["aud"] = json!("https://authorize.fhir.nhs.net/tokens")),
        ),
        (
            "exp-iat 299",
            // iat set too: the token's own iat is read from the clock when
            // it is made, and a second may have passed since `now`.
            Box::new(move |c| {
                c["iat"] = json!(now);
                c["exp"] = json!(now + 299);
            }),
        ),
        (
            "exp-iat 301",
            // iat set too: the token's own iat is read from the clock when
            // it is made, and a second may have passed since `now`.
            Box::new(move |c| {
                c["iat"] = json!(now);
                c["exp"] = json!(now + 301);
            }),
        ),
        (
            "exp-iat negative",
            // iat set too: the token's own iat is read from the clock when
            // it is made, and a second may have passed since `now`.
            Box::new(move |c| {
                c["iat"] = json!(now);
                c["exp"] = json!(now - 300);
            }),
        ),
        (
            "iat future",
            Box::new(move |c| {
                c["iat"] = json!(now + 60);
                c["exp"] = json!(now + 360);
            }),
        ),
        (
            "iat string",
            Box::new(move |c| c["iat"] = json!(now.to_string())),
        ),
        (
            "reason",
            Box::new(|c| c["reason_for_request"] = json!("secondaryuse")),
        ),
        (
            "scope unknown",
            Box::new(|c| c["requested_scope"] = json!("organization/*.delete")),
        ),
        (
            "scope for patient on metadata",
            Box::new(|c| c["requested_scope"] = json!("patient/*.read")),
        ),
        (
            "record is a Patient on metadata",
            Box::new(|c| c["requested_record"] = patient_record("9476719931")),
        ),
        (
            "record neither",
            Box::new(|c| c["requested_record"] = json!({"resourceType": "Device"})),
        ),
        (
            "org without identifier",
            Box::new(|c| {
                c["requesting_organization"]
                    .as_object_mut()
                    .unwrap()
                    .remove("identifier");
            }),
        ),
        (
            "org without ODS identifier",
            Box::new(|c| {
                c["requesting_organization"]["identifier"] =
                    json!([{"system": "http://example.org", "value": "x"}])
            }),
        ),
        (
            "org without name",
            Box::new(|c| {
                c["requesting_organization"]
                    .as_object_mut()
                    .unwrap()
                    .remove("name");
            }),
        ),
        (
            "practitioner without identifier",
            Box::new(|c| {
                c["requesting_practitioner"]
                    .as_object_mut()
                    .unwrap()
                    .remove("identifier");
            }),
        ),
        (
            "practitioner without SDS id",
            Box::new(|c| {
                c["requesting_practitioner"]["identifier"] =
                    json!([{"system": "localSystem", "value": "1"}])
            }),
        ),
        (
            "practitioner without name",
            Box::new(|c| {
                c["requesting_practitioner"]
                    .as_object_mut()
                    .unwrap()
                    .remove("name");
            }),
        ),
        (
            "practitioner without role",
            Box::new(|c| {
                c["requesting_practitioner"]
                    .as_object_mut()
                    .unwrap()
                    .remove("practitionerRole");
            }),
        ),
        (
            "role from another system",
            Box::new(|c| {
                c["requesting_practitioner"]["practitionerRole"][0]["role"]["coding"][0]["system"] =
                    json!("http://example.org/roles")
            }),
        ),
        (
            "sub not practitioner id",
            Box::new(|c| c["sub"] = json!("2")),
        ),
        (
            "device without model",
            Box::new(|c| {
                c["requesting_device"]
                    .as_object_mut()
                    .unwrap()
                    .remove("model");
            }),
        ),
    ];
    for (case, change) in cases {
        let mut jwt = valid();
        change(&mut jwt.claims);
        assert_code(
            metadata_claims(&s, &jwt.claims).await,
            400,
            "BAD_REQUEST",
            case,
        );
    }
}

#[tokio::test]
async fn invalid_fhir_resources_in_claims_are_unprocessable() {
    let s = TestServer::start().await;
    for claim in [
        "requesting_device",
        "requesting_organization",
        "requesting_practitioner",
    ] {
        let mut jwt = valid();
        jwt.claims[claim]["invalidField"] = json!("x");
        assert_code(
            metadata_claims(&s, &jwt.claims).await,
            422,
            "INVALID_RESOURCE",
            claim,
        );
        let mut jwt = valid();
        jwt.claims[claim]["resourceType"] = json!("Patient");
        assert_code(
            metadata_claims(&s, &jwt.claims).await,
            422,
            "INVALID_RESOURCE",
            claim,
        );
        let mut jwt = valid();
        jwt.claims[claim]["resourceType"] = json!("Nonsense");
        assert_code(
            metadata_claims(&s, &jwt.claims).await,
            422,
            "INVALID_RESOURCE",
            claim,
        );
    }
}

/// The answer to a token whose `iat` is `now + iat_offset` (and `exp` 300 s
/// later), where `now` is the server's clock when it checked the token:
/// only answers to requests that began and ended within one clock second
/// count, as the server reads the clock somewhere in between.
async fn answer_at(s: &TestServer, iat_offset: i64) -> (u16, Value) {
    for _ in 0..20 {
        let now = jiff::Timestamp::now().as_second();
        let mut jwt = valid();
        jwt.claims["iat"] = json!(now + iat_offset);
        jwt.claims["exp"] = json!(now + iat_offset + 300);
        let answer = metadata_claims(s, &jwt.claims).await;
        if jiff::Timestamp::now().as_second() == now {
            return answer;
        }
    }
    panic!("no request fitted within one clock second in 20 tries");
}

#[tokio::test]
async fn clock_skew_is_five_seconds_each_way() {
    let s = TestServer::start().await;
    let (status, body) = answer_at(&s, 5).await;
    assert_eq!(status, 200, "iat 5 s in the future: {body}");
    let refused = answer_at(&s, 6).await;
    assert_code(refused.clone(), 400, "BAD_REQUEST", "iat 6 s in the future");
    assert!(
        refused.1.to_string().contains("'iat' is in the future"),
        "{}",
        refused.1
    );
    // exp 5 s, then 6 s, in the past.
    let (status, body) = answer_at(&s, -305).await;
    assert_eq!(status, 200, "exp 5 s ago: {body}");
    let refused = answer_at(&s, -306).await;
    assert_code(refused.clone(), 400, "BAD_REQUEST", "exp 6 s ago");
    assert!(refused.1.to_string().contains("expired"), "{}", refused.1);
}

#[tokio::test]
async fn patient_search_record_must_be_the_searched_patient() {
    let s = TestServer::start().await;
    let url = format!(
        "{}/Patient?identifier={NHS_SYSTEM}|9476719931",
        s.root("GPC001")
    );
    let jwt = Jwt::new("patient/*.read", patient_record("9476719915")).encode();
    expect_error(
        s.client
            .get(&url)
            .headers(headers(SEARCH_PATIENT, GPC001_ASID, &jwt)),
        400,
        "BAD_REQUEST",
    )
    .await;
    let jwt = Jwt::new("organization/*.read", org_record("GPC001")).encode();
    expect_error(
        s.client
            .get(&url)
            .headers(headers(SEARCH_PATIENT, GPC001_ASID, &jwt)),
        400,
        "BAD_REQUEST",
    )
    .await;
    let jwt = Jwt::new("patient/*.read", patient_record("9476719931")).encode();
    let (status, _, body) = send(s.client.get(&url).headers(headers(
        SEARCH_PATIENT,
        GPC001_ASID,
        &jwt,
    )))
    .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn create_task_scopes() {
    let s = TestServer::start().await;
    let url = format!("{}/Order", s.root("GPC001"));
    let post = |scope: &str, record: Value| {
        let jwt = Jwt::new(scope, record).encode();
        s.client
            .post(&url)
            .headers(headers(CREATE, GPC001_ASID, &jwt))
            .header("content-type", JSON)
            .body(dawes_order().to_string())
    };
    // Accepted: organisation write for this provider, or patient write for the subject.
    let (status, _, body) = send(post("organization/*.write", org_record("GPC001"))).await;
    assert_eq!(status, 201, "{body}");
    let (status, _, body) = send(post("patient/*.write", patient_record("9476719931"))).await;
    assert_eq!(status, 201, "{body}");
    // Refused: a read scope, another organisation, another patient, a mismatched record.
    for (scope, record) in [
        ("organization/*.read", org_record("GPC001")),
        ("patient/*.read", patient_record("9476719931")),
        ("organization/*.write", org_record("R1A14")),
        ("patient/*.write", patient_record("9476719915")),
        ("patient/*.write", patient_record("9000000184")),
        ("patient/*.write", org_record("GPC001")),
    ] {
        expect_error(post(scope, record), 400, "BAD_REQUEST").await;
    }
}
