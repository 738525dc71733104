//! task-lifecycle.md §2: `POST /OrderResponse`, both ways. Every check in
//! its order with its status and code, the sharing rule through the SSP,
//! an update applied at the sender (and repeated, and overtaken), a
//! cancellation applied at the receiver (and refused once the task is
//! final), the root of an organisation that receives no tasks, JSON and XML.

// A test crate sees every dev-dependency of its package, and uses only some.
#![allow(unused_crate_dependencies)]
// Helpers outside `#[test]` functions panic on purpose too: a failure is the test's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod ssp_support;

use gpc_domain::audit::AuditFilter;
use gpc_domain::lifecycle::{Actor, Change, Party, TaskChange, TaskState};
use gpc_domain::order_response::{Person, TaskUpdate, order_response};
use gpc_domain::sent::{Attempt, SendStatus, SentTask};
use gpc_domain::task::TaskType;
use gpc_domain::updates::{RemoteState, Wire};
use gpc_domain::{Asid, NhsNumber, OdsCode};
use gpc_store::ChangeOutcome;
use gpc_testkit::*;
use jiff::{SignedDuration, Timestamp};
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::{Value, json};
use ssp_support::{X11101_ASID, XOA001_ASID, client, ssp_url};

const UPDATE: &str = "urn:nhs:names:services:gpconnect:fhir:rest:create:orderresponse";
const XAE001_ASID: &str = "200000000372";

/// An organisation's system: its ODS code and ASID.
#[derive(Clone, Copy)]
struct System(&'static str, &'static str);

const GPC001: System = System("GPC001", GPC001_ASID);
const Y00001: System = System("Y00001", Y00001_ASID);
const R1A14: System = System("R1A14", R1A14_ASID);
const X11101: System = System("X11101", X11101_ASID);
const XAE001: System = System("XAE001", XAE001_ASID);
const XOA001: System = System("XOA001", XOA001_ASID);

fn ods(s: &str) -> OdsCode {
    OdsCode::parse(s).unwrap()
}

/// The Spine headers and a write JWT of `from`'s system, to `to`'s root.
fn spine(interaction: &str, from: System, to: System) -> HeaderMap {
    let mut jwt = Jwt::new("organization/*.write", org_record(to.0));
    jwt.claims["requesting_organization"]["identifier"][0]["value"] = json!(from.0);
    let mut h = headers(interaction, to.1, &jwt.encode());
    h.insert("ssp-from", HeaderValue::from_str(from.1).unwrap());
    h
}

/// `POST {to's root}/OrderResponse` straight to the provider.
fn post_update(s: &TestServer, from: System, to: System, body: &Value) -> reqwest::RequestBuilder {
    s.client
        .post(format!("{}/OrderResponse", s.root(to.0)))
        .headers(spine(UPDATE, from, to))
        .header("content-type", JSON)
        .body(body.to_string())
}

/// The same through the SSP.
fn post_update_via_ssp(
    s: &TestServer,
    from: System,
    to: System,
    body: &Value,
) -> reqwest::RequestBuilder {
    client()
        .post(ssp_url(&s.base, &format!("{}/OrderResponse", s.root(to.0))))
        .headers(spine(UPDATE, from, to))
        .header("content-type", JSON)
        .body(body.to_string())
}

fn gilbert() -> Person {
    Person {
        sds_user_id: "G13579135".into(),
        prefix: "Dr".into(),
        given: "Nichole".into(),
        family: "GILBERT".into(),
        role_code: "R0260".into(),
        role_display: "General Medical Practitioner".into(),
    }
}

fn ross() -> Person {
    Person {
        sds_user_id: "G50000001".into(),
        prefix: "Mrs".into(),
        given: "Helen".into(),
        family: "ROSS".into(),
        role_code: "R0570".into(),
        role_display: "Nurse".into(),
    }
}

fn parsons() -> Person {
    Person {
        sds_user_id: "G11111116".into(),
        prefix: "Mrs".into(),
        given: "Melissa".into(),
        family: "PARSONS".into(),
        role_code: "R0260".into(),
        role_display: "General Medical Practitioner".into(),
    }
}

const NOTE: &str = "Booked a medication review for Thursday.";
const REASON: &str = "Sent to the wrong practice.";

/// An update of the Order at `request`: a fresh identifier, now.
fn update(request: &str, state: TaskState, version: u32, who: Person) -> TaskUpdate {
    TaskUpdate {
        identifier: format!("urn:uuid:{}", uuid::Uuid::new_v4()),
        version,
        request: request.to_owned(),
        date: Timestamp::now(),
        who,
        owner: None,
        state,
        description: match state {
            TaskState::Rejected | TaskState::Cancelled => Some(REASON.into()),
            _ => Some(NOTE.into()),
        },
    }
}

fn body(u: &TaskUpdate) -> Value {
    order_response(u)
}

/// A task `from` sent to `to`, as both sides hold it once delivered.
struct Delivered {
    /// The recipient's id of the task.
    task_id: String,
    /// `{to's root}/Order/{task_id}`, as the recipient's 201 gave it.
    order_url: String,
    /// The sender's id of the task in its outbox.
    sent_id: String,
}

