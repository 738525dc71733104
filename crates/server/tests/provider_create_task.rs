//! Spec §4: Create Task, every check of §4.2 in order, §4.3 on success,
//! idempotency and the inbox.

// A test crate sees every dev-dependency of its package, and uses only some.
#![allow(unused_crate_dependencies)]
// Helpers outside `#[test]` functions panic on purpose too: a failure is the test's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gpc_testkit::*;
use serde_json::{Value, json};

#[tokio::test]
async fn created_with_location_etag_meta_and_provider_identifier() {
    let s = TestServer::start().await;
    let order = dawes_order();
    let (status, h, body) = send(s.post_order("GPC001", GPC001_ASID, &order)).await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().expect("server-assigned id").to_owned();
    assert_eq!(body["meta"]["versionId"], "1");
    assert!(body["meta"]["lastUpdated"].is_string());
    assert_eq!(
        body["meta"]["profile"][0],
        "http://fhir.nhs.net/StructureDefinition/gpconnect-task-order-1"
    );
    assert_eq!(
        h["location"].to_str().unwrap(),
        format!("{}/Order/{id}/_history/1", s.root("GPC001"))
    );
    assert_eq!(h["etag"], "W/\"1\"");
    assert!(h.contains_key("last-modified"));
    // The consumer's identifier is kept and a provider urn:uuid is added.
    let ids = body["identifier"].as_array().unwrap();
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0], order["identifier"][0]);
    assert_eq!(ids[1]["system"], "urn:ietf:rfc:3986");
    assert!(ids[1]["value"].as_str().unwrap().starts_with("urn:uuid:"));
    assert_ne!(ids[1], ids[0]);
    // Submitted content kept, references relative.
    for key in [
        "contained",
        "date",
        "subject",
        "source",
        "target",
        "reasonCodeableConcept",
        "detail",
    ] {
        assert_eq!(body[key], order[key], "{key}");
    }
}

#[tokio::test]
async fn prefer_return_minimal_has_no_body() {
    let s = TestServer::start().await;
    let (status, h, body) = send(
        s.post_order("GPC001", GPC001_ASID, &dawes_order())
            .header("prefer", "return=minimal"),
    )
    .await;
    assert_eq!(status, 201);
    assert_eq!(body, Value::Null);
    assert!(h.contains_key("location"));
}

#[tokio::test]
async fn body_errors_are_bad_request() {
    let s = TestServer::start().await;
    for body in [
        "",
        "{",
        "[1,2]",
        "null",
        "{\"resourceType\":\"Patient\"}",
        "{\"resourceType\":\"Bundle\",\"type\":\"collection\"}",
    ] {
        let req = s.post_order_as("GPC001", GPC001_ASID, body.to_string(), JSON);
        expect_error(req, 400, "BAD_REQUEST").await;
    }
    let mut order = dawes_order();
    order["id"] = json!("123");
    let body = expect_error(
        s.post_order("GPC001", GPC001_ASID, &order),
        422,
        "BAD_REQUEST",
    )
    .await;
    assert!(
        body["issue"][0]["diagnostics"]
            .as_str()
            .unwrap()
            .contains("id")
    );
}

/// A named change to a valid Order and the GP Connect code it must produce
/// (or, for mandatory content, the element its diagnostics must name).
type Case = (&'static str, Box<dyn Fn(&mut Value)>, &'static str);