/// `from` sends DAWES's task to GPC001 (which holds her record): the
/// provider stores it, and the sender's outbox records it as delivered with
/// the id GPC001 returned, as the sending engine does.
async fn deliver(s: &TestServer, from: System) -> Delivered {
    let source = match from.0 {
        "Y00001" => "5",
        "X11101" => "6",
        "R1A14" => "2",
        other => panic!("no Organization id for {other} in this test"),
    };
    let order = order("2", source, "1", "2", "Please review the medication.");
    let (status, h, stored) = send(
        s.client
            .post(format!("{}/Order", s.root("GPC001")))
            .headers(spine(CREATE, from, GPC001))
            .header("content-type", JSON)
            .body(order.to_string()),
    )
    .await;
    assert_eq!(status, 201, "{stored}");
    let task_id = stored["id"].as_str().unwrap().to_owned();
    assert!(
        h["location"]
            .to_str()
            .unwrap()
            .starts_with(&format!("{}/Order/{task_id}", s.root("GPC001")))
    );
    let outbox = s
        .state
        .outbox
        .clone()
        .expect("the provider keeps an outbox");
    // Due only later, so that a sending engine of the server leaves it to
    // this test, which plays its part.
    let now = Timestamp::now() + SignedDuration::from_hours(1);
    let sent_id = uuid::Uuid::new_v4().to_string();
    let queued = SentTask {
        id: sent_id.clone(),
        created_at: now,
        updated_at: now,
        from_ods: ods(from.0),
        from_name: "Sender".into(),
        from_asid: Asid::parse(from.1),
        user_sds_id: "G11111116".into(),
        user_id: "3".into(),
        user_name: "Mrs Melissa PARSONS".into(),
        user_role_code: "R0260".into(),
        user_role_display: "General Medical Practitioner".into(),
        nhs_number: NhsNumber::parse("9476719931").unwrap(),
        patient_name: "Mrs Minnie DAWES".into(),
        to_ods: ods("GPC001"),
        to_name: "GP Connect Demonstrator".into(),
        to_telephone: "01632 960001".into(),
        to_address: "1 Road, Scunthorpe, DN1 1AA".into(),
        endpoint: s.root("GPC001"),
        to_asid: Asid::parse(GPC001_ASID),
        task_type: TaskType::ActionNeeded,
        text: "Please review the medication.".into(),
        identifier: order["identifier"][0]["value"].as_str().unwrap().to_owned(),
        status: SendStatus::Queued,
        attempts: 0,
        cycle_attempts: 0,
        next_attempt_at: Some(now),
        provider_task_id: None,
        delivered_at: None,
        reason: None,
        remote: None,
        cancellation: None,
    };
    outbox.enqueue(&queued).await.unwrap();
    let claimed = outbox
        .claim_due("test", now, now + SignedDuration::from_secs(60), 10)
        .await
        .unwrap();
    let mut task = claimed.into_iter().find(|t| t.id == sent_id).unwrap();
    task.status = SendStatus::Sending;
    task.next_attempt_at = None;
    assert!(outbox.mark("test", &task).await.unwrap());
    task.status = SendStatus::Delivered;
    task.attempts = 1;
    task.cycle_attempts = 1;
    task.provider_task_id = Some(task_id.clone());
    task.delivered_at = Some(now);
    task.remote = Some(RemoteState {
        state: TaskState::Received,
        version: 1,
        owner: None,
        at: now,
    });
    let attempt = Attempt {
        task_id: sent_id.clone(),
        number: 1,
        started_at: now,
        finished_at: now,
        outcome: SendStatus::Delivered,
        http_status: Some(201),
        detail: "delivered".into(),
    };
    assert!(
        outbox
            .finish_attempt("test", &task, &attempt)
            .await
            .unwrap()
    );
    Delivered {
        order_url: format!("{}/Order/{task_id}", s.root("GPC001")),
        task_id,
        sent_id,
    }
}

async fn remote(s: &TestServer, sent_id: &str) -> RemoteState {
    let outbox = s.state.outbox.as_ref().unwrap();
    outbox.get(sent_id).await.unwrap().unwrap().remote.unwrap()
}

async fn sent_timeline_len(s: &TestServer, sent_id: &str) -> usize {
    let outbox = s.state.outbox.as_ref().unwrap();
    outbox.sent_timeline(sent_id).await.unwrap().len()
}

/// A change GPC001 makes to its received task itself, at `at`.
async fn change_at_gpc001(s: &TestServer, task_id: &str, change: Change, at: Timestamp) {
    let change = TaskChange {
        change,
        by: Actor {
            sds_user_id: "G13579135".into(),
            name: "Dr Nichole GILBERT".into(),
            role_code: "R0260".into(),
            role_display: "General Medical Practitioner".into(),
            organisation: ods("GPC001"),
        },
        party: Party::Receiver,
        text: None,
        expected_version: None,
        at,
        wire: Wire::outgoing(),
    };
    let outcome = s
        .state
        .store
        .change_task(&ods("GPC001"), task_id, change)
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(outcome, ChangeOutcome::Changed { .. }),
        "{outcome:?}"
    );
}

async fn received(s: &TestServer, task_id: &str) -> gpc_domain::task::ReceivedTask {
    s.state
        .store
        .get_task(&ods("GPC001"), task_id)
        .await
        .unwrap()
        .unwrap()
}

fn diagnostics(body: &Value) -> &str {
    body["issue"][0]["diagnostics"].as_str().unwrap()
}

/// The stored OrderResponse of a 201 or 200: the update as sent, with its
/// id, version and Location.
fn assert_answer(
    s: &TestServer,
    root_of: &str,
    sent: &Value,
    h: &HeaderMap,
    answer: &Value,
    version: u32,
) {
    let identifier = sent["identifier"][0]["value"].as_str().unwrap();
    let id = identifier.strip_prefix("urn:uuid:").unwrap();
    assert_eq!(answer["resourceType"], "OrderResponse");
    assert_eq!(answer["id"], id);
    assert_eq!(answer["meta"]["versionId"], version.to_string());
    assert_eq!(answer["extension"][0]["valueInteger"], version);
    for key in [
        "identifier",
        "request",
        "who",
        "orderStatus",
        "description",
        "contained",
    ] {
        assert_eq!(answer[key], sent[key], "{key}");
    }
    assert_eq!(
        h["location"].to_str().unwrap(),
        format!("{}/OrderResponse/{id}", s.root(root_of))
    );
    assert_eq!(h["etag"].to_str().unwrap(), format!("W/\"{version}\""));
    assert_eq!(h["content-type"], "application/json+fhir;charset=utf-8");
    assert_eq!(h["cache-control"], "no-store, no-cache");
}

// ---- Receiver → sender ---------------------------------------------------

#[tokio::test]
async fn the_recipients_update_reaches_the_sent_task_and_a_repeat_gets_the_same_answer() {
    let s = TestServer::start().await;
    let task = deliver(&s, Y00001).await;
    let take = update(&task.order_url, TaskState::Accepted, 2, gilbert());
    let sent = body(&take);
    let (status, h, answer) = send(post_update(&s, GPC001, Y00001, &sent)).await;
    assert_eq!(status, 201, "{answer}");
    assert_answer(&s, "Y00001", &sent, &h, &answer, 2);
    let held = remote(&s, &task.sent_id).await;
    assert_eq!((held.state, held.version), (TaskState::Accepted, 2));
    assert_eq!(held.owner.unwrap().sds_user_id, "G13579135");
    let timeline = s
        .state
        .outbox
        .as_ref()
        .unwrap()
        .sent_timeline(&task.sent_id)
        .await
        .unwrap();
    let entry = timeline.last().unwrap();
    assert_eq!(entry.by.sds_user_id, "G13579135");
    assert_eq!(entry.by.name, "Dr Nichole GILBERT");
    assert_eq!(entry.by.organisation, ods("GPC001"));
    assert_eq!(entry.party, Party::Receiver);
    assert_eq!(entry.note.as_deref(), Some(NOTE));
    let entries = timeline.len();

    // The same update again: 200, the same body, nothing changed.
    let (status, h2, again) = send(post_update(&s, GPC001, Y00001, &sent)).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again, answer);
    assert_eq!(h2["location"], h["location"]);
    assert_eq!(h2["etag"], h["etag"]);
    assert_eq!(sent_timeline_len(&s, &task.sent_id).await, entries);

    // An assignment, then completion: the owner follows.
    let mut assign = update(&task.order_url, TaskState::Accepted, 3, gilbert());
    assign.owner = Some(ross());
    let (status, _, _) = send(post_update(&s, GPC001, Y00001, &body(&assign))).await;
    assert_eq!(status, 201);
    assert_eq!(
        remote(&s, &task.sent_id).await.owner.unwrap().sds_user_id,
        "G50000001"
    );
    let mut done = update(&task.order_url, TaskState::Completed, 4, ross());
    done.description = None;
    let (status, _, answer) = send(post_update(&s, GPC001, Y00001, &body(&done))).await;
    assert_eq!(status, 201, "{answer}");
    assert!(answer.get("description").is_none());
    let held = remote(&s, &task.sent_id).await;
    assert_eq!((held.state, held.version), (TaskState::Completed, 4));
    assert_eq!(held.owner.unwrap().sds_user_id, "G50000001");
}

#[tokio::test]
async fn an_update_that_arrives_after_a_later_one_changes_nothing() {
    let s = TestServer::start().await;
    let task = deliver(&s, Y00001).await;
    let mut done = update(&task.order_url, TaskState::Completed, 3, gilbert());
    done.description = None;
    let (status, _, _) = send(post_update(&s, GPC001, Y00001, &body(&done))).await;
    assert_eq!(status, 201);
    let entries = sent_timeline_len(&s, &task.sent_id).await;
    // The take (version 2) was overtaken by the completion (version 3).
    let late = update(&task.order_url, TaskState::Accepted, 2, gilbert());
    let sent = body(&late);
    let (status, h, answer) = send(post_update(&s, GPC001, Y00001, &sent)).await;
    assert_eq!(status, 200, "{answer}");
    assert_answer(&s, "Y00001", &sent, &h, &answer, 2);
    let held = remote(&s, &task.sent_id).await;
    assert_eq!((held.state, held.version), (TaskState::Completed, 3));
    assert_eq!(sent_timeline_len(&s, &task.sent_id).await, entries);
    // The same version again under a new identifier is late too.
    let mut same = update(&task.order_url, TaskState::Rejected, 3, gilbert());
    same.description = Some(REASON.into());
    let (status, _, _) = send(post_update(&s, GPC001, Y00001, &body(&same))).await;
    assert_eq!(status, 200);
    assert_eq!(remote(&s, &task.sent_id).await.state, TaskState::Completed);
}