fn invalid_orders() -> Vec<Case> {
    vec![
        // Step 3: structure.
        (
            "unknown element",
            Box::new(|o| o["invalidField"] = json!("x")),
            "INVALID_RESOURCE",
        ),
        (
            "unknown element in Basic",
            Box::new(|o| o["contained"][0]["invalidField"] = json!(1)),
            "INVALID_RESOURCE",
        ),
        (
            "wrong JSON type",
            Box::new(|o| o["date"] = json!(20261125)),
            "INVALID_RESOURCE",
        ),
        (
            "array for single",
            Box::new(|o| o["subject"] = json!([{"reference": "Patient/2"}])),
            "INVALID_RESOURCE",
        ),
        (
            "single for array",
            Box::new(|o| o["detail"] = json!({"reference": "#x"})),
            "INVALID_RESOURCE",
        ),
        (
            "malformed date",
            Box::new(|o| o["date"] = json!("2026-13-45")),
            "INVALID_RESOURCE",
        ),
        (
            "malformed reference",
            Box::new(|o| o["subject"]["reference"] = json!("Patient 2")),
            "INVALID_RESOURCE",
        ),
        // Step 4: profiles.
        (
            "no order profile",
            Box::new(|o| {
                o.as_object_mut().unwrap().remove("meta");
            }),
            "INVALID_RESOURCE",
        ),
        (
            "wrong order profile",
            Box::new(|o| o["meta"]["profile"] = json!(["http://example.org/x"])),
            "INVALID_RESOURCE",
        ),
        (
            "no basic profile",
            Box::new(|o| {
                o["contained"][0].as_object_mut().unwrap().remove("meta");
            }),
            "INVALID_RESOURCE",
        ),
        // Step 6: references.
        (
            "unknown patient",
            Box::new(|o| o["subject"]["reference"] = json!("Patient/99")),
            "REFERENCE_NOT_FOUND",
        ),
        (
            "patient of another system",
            Box::new(|o| o["subject"]["reference"] = json!("Patient/7")),
            "REFERENCE_NOT_FOUND",
        ),
        (
            "subject not a patient",
            Box::new(|o| o["subject"]["reference"] = json!("Organization/1")),
            "REFERENCE_NOT_FOUND",
        ),
        (
            "unknown source",
            Box::new(|o| o["source"]["reference"] = json!("Organization/999")),
            "REFERENCE_NOT_FOUND",
        ),
        (
            "unknown target",
            Box::new(|o| o["target"]["reference"] = json!("Organization/999")),
            "REFERENCE_NOT_FOUND",
        ),
        (
            "target another organisation",
            Box::new(|o| o["target"]["reference"] = json!("Organization/2")),
            "INVALID_RESOURCE",
        ),
        // Step 7: business rules.
        (
            "date yesterday",
            Box::new(|o| o["date"] = json!(shift_today(-1))),
            "INVALID_RESOURCE",
        ),
        (
            "date tomorrow",
            Box::new(|o| o["date"] = json!(shift_today(1))),
            "INVALID_RESOURCE",
        ),
        (
            "partial date",
            Box::new(|o| o["date"] = json!(&today()[..7])),
            "INVALID_RESOURCE",
        ),
    ]
}

/// Spec §4.2 step 5: each missing or wrong piece of mandatory content, and
/// the element its diagnostics must name (the narrative's XHTML is checked
/// with the structure, which names it `Order.contained[0].text.div`; the
/// other narrative rules name it `Basic.text.div`).
fn mandatory_content() -> Vec<Case> {
    let div = |o: &mut Value, div: String| o["contained"][0]["text"]["div"] = json!(div);
    let xhtml = |inner: &str| format!("<div xmlns=\"http://www.w3.org/1999/xhtml\">{inner}</div>");
    vec![
        (
            "no date",
            Box::new(|o| {
                o.as_object_mut().unwrap().remove("date");
            }),
            "Order.date",
        ),
        (
            "no subject",
            Box::new(|o| {
                o.as_object_mut().unwrap().remove("subject");
            }),
            "Order.subject",
        ),
        (
            "subject without a reference",
            Box::new(|o| o["subject"] = json!({"display": "Mrs Minnie DAWES"})),
            "Order.subject.reference",
        ),
        (
            "no source",
            Box::new(|o| {
                o.as_object_mut().unwrap().remove("source");
            }),
            "Order.source",
        ),
        (
            "no target",
            Box::new(|o| {
                o.as_object_mut().unwrap().remove("target");
            }),
            "Order.target",
        ),
        (
            "no reason",
            Box::new(|o| {
                o.as_object_mut().unwrap().remove("reasonCodeableConcept");
            }),
            "Order.reasonCodeableConcept",
        ),
        (
            "reason code 3",
            Box::new(|o| o["reasonCodeableConcept"]["coding"][0]["code"] = json!("3")),
            "Order.reasonCodeableConcept.coding.code",
        ),
        (
            "reason other system",
            Box::new(|o| {
                o["reasonCodeableConcept"]["coding"][0]["system"] = json!("http://snomed.info/sct")
            }),
            "Order.reasonCodeableConcept.coding.system",
        ),
        (
            "two reason codings",
            Box::new(|o| {
                let c = o["reasonCodeableConcept"]["coding"][0].clone();
                o["reasonCodeableConcept"]["coding"] = json!([c.clone(), c]);
            }),
            "Order.reasonCodeableConcept",
        ),
        (
            "no detail",
            Box::new(|o| {
                o.as_object_mut().unwrap().remove("detail");
            }),
            "Order.detail",
        ),
        (
            "two details",
            Box::new(
                |o| o["detail"] = json!([{"reference": "#ad6a2e86-37a8-43c9-b0ae-f2adcff4de3a"}, {"reference": "#ad6a2e86-37a8-43c9-b0ae-f2adcff4de3a"}]),
            ),
            "Order.detail",
        ),
        (
            "detail not local",
            Box::new(|o| o["detail"][0]["reference"] = json!("Basic/1")),
            "Order.detail.reference",
        ),
        (
            "detail to missing contained",
            Box::new(|o| o["detail"][0]["reference"] = json!("#nothere")),
            "Order.detail.reference",
        ),
        (
            "basic code wrong",
            Box::new(|o| o["contained"][0]["code"]["coding"][0]["code"] = json!("Other")),
            "Basic.code",
        ),
        (
            "no narrative",
            Box::new(|o| {
                o["contained"][0].as_object_mut().unwrap().remove("text");
            }),
            "text.div",
        ),
        (
            "div not xhtml",
            Box::new(move |o| div(o, "<div>no namespace</div>".into())),
            "text.div",
        ),
        (
            "div malformed",
            Box::new(move |o| div(o, xhtml("<p>open"))),
            "text.div",
        ),
        (
            "div empty text",
            Box::new(move |o| div(o, xhtml("  "))),
            "text.div",
        ),
        (
            "div script",
            Box::new(move |o| div(o, xhtml("x<script>alert(1)</script>"))),
            "text.div",
        ),
        (
            "text too long",
            Box::new(move |o| div(o, xhtml(&"a".repeat(10_001)))),
            "text.div",
        ),
    ]
}