#[tokio::test]
async fn prefer_return_minimal_answers_with_headers_only() {
    let s = TestServer::start().await;
    let task = deliver(&s, Y00001).await;
    let take = update(&task.order_url, TaskState::Accepted, 2, gilbert());
    let (status, h, answer) =
        send(post_update(&s, GPC001, Y00001, &body(&take)).header("prefer", "return=minimal"))
            .await;
    assert_eq!(status, 201);
    assert_eq!(answer, Value::Null);
    assert!(h["location"].to_str().unwrap().contains("/OrderResponse/"));
    assert_eq!(h["etag"], "W/\"2\"");
}

#[tokio::test]
async fn updates_and_answers_in_xml() {
    let s = TestServer::start().await;
    let task = deliver(&s, Y00001).await;
    let take = update(&task.order_url, TaskState::Accepted, 2, gilbert());
    let sent = body(&take);
    let xml = gpc_fhir::to_body(&sent, gpc_fhir::Format::Xml);
    let resp = s
        .client
        .post(format!("{}/OrderResponse", s.root("Y00001")))
        .headers(spine(UPDATE, GPC001, Y00001))
        .header("content-type", XML)
        .body(xml)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    assert_eq!(
        resp.headers()["content-type"],
        "application/xml+fhir;charset=utf-8"
    );
    let text = resp.bytes().await.unwrap();
    assert!(
        String::from_utf8_lossy(&text).contains("<OrderResponse"),
        "{text:?}"
    );
    let answer = gpc_fhir::parse_body(&text, gpc_fhir::Format::Xml).unwrap();
    assert_eq!(answer["meta"]["versionId"], "2");
    assert_eq!(answer["orderStatus"], "accepted");
    assert_eq!(answer["who"], sent["who"]);
    // A repeat in JSON gets the same stored answer, in JSON.
    let (status, _, again) = send(post_update(&s, GPC001, Y00001, &sent)).await;
    assert_eq!(status, 200);
    assert_eq!(again, answer);
    // Errors in XML too.
    let mut on_hold = body(&update(&task.order_url, TaskState::Accepted, 3, gilbert()));
    on_hold["orderStatus"] = json!("on-hold");
    let resp = s
        .client
        .post(format!("{}/OrderResponse", s.root("Y00001")))
        .headers(spine(UPDATE, GPC001, Y00001))
        .header("content-type", XML)
        .body(gpc_fhir::to_body(&on_hold, gpc_fhir::Format::Xml))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 422);
    let text = resp.bytes().await.unwrap();
    let outcome = gpc_fhir::parse_body(&text, gpc_fhir::Format::Xml).unwrap();
    assert_eq!(error_code(&outcome), "INVALID_RESOURCE");
}

#[tokio::test]
async fn the_senders_open_pages_hear_of_an_applied_update() {
    let config = gpc_server::ServerConfig {
        consumer: Some(gpc_server::ConsumerConfig::default()),
        ..gpc_server::ServerConfig::default()
    };
    let s = TestServer::start_with(tempfile::tempdir().unwrap(), config).await;
    let task = deliver(&s, Y00001).await;
    let mut events = s.state.engine.as_ref().unwrap().subscribe();
    let take = update(&task.order_url, TaskState::Accepted, 2, gilbert());
    let (status, _, _) = send(post_update(&s, GPC001, Y00001, &body(&take))).await;
    assert_eq!(status, 201);
    let event = events.try_recv().unwrap();
    assert_eq!(
        (event.task_id.as_str(), event.from_ods.as_str()),
        (task.sent_id.as_str(), "Y00001")
    );
    // A repeat changes nothing, and nothing is announced.
    let (status, _, _) = send(post_update(&s, GPC001, Y00001, &body(&take))).await;
    assert_eq!(status, 200);
    assert!(events.try_recv().is_err());
}

// ---- Sender → receiver: cancellation -------------------------------------

#[tokio::test]
async fn a_cancellation_of_an_open_task_is_applied_at_the_next_version_and_announced() {
    let s = TestServer::start().await;
    let task = deliver(&s, Y00001).await;
    change_at_gpc001(&s, &task.task_id, Change::Take, Timestamp::now()).await;
    let mut changed = s.state.changed.subscribe();
    // The sender last saw version 1; the task has moved on to 2 since.
    let cancel = update(&task.order_url, TaskState::Cancelled, 1, parsons());
    let sent = body(&cancel);
    let (status, h, answer) = send(post_update(&s, Y00001, GPC001, &sent)).await;
    assert_eq!(status, 201, "{answer}");
    assert_answer(&s, "GPC001", &sent, &h, &answer, 3);
    let now = received(&s, &task.task_id).await;
    assert_eq!(
        (now.life.state, now.life.version),
        (TaskState::Cancelled, 3)
    );
    let timeline = s
        .state
        .store
        .timeline(&ods("GPC001"), &task.task_id)
        .await
        .unwrap();
    let entry = timeline.last().unwrap();
    assert_eq!(entry.party, Party::Sender);
    assert_eq!(entry.by.sds_user_id, "G11111116");
    assert_eq!(entry.by.organisation, ods("Y00001"));
    assert_eq!(entry.note.as_deref(), Some(REASON));
    let event = changed.try_recv().unwrap();
    assert_eq!(
        (event.tenant, event.task_id),
        (ods("GPC001"), task.task_id.clone())
    );

    // The repeat of the cancellation that made the task final is answered
    // as before, not refused as a cancellation of a final task.
    let (status, _, again) = send(post_update(&s, Y00001, GPC001, &sent)).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again, answer);
    assert_eq!(received(&s, &task.task_id).await.life.version, 3);
    assert!(changed.try_recv().is_err(), "a repeat changes nothing");
}

#[tokio::test]
async fn a_cancellation_of_a_final_task_is_a_409_saying_since_when() {
    let s = TestServer::start().await;
    let task = deliver(&s, Y00001).await;
    let at: Timestamp = "2026-12-02T10:40:00Z".parse().unwrap();
    change_at_gpc001(&s, &task.task_id, Change::Complete, at).await;
    let before = received(&s, &task.task_id).await;
    let cancel = update(&task.order_url, TaskState::Cancelled, 1, parsons());
    let refused = expect_error(
        post_update(&s, Y00001, GPC001, &body(&cancel)),
        409,
        "INVALID_RESOURCE",
    )
    .await;
    assert!(
        diagnostics(&refused).contains("the task was completed at 2026-12-02T10:40:00Z"),
        "{refused}"
    );
    assert_eq!(received(&s, &task.task_id).await, before);
    // Asked again, the same.
    expect_error(
        post_update(&s, Y00001, GPC001, &body(&cancel)),
        409,
        "INVALID_RESOURCE",
    )
    .await;
    assert_eq!(received(&s, &task.task_id).await, before);
}

// ---- Step 4: who may update which task ------------------------------------

#[tokio::test]
async fn only_the_other_party_of_a_task_may_update_it_and_nobody_learns_of_others_tasks() {
    let s = TestServer::start().await;
    let task = deliver(&s, Y00001).await;
    let unknown = format!("{}/Order/{}", s.root("GPC001"), uuid::Uuid::new_v4());
    let elsewhere = format!("{}/Order/{}", s.root("R1A14"), task.task_id);
    let with_history = format!("{}/_history/1", task.order_url);
    let mut answers = Vec::new();
    let refusals: Vec<(System, System, TaskUpdate)> = vec![
        // Updates at the sender: no such task, another root's URL, not the
        // Order URL itself, and the right task reported by someone who is
        // not its recipient.
        (
            GPC001,
            Y00001,
            update(&unknown, TaskState::Accepted, 2, gilbert()),
        ),
        (
            GPC001,
            Y00001,
            update(&elsewhere, TaskState::Accepted, 2, gilbert()),
        ),
        (
            GPC001,
            Y00001,
            update(&with_history, TaskState::Accepted, 2, gilbert()),
        ),
        (
            R1A14,
            Y00001,
            update(&task.order_url, TaskState::Accepted, 2, gilbert()),
        ),
        // The right task and recipient, posted to another organisation's root.
        (
            GPC001,
            R1A14,
            update(&task.order_url, TaskState::Accepted, 2, gilbert()),
        ),
        // Cancellations at the receiver: no such task, another root's URL,
        // and the right task cancelled by someone who did not send it.
        (
            Y00001,
            GPC001,
            update(&unknown, TaskState::Cancelled, 1, parsons()),
        ),
        (
            Y00001,
            GPC001,
            update(&elsewhere, TaskState::Cancelled, 1, parsons()),
        ),
        (
            R1A14,
            GPC001,
            update(&task.order_url, TaskState::Cancelled, 1, parsons()),
        ),
        // A cancellation sent to the sender's own root.
        (
            Y00001,
            Y00001,
            update(&task.order_url, TaskState::Cancelled, 1, parsons()),
        ),
    ];
    for (from, to, u) in refusals {
        let refused = expect_error(
            post_update(&s, from, to, &body(&u)),
            422,
            "REFERENCE_NOT_FOUND",
        )
        .await;
        answers.push(diagnostics(&refused).to_owned());
    }
    // One message, whether or not such a task exists for someone else.
    answers.dedup();
    assert_eq!(answers.len(), 1, "{answers:?}");
    let now = received(&s, &task.task_id).await;
    assert_eq!((now.life.state, now.life.version), (TaskState::Received, 1));
    assert_eq!(remote(&s, &task.sent_id).await.version, 1);
}

// ---- The order of the checks ---------------------------------------------