fn shift_today(days: i64) -> String {
    let d: jiff::civil::Date = today().parse().unwrap();
    d.checked_add(jiff::Span::new().days(days))
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn every_invalid_order_gets_its_code_and_nothing_is_stored() {
    let s = TestServer::start().await;
    for (case, change, code) in invalid_orders() {
        let mut order = dawes_order();
        change(&mut order);
        let (status, _, body) = send(s.post_order("GPC001", GPC001_ASID, &order)).await;
        assert_eq!(status, 422, "{case}: {body}");
        assert_eq!(error_code(&body), code, "{case}: {body}");
    }
    for (case, change, element) in mandatory_content() {
        let mut order = dawes_order();
        change(&mut order);
        let (status, _, body) = send(s.post_order("GPC001", GPC001_ASID, &order)).await;
        assert_eq!(status, 422, "{case}: {body}");
        assert_eq!(error_code(&body), "INVALID_RESOURCE", "{case}: {body}");
        let diagnostics = body["issue"][0]["diagnostics"].as_str().unwrap();
        assert!(
            diagnostics.contains(element),
            "{case}: the diagnostics must name {element}: {diagnostics}"
        );
    }
    let store = gpc_store::SqliteStore::open(s.dir.path()).unwrap();
    use gpc_store::Store;
    assert_eq!(
        store
            .count_tasks(&gpc_domain::OdsCode::parse("GPC001").unwrap())
            .await
            .unwrap(),
        0
    );
}

#[tokio::test]
async fn date_may_be_a_datetime_of_today() {
    let s = TestServer::start().await;
    let mut order = dawes_order();
    let now = jiff::Timestamp::now().to_zoned(jiff::tz::TimeZone::get("Europe/London").unwrap());
    order["date"] = json!(now.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string());
    let (status, _, body) = send(s.post_order("GPC001", GPC001_ASID, &order)).await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn business_rules() {
    let s = TestServer::start().await;
    // EAVE (Patient/12) at R1A17: verification status 02.
    let eave = order("12", "5", "4", "2", "Review");
    expect_error(
        s.post_order("R1A17", R1A17_ASID, &eave),
        422,
        "INVALID_PATIENT_DEMOGRAPHICS",
    )
    .await;
    // JOHNSON (Patient/6) at GPC001: deceased.
    let johnson = order("6", "5", "1", "2", "Review");
    expect_error(
        s.post_order("GPC001", GPC001_ASID, &johnson),
        422,
        "INVALID_PATIENT_DEMOGRAPHICS",
    )
    .await;
    // HOPLEY (Patient/13) left GPC001: the record is held, the registration ended.
    let hopley = order("13", "5", "1", "2", "Review");
    expect_error(
        s.post_order("GPC001", GPC001_ASID, &hopley),
        422,
        "NO_RELATIONSHIP",
    )
    .await;
    // The same patient at his current practice is fine.
    let hopley_now = order("13", "5", "4", "1", "Review");
    let (status, _, body) = send(s.post_order("R1A17", R1A17_ASID, &hopley_now)).await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn hub_receives_for_federated_patients() {
    let s = TestServer::start().await;
    // GPC001 → Y00001 about MACKIN (registered at R1A14, held by the hub).
    let o = order("7", "1", "5", "1", "Seen at the hub");
    let (status, _, body) = send(s.post_order("Y00001", Y00001_ASID, &o)).await;
    assert_eq!(status, 201, "{body}");
    // SHAIN (R3B46) is not held by the hub.
    let o = order("14", "1", "5", "1", "x");
    expect_error(
        s.post_order("Y00001", Y00001_ASID, &o),
        422,
        "REFERENCE_NOT_FOUND",
    )
    .await;
}

#[tokio::test]
async fn a_repeat_returns_the_stored_task_with_200() {
    let s = TestServer::start().await;
    let order = dawes_order();
    let (status, _, first) = send(s.post_order("GPC001", GPC001_ASID, &order)).await;
    assert_eq!(status, 201);
    let (status, h, again) = send(s.post_order("GPC001", GPC001_ASID, &order)).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["id"], first["id"]);
    assert_eq!(again["meta"]["versionId"], first["meta"]["versionId"]);
    assert_eq!(again, first);
    assert!(
        h["location"]
            .to_str()
            .unwrap()
            .contains(first["id"].as_str().unwrap())
    );
    let store = gpc_store::SqliteStore::open(s.dir.path()).unwrap();
    use gpc_store::Store;
    assert_eq!(
        store
            .count_tasks(&gpc_domain::OdsCode::parse("GPC001").unwrap())
            .await
            .unwrap(),
        1
    );
}

#[tokio::test]
async fn same_identifier_from_another_sender_is_another_task() {
    let s = TestServer::start().await;
    let order = dawes_order();
    let (status, _, _) = send(s.post_order("GPC001", GPC001_ASID, &order)).await;
    assert_eq!(status, 201);
    let mut h = headers(
        CREATE,
        GPC001_ASID,
        &Jwt::new("organization/*.write", org_record("GPC001")).encode(),
    );
    h.insert("ssp-from", "200000000371".parse().unwrap());
    let (status, _, body) = send(
        s.client
            .post(format!("{}/Order", s.root("GPC001")))
            .headers(h)
            .header("content-type", JSON)
            .body(order.to_string()),
    )
    .await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn if_none_exist_is_a_conditional_create() {
    let s = TestServer::start().await;
    let key = format!("urn:uuid:{}", uuid::Uuid::new_v4());
    let condition = format!("identifier=urn:ietf:rfc:3986|{key}");
    let mut first = dawes_order();
    first.as_object_mut().unwrap().remove("identifier");
    let (status, _, created) = send(
        s.post_order("GPC001", GPC001_ASID, &first)
            .header("if-none-exist", &condition),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    // Another body with no identifier of its own, the same condition: the stored one.
    let (status, _, again) = send(
        s.post_order("GPC001", GPC001_ASID, &first)
            .header("if-none-exist", &condition),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(again["id"], created["id"]);
    expect_error(
        s.post_order("GPC001", GPC001_ASID, &first)
            .header("if-none-exist", "nonsense"),
        400,
        "BAD_REQUEST",
    )
    .await;
}

#[tokio::test]
async fn concurrent_duplicates_store_exactly_one_task() {
    let s = TestServer::start().await;
    let order = dawes_order();
    let mut handles = Vec::new();
    for _ in 0..40 {
        let req = s.post_order("GPC001", GPC001_ASID, &order);
        handles.push(tokio::spawn(async move { send(req).await }));
    }
    let mut created = 0;
    let mut ids = std::collections::HashSet::new();
    for h in handles {
        let (status, _, body) = h.await.unwrap();
        assert!(status == 201 || status == 200, "{status}: {body}");
        if status == 201 {
            created += 1;
        }
        ids.insert(body["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(created, 1);
    assert_eq!(ids.len(), 1);
    let store = gpc_store::SqliteStore::open(s.dir.path()).unwrap();
    use gpc_store::Store;
    assert_eq!(
        store
            .count_tasks(&gpc_domain::OdsCode::parse("GPC001").unwrap())
            .await
            .unwrap(),
        1
    );
}

#[tokio::test]
async fn accepted_task_is_in_the_inbox_with_provenance() {
    let s = TestServer::start().await;
    let order = order("2", "5", "1", "1", "Seen today &amp; <b>well</b>");
    let sent = headers(
        CREATE,
        GPC001_ASID,
        &Jwt::new("organization/*.write", org_record("GPC001")).encode(),
    );
    let trace_id = sent["ssp-traceid"].to_str().unwrap().to_owned();
    let (status, _, body) = send(
        s.client
            .post(format!("{}/Order", s.root("GPC001")))
            .headers(sent)
            .header("content-type", JSON)
            .body(order.to_string()),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let store = gpc_store::SqliteStore::open(s.dir.path()).unwrap();
    use gpc_store::Store;
    let inbox = store
        .inbox(&gpc_domain::OdsCode::parse("GPC001").unwrap(), 10, None)
        .await
        .unwrap();
    assert_eq!(inbox.len(), 1);
    let t = &inbox[0];
    assert_eq!(t.id, body["id"].as_str().unwrap());
    assert_eq!(t.nhs_number.as_digits(), "9476719931");
    assert_eq!(t.patient_name, "Mrs Minnie DAWES");
    assert_eq!(t.task_type, gpc_domain::task::TaskType::InformationOnly);
    assert_eq!(t.text, "Seen today & well");
    assert_eq!(t.provenance.organisation_ods, "Y00001");
    assert_eq!(t.provenance.practitioner_sds_id, "G11111116");
    assert_eq!(t.provenance.practitioner_name, "Mrs Melissa PARSONS");
    assert_eq!(t.provenance.role_code, "R0260");
    assert_eq!(t.provenance.sender_asid, Y00001_ASID);
    assert_eq!(t.provenance.trace_id, trace_id);
    // Tenant isolation.
    assert!(
        store
            .inbox(&gpc_domain::OdsCode::parse("R1A14").unwrap(), 10, None)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn oversized_body_is_413() {
    let s = TestServer::start().await;
    let body = format!(
        "{{\"resourceType\":\"Order\",\"x\":\"{}\"}}",
        "a".repeat(2 * 1024 * 1024)
    );
    let (status, _, out) = send(s.post_order_as("GPC001", GPC001_ASID, body, JSON)).await;
    assert_eq!(status, 413, "{out}");
    assert_eq!(out["resourceType"], "OperationOutcome");
}

/// A request that breaks the rules of two steps of §4.2 at once, and the
/// answer of the earlier step: status, code and what its diagnostics say
/// (several steps share a code, so the diagnostics tell them apart).
struct TwoRules {
    steps: &'static str,
    /// The token's scope and requested_record.
    token: (&'static str, Value),
    content_type: &'static str,
    order: Box<dyn Fn(&mut Value)>,
    status: u16,
    code: &'static str,
    says: &'static str,
}

fn two_rules_at_once() -> Vec<TwoRules> {
    let org_write = || ("organization/*.write", org_record("GPC001"));
    // MCVEY, a patient of GPC001 who is not the Order's subject (DAWES).
    let another_patient = || ("patient/*.write", patient_record("9476719915"));
    // MACKIN, held at R1A14 and the hub, not at GPC001.
    let not_held_here = || ("patient/*.write", patient_record("9476719966"));
    let remove =
        |key: &'static str| move |o: &mut Value| drop(o.as_object_mut().unwrap().remove(key));
    vec![
        TwoRules {
            steps: "1 (content type) and 2 (not an Order)",
            token: org_write(),
            content_type: "application/json",
            order: Box::new(|o| *o = json!({"resourceType": "Patient"})),
            status: 415,
            code: "BAD_REQUEST",
            says: "Content-Type",
        },
        TwoRules {
            steps: "1 (a token for another patient) and 2 (an id)",
            token: another_patient(),
            content_type: JSON,
            order: Box::new(|o| o["id"] = json!("1")),
            status: 400,
            code: "BAD_REQUEST",
            says: "not the task's subject",
        },
        TwoRules {
            steps: "2 (an id) and 3 (an unknown element)",
            token: org_write(),
            content_type: JSON,
            order: Box::new(|o| {
                o["id"] = json!("1");
                o["invalidField"] = json!("x");
            }),
            status: 422,
            code: "BAD_REQUEST",
            says: "Order.id",
        },
        TwoRules {
            steps: "3 (an unknown element) and 4 (no profile)",
            token: org_write(),
            content_type: JSON,
            order: Box::new(|o| {
                o["invalidField"] = json!("x");
                o.as_object_mut().unwrap().remove("meta");
            }),
            status: 422,
            code: "INVALID_RESOURCE",
            says: "invalidField",
        },
        TwoRules {
            steps: "4 (a wrong profile) and 5 (no date)",
            token: org_write(),
            content_type: JSON,
            order: Box::new(|o| {
                o["meta"]["profile"] = json!(["http://example.org/x"]);
                o.as_object_mut().unwrap().remove("date");
            }),
            status: 422,
            code: "INVALID_RESOURCE",
            says: "meta.profile",
        },
        TwoRules {
            steps: "5 (no date) and 6 (an unknown patient)",
            token: org_write(),
            content_type: JSON,
            order: Box::new(|o| {
                o.as_object_mut().unwrap().remove("date");
                o["subject"]["reference"] = json!("Patient/99");
            }),
            status: 422,
            code: "INVALID_RESOURCE",
            says: "Order.date",
        },
        TwoRules {
            steps: "6 (an unknown source) and 7 (yesterday's date)",
            token: org_write(),
            content_type: JSON,
            order: Box::new(|o| {
                o["source"]["reference"] = json!("Organization/999");
                o["date"] = json!(shift_today(-1));
            }),
            status: 422,
            code: "REFERENCE_NOT_FOUND",
            says: "Order.source",
        },
        TwoRules {
            steps: "6 (another target) and 7 (a deceased patient)",
            token: org_write(),
            content_type: JSON,
            order: Box::new(|o| {
                o["target"]["reference"] = json!("Organization/2");
                o["subject"]["reference"] = json!("Patient/6");
            }),
            status: 422,
            code: "INVALID_RESOURCE",
            says: "Order.target",
        },
        // The patient/*.write subject rule is a rule of §3, step 1, however
        // late the Order fails.
        TwoRules {
            steps: "1 (a token for another patient) and 3 (an unknown element)",
            token: another_patient(),
            content_type: JSON,
            order: Box::new(|o| o["invalidField"] = json!("x")),
            status: 400,
            code: "BAD_REQUEST",
            says: "not the task's subject",
        },
        TwoRules {
            steps: "1 (a token for another patient) and 5 (no date)",
            token: another_patient(),
            content_type: JSON,
            order: Box::new(remove("date")),
            status: 400,
            code: "BAD_REQUEST",
            says: "not the task's subject",
        },
        TwoRules {
            steps: "1 (a token for a patient not held here) and 5 (no subject)",
            token: not_held_here(),
            content_type: JSON,
            order: Box::new(remove("subject")),
            status: 400,
            code: "BAD_REQUEST",
            says: "not the task's subject",
        },
        TwoRules {
            steps: "1 (a token for another patient) and 7 (yesterday's date)",
            token: another_patient(),
            content_type: JSON,
            order: Box::new(|o| o["date"] = json!(shift_today(-1))),
            status: 400,
            code: "BAD_REQUEST",
            says: "not the task's subject",
        },
    ]
}

#[tokio::test]
async fn two_rules_broken_at_once_get_the_earlier_steps_error() {
    let s = TestServer::start().await;
    let url = format!("{}/Order", s.root("GPC001"));
    for case in two_rules_at_once() {
        let mut order = dawes_order();
        (case.order)(&mut order);
        let (scope, record) = case.token;
        let jwt = Jwt::new(scope, record).encode();
        let req = s
            .client
            .post(&url)
            .headers(headers(CREATE, GPC001_ASID, &jwt))
            .header("content-type", case.content_type)
            .body(order.to_string());
        let (status, _, body) = send(req).await;
        let steps = case.steps;
        assert_eq!(status, case.status, "steps {steps}: {body}");
        assert_eq!(error_code(&body), case.code, "steps {steps}: {body}");
        let diagnostics = body["issue"][0]["diagnostics"].as_str().unwrap();
        assert!(
            diagnostics.contains(case.says),
            "steps {steps}: expected '{}' in {diagnostics}",
            case.says
        );
    }
    // A token for the subject itself is fine.
    let jwt = Jwt::new("patient/*.write", patient_record("9476719931")).encode();
    let (status, _, body) = send(
        s.client
            .post(&url)
            .headers(headers(CREATE, GPC001_ASID, &jwt))
            .header("content-type", JSON)
            .body(dawes_order().to_string()),
    )
    .await;
    assert_eq!(status, 201, "{body}");
}