/// One request failing every check; fixing them one at a time shows each
/// check in the order of §2, a request failing two getting the earlier's answer.
#[tokio::test]
async fn checks_run_in_the_order_of_the_spec() {
    let s = TestServer::start().await;
    let task = deliver(&s, Y00001).await;
    let at: Timestamp = "2026-12-02T10:40:00Z".parse().unwrap();
    change_at_gpc001(&s, &task.task_id, Change::Complete, at).await;
    let url = format!("{}/OrderResponse", s.root("GPC001"));
    let good = body(&update(&task.order_url, TaskState::Cancelled, 1, parsons()));
    let unknown_task = {
        let mut b = good.clone();
        b["request"]["reference"] = json!(format!("{}/Order/nope", s.root("GPC001")));
        b
    };
    let no_reason = {
        let mut b = unknown_task.clone();
        b.as_object_mut().unwrap().remove("description");
        b
    };
    let unknown_element = {
        let mut b = no_reason.clone();
        b["invalidField"] = json!(true);
        b
    };
    let not_json = "{".to_owned();
    let wrong_jwt = {
        let mut jwt = Jwt::new("organization/*.read", org_record("GPC001"));
        jwt.claims["requesting_organization"]["identifier"][0]["value"] = json!("Y00001");
        let mut h = spine(UPDATE, Y00001, GPC001);
        h.insert(
            "authorization",
            HeaderValue::from_str(&format!("Bearer {}", jwt.encode())).unwrap(),
        );
        h
    };
    let wrong_interaction = spine(CREATE, Y00001, GPC001);
    let good_headers = spine(UPDATE, Y00001, GPC001);
    let steps: Vec<(HeaderMap, &str, String, u16, &str, &str)> = vec![
        // 1: common rules — the interaction, then the JWT, then the content type.
        (
            wrong_interaction,
            JSON,
            not_json.clone(),
            400,
            "BAD_REQUEST",
            "Ssp-InteractionID",
        ),
        (
            wrong_jwt,
            JSON,
            not_json.clone(),
            400,
            "BAD_REQUEST",
            "organization/*.write",
        ),
        (
            good_headers.clone(),
            "application/json",
            not_json.clone(),
            415,
            "BAD_REQUEST",
            "Content-Type",
        ),
        // 2: parse, then structure.
        (
            good_headers.clone(),
            JSON,
            not_json,
            400,
            "BAD_REQUEST",
            "JSON",
        ),
        (
            good_headers.clone(),
            JSON,
            unknown_element.to_string(),
            422,
            "INVALID_RESOURCE",
            "invalidField",
        ),
        // 3: content.
        (
            good_headers.clone(),
            JSON,
            no_reason.to_string(),
            422,
            "INVALID_RESOURCE",
            "OrderResponse.description",
        ),
        // 4: the reference.
        (
            good_headers.clone(),
            JSON,
            unknown_task.to_string(),
            422,
            "REFERENCE_NOT_FOUND",
            "OrderResponse.request",
        ),
        // 5: the state.
        (
            good_headers,
            JSON,
            good.to_string(),
            409,
            "INVALID_RESOURCE",
            "completed at 2026-12-02T10:40:00Z",
        ),
    ];
    for (headers, content_type, payload, status, code, says) in steps {
        let body = expect_error(
            s.client
                .post(&url)
                .headers(headers)
                .header("content-type", content_type)
                .body(payload),
            status,
            code,
        )
        .await;
        assert!(diagnostics(&body).contains(says), "{says}: {body}");
    }
}

#[tokio::test]
async fn bodies_are_checked_as_for_an_order() {
    let s = TestServer::start().await;
    let task = deliver(&s, Y00001).await;
    let good = body(&update(&task.order_url, TaskState::Accepted, 2, gilbert()));
    let post_raw = |payload: String| {
        s.client
            .post(format!("{}/OrderResponse", s.root("Y00001")))
            .headers(spine(UPDATE, GPC001, Y00001))
            .header("content-type", JSON)
            .body(payload)
    };
    for payload in [
        "",
        "[1]",
        "{\"resourceType\":\"Order\"}",
        "{\"resourceType\":\"Patient\"}",
    ] {
        expect_error(post_raw(payload.to_owned()), 400, "BAD_REQUEST").await;
    }
    // No body and no Content-Type: 400; a body without one: 415.
    let bare = |payload: &'static str| {
        s.client
            .post(format!("{}/OrderResponse", s.root("Y00001")))
            .headers(spine(UPDATE, GPC001, Y00001))
            .body(payload)
    };
    expect_error(bare(""), 400, "BAD_REQUEST").await;
    expect_error(bare("{}"), 415, "BAD_REQUEST").await;
    let mut with_id = good.clone();
    with_id["id"] = json!("1");
    expect_error(post_raw(with_id.to_string()), 422, "BAD_REQUEST").await;
    type Edit = fn(&mut Value);
    let invalid: [(&str, Edit); 6] = [
        ("meta.profile", |b| {
            b["meta"]["profile"] = json!(["http://example.org/x"])
        }),
        ("meta.profile", |b| {
            b.as_object_mut().unwrap().remove("meta");
        }),
        ("orderStatus", |b| b["orderStatus"] = json!(["accepted"])),
        ("OrderResponse.identifier", |b| {
            b["identifier"] = json!([{"system": "urn:ietf:rfc:3986", "value": "x"}])
        }),
        ("OrderResponse.who", |b| {
            b["who"]["reference"] = json!("#nobody")
        }),
        ("OrderResponse.orderStatus", |b| {
            b["orderStatus"] = json!("on-hold")
        }),
    ];
    for (says, edit) in invalid {
        let mut b = good.clone();
        edit(&mut b);
        let refused = expect_error(post_raw(b.to_string()), 422, "INVALID_RESOURCE").await;
        assert!(diagnostics(&refused).contains(says), "{says}: {refused}");
    }
    assert_eq!(
        remote(&s, &task.sent_id).await.version,
        1,
        "nothing applied"
    );
}

// ---- The SSP's sharing rule ----------------------------------------------

#[tokio::test]
async fn updates_go_through_the_ssp_along_the_route_of_the_task_either_way() {
    let s = TestServer::start().await;
    let task = deliver(&s, Y00001).await;
    // GPC001 replies to Y00001 because Y00001 may send tasks to it.
    let take = update(&task.order_url, TaskState::Accepted, 2, gilbert());
    let (status, _, answer) = send(post_update_via_ssp(&s, GPC001, Y00001, &body(&take))).await;
    assert_eq!(status, 201, "{answer}");
    // And Y00001 cancels along the same route.
    let cancel = update(&task.order_url, TaskState::Cancelled, 2, parsons());
    let (status, _, answer) = send(post_update_via_ssp(&s, Y00001, GPC001, &body(&cancel))).await;
    assert_eq!(status, 201, "{answer}");
    // The task at GPC001 was untouched (the reply above was only heard by
    // Y00001): cancelled at version 2.
    assert_eq!(answer["meta"]["versionId"], "2");
    assert_eq!(
        received(&s, &task.task_id).await.life.state,
        TaskState::Cancelled
    );

    // 111 sends tasks but receives none: the reply goes back to its root.
    let from_111 = deliver(&s, X11101).await;
    let done = update(&from_111.order_url, TaskState::Completed, 2, gilbert());
    let (status, _, answer) = send(post_update_via_ssp(&s, GPC001, X11101, &body(&done))).await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(
        remote(&s, &from_111.sent_id).await.state,
        TaskState::Completed
    );
}

#[tokio::test]
async fn the_ssp_refuses_updates_where_no_task_may_travel() {
    let s = TestServer::start().await;
    let request = format!("{}/Order/1", s.root("GPC001"));
    let cases = [
        // XOA001 has no agreement with anyone, either way.
        (XOA001, GPC001, TaskState::Cancelled),
        (GPC001, XOA001, TaskState::Accepted),
        // Neither 111 nor A&E receives tasks, so no task goes between them.
        (X11101, XAE001, TaskState::Accepted),
        (XAE001, X11101, TaskState::Cancelled),
    ];
    for (from, to, state) in cases {
        let b = body(&update(&request, state, 2, gilbert()));
        let (status, headers, refused) = send(post_update_via_ssp(&s, from, to, &b)).await;
        ssp_support::check_refusal(
            status,
            &headers,
            &refused,
            403,
            "FOT_CHECK_FAILED",
            "forbidden",
        );
        assert!(
            diagnostics(&refused).contains("sharing agreement"),
            "{refused}"
        );
    }
}

// ---- The root of an organisation that receives no tasks -------------------

#[tokio::test]
async fn a_root_without_tasks_serves_metadata_and_updates_only() {
    let s = TestServer::start().await;
    let root = s.root("X11101");
    let read = |path: &str, interaction: &str| {
        let mut jwt = Jwt::new("organization/*.read", org_record("X11101"));
        jwt.claims["requesting_organization"]["identifier"][0]["value"] = json!("Y00001");
        s.client.get(format!("{root}{path}")).headers(headers(
            interaction,
            X11101_ASID,
            &jwt.encode(),
        ))
    };
    let (status, _, conformance) = send(read("/metadata", METADATA)).await;
    assert_eq!(status, 200, "{conformance}");
    assert_eq!(conformance["resourceType"], "Conformance");
    let resources = conformance["rest"][0]["resource"].as_array().unwrap();
    assert_eq!(resources.len(), 1, "{conformance}");
    assert_eq!(resources[0]["type"], "OrderResponse");
    assert_eq!(resources[0]["interaction"], json!([{"code": "create"}]));
    let xml = read("/metadata?_format=xml", METADATA)
        .send()
        .await
        .unwrap();
    assert_eq!(xml.status().as_u16(), 200);
    let xml = gpc_fhir::parse_body(&xml.bytes().await.unwrap(), gpc_fhir::Format::Xml).unwrap();
    assert_eq!(xml, conformance);
    // A receiver's statement lists OrderResponse beside the rest.
    let (_, _, gpc) = send(s.get("/metadata", METADATA)).await;
    let types: Vec<&str> = gpc["rest"][0]["resource"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "Patient",
            "Organization",
            "Practitioner",
            "Order",
            "OrderResponse"
        ]
    );

    // No tasks and no look-ups here: 404, before any header is looked at.
    for (path, interaction) in [
        ("/Patient/1", READ_PATIENT),
        (
            "/Patient?identifier=http://fhir.nhs.net/Id/nhs-number|9476719931",
            SEARCH_PATIENT,
        ),
        ("/Organization/1", READ_ORG),
        (
            "/Practitioner?identifier=http://fhir.nhs.net/Id/sds-user-id|G13579135",
            SEARCH_PRACTITIONER,
        ),
    ] {
        let refused = expect_error(read(path, interaction), 404, "REFERENCE_NOT_FOUND").await;
        assert!(
            diagnostics(&refused).contains("receives no tasks"),
            "{refused}"
        );
    }
    let refused = expect_error(
        s.client
            .post(format!("{root}/Order"))
            .headers(spine(CREATE, Y00001, X11101))
            .header("content-type", JSON)
            .body(dawes_order().to_string()),
        404,
        "REFERENCE_NOT_FOUND",
    )
    .await;
    assert!(
        diagnostics(&refused).contains("/OrderResponse"),
        "{refused}"
    );
    expect_error(
        s.client
            .get(format!("{root}/Order"))
            .headers(HeaderMap::new()),
        404,
        "REFERENCE_NOT_FOUND",
    )
    .await;

    // And the task 111 sent is updated at its root.
    let task = deliver(&s, X11101).await;
    let take = update(&task.order_url, TaskState::Accepted, 2, gilbert());
    let sent = body(&take);
    let (status, h, answer) = send(post_update(&s, GPC001, X11101, &sent)).await;
    assert_eq!(status, 201, "{answer}");
    assert_answer(&s, "X11101", &sent, &h, &answer, 2);
    assert_eq!(remote(&s, &task.sent_id).await.state, TaskState::Accepted);
}

// ---- The audit -------------------------------------------------------------

#[tokio::test]
async fn every_update_is_audited_with_the_task_it_named() {
    let s = TestServer::start().await;
    let task = deliver(&s, Y00001).await;
    let at: Timestamp = "2026-12-02T10:40:00Z".parse().unwrap();
    let take = update(&task.order_url, TaskState::Accepted, 2, gilbert());
    send(post_update(&s, GPC001, Y00001, &body(&take))).await;
    change_at_gpc001(&s, &task.task_id, Change::Complete, at).await;
    let cancel = update(&task.order_url, TaskState::Cancelled, 1, parsons());
    send(post_update(&s, Y00001, GPC001, &body(&cancel))).await;
    let unknown = update(
        &format!("{}/Order/x", s.root("GPC001")),
        TaskState::Accepted,
        2,
        gilbert(),
    );
    send(post_update(&s, GPC001, Y00001, &body(&unknown))).await;
    s.state.store.flush().await.unwrap();
    let rows = s
        .state
        .store
        .audit(AuditFilter {
            tenant: None,
            since: None,
            limit: 0,
        })
        .await
        .unwrap();
    let updates: Vec<_> = rows
        .iter()
        .filter(|r| r.interaction.as_deref() == Some(UPDATE))
        .collect();
    // Newest first.
    let seen: Vec<(&str, u16, Option<&str>, Option<&str>)> = updates
        .iter()
        .map(|r| {
            (
                r.tenant.as_str(),
                r.status,
                r.error_code.as_deref(),
                r.task_id.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("Y00001", 422, Some("REFERENCE_NOT_FOUND"), None),
            (
                "GPC001",
                409,
                Some("INVALID_RESOURCE"),
                Some(task.task_id.as_str())
            ),
            ("Y00001", 201, None, Some(task.sent_id.as_str())),
        ]
    );
    for r in updates {
        assert_eq!(r.method, "POST");
        assert!(r.path.ends_with("/OrderResponse"), "{}", r.path);
        assert!(r.trace_id.is_some() && r.from_asid.is_some());
    }
}

// ---- Logs --------------------------------------------------------------------

/// What this test binary's servers log, at every level.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn updates_are_logged_by_ids_and_states_never_text_names_or_nhs_numbers() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            "gpc_server=trace,gpc_store=trace,gpc_domain=trace,gpc_consumer=trace",
        ))
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .init();
    let s = TestServer::start().await;
    let task = deliver(&s, Y00001).await;
    let take = update(&task.order_url, TaskState::Accepted, 2, gilbert());
    send(post_update(&s, GPC001, Y00001, &body(&take))).await;
    send(post_update(&s, GPC001, Y00001, &body(&take))).await;
    let cancel = update(&task.order_url, TaskState::Cancelled, 1, parsons());
    send(post_update(&s, Y00001, GPC001, &body(&cancel))).await;
    send(post_update(&s, Y00001, GPC001, &body(&cancel))).await;
    let again = update(&task.order_url, TaskState::Cancelled, 1, parsons());
    send(post_update(&s, Y00001, GPC001, &body(&again))).await;
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains(&task.task_id), "{logs}");
    assert!(logs.contains(&task.sent_id), "{logs}");
    assert!(logs.contains("cancelled"), "{logs}");
    for secret in [
        NOTE,
        REASON,
        "GILBERT",
        "Nichole",
        "PARSONS",
        "DAWES",
        "9476719931",
    ] {
        assert!(!logs.contains(secret), "{secret} in the logs:\n{logs}");
    }
}
