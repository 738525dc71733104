//! The UI over plain HTTP, as a browser without scripts uses it: a real
//! engine sending through the real SSP to real providers.

// A test crate sees every dev-dependency of its package, and uses only some.
#![allow(unused_crate_dependencies)]
// Helpers outside `#[test]` functions panic on purpose too: a failure is the test's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Browser, World, between};
use gpc_domain::task::ReceivedEvent;
use reqwest::StatusCode;

const DAWES: &str = "9476719931";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_is_a_demo_choice_of_organisation_and_user_kept_in_an_http_only_lax_cookie() {
    let world = World::start().await;
    let mut b = world.browser();

    let home = b.get("/").await;
    assert_eq!(home.status, StatusCode::SEE_OTHER);
    assert_eq!(home.location(), "/sign-in");
    assert_eq!(b.get("/sent").await.location(), "/sign-in");

    let step_one = b.get("/sign-in").await;
    step_one
        .assert_contains("Demo sign-in")
        .assert_contains("This is a demo sign-in")
        .assert_contains("North Lincolnshire Extended Access Hub (Y00001)")
        // No users there: nobody can sign in at it.
        .assert_lacks("Somerset Bridge Medical Centre");
    let csp = step_one.headers["content-security-policy"]
        .to_str()
        .unwrap();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"));
    assert_eq!(step_one.headers["cache-control"], "no-store");

    b.get("/sign-in?org=")
        .await
        .assert_contains("Select the organisation you work for");
    b.get("/sign-in?org=Y00001")
        .await
        .assert_contains("Who are you at North Lincolnshire Extended Access Hub?")
        .assert_contains("Mrs Melissa PARSONS")
        .assert_lacks("Dr Nichole GILBERT");
    let wrong = b
        .post("/sign-in", &[("org", "Y00001"), ("user", "G13579135")])
        .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    wrong.assert_contains("Select who you are");

    let signed_in = b
        .post("/sign-in", &[("org", "R1A17"), ("user", "G22222226")])
        .await;
    assert_eq!(signed_in.status, StatusCode::SEE_OTHER);
    let cookie = signed_in.headers["set-cookie"].to_str().unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    b.get("/patient")
        .await
        .assert_contains("Mrs Melissa PARSONS, The Hockey Surgery (R1A17)")
        .assert_contains("Sent tasks")
        .assert_contains("Received tasks");

    let out = b.post("/sign-out", &[]).await;
    assert_eq!(out.location(), "/sign-in");
    assert_eq!(b.get("/patient").await.location(), "/sign-in");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_patient_is_found_by_nhs_number_with_clear_messages_when_not() {
    let world = World::start().await;
    let mut b = world.browser();
    b.sign_in("Y00001", "G11111116").await;

    b.get("/patient")
        .await
        .assert_contains(
            r#"<label class="nhsuk-label nhsuk-label--s" for="nhs">NHS number</label>"#,
        )
        .assert_contains("Find patient");
    for (typed, message) in [
        ("", "Enter the patient&#39;s NHS number"),
        ("12345", "NHS number must be 10 digits"),
        (
            "94767l9931",
            "NHS number must only contain numbers and spaces",
        ),
        ("123 456 7890", "Modulus 11"),
    ] {
        let page = b.post("/patient", &[("nhs", typed)]).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{typed}");
        page.assert_contains("There is a problem")
            .assert_contains(message)
            .assert_contains("nhsuk-form-group--error");
    }
    let nobody = b.post("/patient", &[("nhs", "999 999 9999")]).await;
    assert_eq!(nobody.status, StatusCode::NOT_FOUND);
    nobody.assert_contains("No patient with NHS number 999 999 9999 was found");

    let dawes = b.post("/patient", &[("nhs", " 947 671 9931 ")]).await;
    assert_eq!(dawes.status, StatusCode::OK, "{}", dawes.body);
    dawes
        .assert_contains("DAWES, Minnie (Mrs)")
        .assert_contains("31-May-1952")
        .assert_contains("947 671 9931")
        .assert_contains("Female")
        .assert_contains("24 Grammar School Road, Brigg, DN20 8AF")
        .assert_contains("GP Connect Demonstrator (GPC001)")
        .assert_contains("North Lincolnshire Extended Access Hub (Y00001)")
        .assert_contains(r#"<option value="GPC001""#)
        .assert_contains("Information only")
        .assert_contains("Action needed")
        .assert_contains("You have 10,000 characters remaining");
    let selected = between(&dawes.body, r#"<option value="GPC001""#, "</option>");
    assert!(selected.contains("selected"), "{selected}");

    let cassin = b.post("/patient", &[("nhs", "9476718897")]).await;
    cassin
        .assert_contains("CASSIN, Carl (Mr)")
        .assert_contains("Not shown: restricted record")
        .assert_lacks("Longcroft")
        .assert_lacks("DN15")
        .assert_contains(r#"<option value="" selected>Choose an organisation</option>"#);

    b.post("/patient", &[("nhs", "9000000009")])
        .await
        .assert_contains("Somerset Bridge Medical Centre (Y12345)")
        .assert_contains("No electronic route")
        .assert_contains("01632 960030");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_send_form_shows_each_problem_next_to_its_field_and_searches_organisations() {
    let world = World::start().await;
    let mut b = world.browser();
    b.sign_in("Y00001", "G11111116").await;

    let empty = b
        .post(
            "/send",
            &[
                ("nhs", DAWES),
                ("to", ""),
                ("details", "  "),
                ("action", "send"),
            ],
        )
        .await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST);
    empty
        .assert_contains("There is a problem")
        .assert_contains(r##"<a href="#to">Select who to send the task to</a>"##)
        .assert_contains(r##"<a href="#task_type">Select the type of task</a>"##)
        .assert_contains(r##"<a href="#details">Enter the details of the task</a>"##)
        .assert_contains(r#"id="details-error""#)
        .assert_contains("DAWES, Minnie (Mrs)");

    let long = "x".repeat(10_001);
    let too_long = b
        .post(
            "/send",
            &[
                ("nhs", DAWES),
                ("to", "GPC001"),
                ("task_type", "2"),
                ("details", &long),
                ("action", "send"),
            ],
        )
        .await;
    assert_eq!(too_long.status, StatusCode::BAD_REQUEST);
    too_long
        .assert_contains("Details must be 10,000 characters or fewer")
        .assert_contains("You have 1 character too many")
        .assert_lacks("Select the type of task");
    assert!(
        world
            .engine
            .outbox()
            .list(&gpc_domain::OdsCode::parse("Y00001").unwrap(), 10)
            .await
            .unwrap()
            .is_empty()
    );

    let search = b
        .post(
            "/send",
            &[
                ("nhs", DAWES),
                ("to", "GPC001"),
                ("to_q", "physio"),
                ("task_type", "1"),
                ("details", "Kept <as typed>"),
                ("action", "search"),
            ],
        )
        .await;
    assert_eq!(search.status, StatusCode::OK);
    search
        .assert_contains("Brigg Community Physiotherapy (XPH001) – Physio")
        .assert_contains(r#"<option value="GPC001""#)
        .assert_lacks(r#"<option value="XCM001""#)
        .assert_contains("Kept &#60;as typed&#62;</textarea>")
        .assert_lacks("There is a problem");
    let by_code = b
        .post(
            "/send",
            &[
                ("nhs", DAWES),
                ("to", ""),
                ("to_q", "y12"),
                ("action", "search"),
            ],
        )
        .await;
    by_code.assert_contains(
        "Somerset Bridge Medical Centre (Y12345) – GP practice – no electronic route: telephone 01632 960030",
    );
    b.post(
        "/send",
        &[
            ("nhs", DAWES),
            ("to", "GPC001"),
            ("to_q", "zzz"),
            ("action", "search"),
        ],
    )
    .await
    .assert_contains("No organisation&#39;s name or ODS code contains");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_is_delivered_shown_escaped_and_listed_as_sent_and_received() {
    let world = World::start().await;
    let mut hub = world.browser();
    hub.sign_in("Y00001", "G11111116").await;
    let text = "<script>alert('x')</script> & please review";
    let path = hub.send("947 671 9931", "GPC001", "2", text).await;
    let delivered = hub
        .wait_for(&path, "Delivered to GP Connect Demonstrator")
        .await;
    delivered
        .assert_contains("&#60;script&#62;alert(&#39;x&#39;)&#60;/script&#62; &#38; please review")
        .assert_lacks("<script>alert")
        .assert_contains("Action needed")
        .assert_contains("GP Connect Demonstrator (GPC001)")
        .assert_contains("Telephone <span class=\"app-nowrap\">01632 960001</span>")
        .assert_contains("Delivery attempts")
        .assert_contains("201");
    let provider_id =
        between(&delivered.body, r#"data-testid="provider-task-id">"#, "<").to_owned();
    assert!(!provider_id.is_empty());

    let list = hub.get("/sent").await;
    list.assert_contains("GP Connect Demonstrator (GPC001)")
        .assert_contains("Mrs Minnie DAWES")
        .assert_contains("947 671 9931")
        .assert_contains("Delivered")
        .assert_contains(&format!("href=\"{path}\""))
        .assert_contains(r#"aria-sort="descending""#);
    hub.get("/sent?sort=oldest")
        .await
        .assert_contains(r#"aria-sort="ascending""#);

    let mut practice = world.browser();
    practice.sign_in("GPC001", "G13579135").await;
    let inbox = practice.get("/received").await;
    inbox
        .assert_contains("North Lincolnshire Extended Access Hub (Y00001)")
        .assert_contains("Mrs Melissa PARSONS")
        .assert_contains("General Medical Practitioner")
        .assert_contains("Mrs Minnie DAWES")
        .assert_contains("Action needed")
        .assert_contains(&format!("/received/{provider_id}"));
    practice
        .get(&format!("/received/{provider_id}"))
        .await
        .assert_contains("&#60;script&#62;alert(&#39;x&#39;)&#60;/script&#62;")
        .assert_lacks("<script>alert");

    // Another organisation's tasks are not there to be seen.
    assert_eq!(practice.get(&path).await.status, StatusCode::NOT_FOUND);
    assert_eq!(
        hub.get(&format!("/received/{provider_id}")).await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejection_and_no_route_are_explained_with_the_telephone() {
    let world = World::start().await;
    let mut b = world.browser();
    b.sign_in("Y00001", "G11111116").await;

    let rejected_tag =
        "Status: <strong class=\"nhsuk-tag nhsuk-tag--red\" data-testid=\"status\">Rejected";
    let no_record = b.send(DAWES, "XOA001", "1", "For information").await;
    // Refused at the patient look-up, before any Order: the step is named,
    // and the look-up's 200 is not shown as the refusal's status.
    b.wait_for(&no_record, rejected_tag)
        .await
        .assert_contains(
            "Refused at the patient look-up on Out of Area Medical Centre&#39;s system, \
             before the task was sent: Out of Area Medical Centre holds no record of this patient",
        )
        .assert_contains("01632 960020")
        .assert_contains("HTTP status </span>none</td>")
        .assert_lacks("HTTP status </span>200</td>");
    let towers = b.send("9476718900", "XOA001", "1", "For information").await;
    b.wait_for(&towers, rejected_tag)
        .await
        .assert_contains(
            "No data-sharing agreement allows this task to be sent to Out of Area Medical Centre",
        )
        .assert_contains("HTTP status </span>403</td>")
        .assert_lacks("Refused at the");

    // PDS records Mrs JOHNSON's death: the form says so, and nothing is sent.
    let deceased = b
        .post(
            "/send",
            &[
                ("nhs", "9000000173"),
                ("to", "GPC001"),
                ("to_q", ""),
                ("task_type", "2"),
                ("details", "Please review the medication."),
                ("action", "send"),
            ],
        )
        .await;
    assert_eq!(deceased.status, StatusCode::BAD_REQUEST);
    deceased.assert_contains(
        "The task was not sent: this patient is recorded as deceased on 13 Jul 2016 (PDS)",
    );
    b.get("/sent").await.assert_lacks("Claire JOHNSON");

    let no_route = b
        .send("9000000009", "Y12345", "2", "Please call back")
        .await;
    let page = b.get(&no_route).await;
    page.assert_contains("No electronic route")
        .assert_contains("Somerset Bridge Medical Centre cannot receive tasks electronically")
        .assert_contains("01632 960030");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_carry_the_organisations_status_changes_and_arrivals() {
    let world = World::start().await;
    let mut b = world.browser();
    b.sign_in("Y00001", "G11111116").await;
    let mut events = reqwest::Client::new()
        .get(format!("{}/events", world.web))
        .header("cookie", b.cookie().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), StatusCode::OK);
    assert!(
        events.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );

    // Another organisation's arrival is not this user's business.
    let _ = world.received.send(ReceivedEvent {
        tenant: gpc_domain::OdsCode::parse("GPC001").unwrap(),
        task_id: "not-for-y00001".into(),
    });
    let path = b.send(DAWES, "GPC001", "1", "Seen live").await;
    let id = path.trim_start_matches("/sent/");
    let mut seen = String::new();
    let deadline = tokio::time::Instant::now() + common::PATIENCE;
    while !(seen.contains("\"status\":\"Delivered\"") && seen.contains(id)) {
        let chunk = tokio::time::timeout_at(deadline, events.chunk())
            .await
            .expect("a Delivered event in time")
            .unwrap()
            .expect("the stream stays open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(seen.contains("event: status"));
    assert!(seen.contains("\"label\":\"Sending\""), "{seen}");
    assert!(
        !seen.contains("Seen live"),
        "task text must not travel in events"
    );

    let _ = world.received.send(ReceivedEvent {
        tenant: gpc_domain::OdsCode::parse("Y00001").unwrap(),
        task_id: "arrived-at-y00001".into(),
    });
    let mut more = String::new();
    while !more.contains("arrived-at-y00001") {
        let chunk = tokio::time::timeout(common::PATIENCE, events.chunk())
            .await
            .expect("a received event in time")
            .unwrap()
            .unwrap();
        more.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(more.contains("event: received"));
    assert!(!format!("{seen}{more}").contains("not-for-y00001"));

    let anonymous = reqwest::get(format!("{}/events", world.web)).await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_from_elsewhere_are_refused_and_assets_are_cached() {
    let world = World::start().await;
    let mut b = world.browser();
    b.sign_in("Y00001", "G11111116").await;
    let forged = reqwest::Client::new()
        .post(format!("{}/send", world.web))
        .header("cookie", b.cookie().unwrap())
        .header("origin", "http://attacker.example")
        .form(&[
            ("nhs", DAWES),
            ("to", "GPC001"),
            ("task_type", "2"),
            ("details", "x"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    assert!(
        world
            .engine
            .outbox()
            .list(&gpc_domain::OdsCode::parse("Y00001").unwrap(), 10)
            .await
            .unwrap()
            .is_empty()
    );

    let page = b.get("/patient").await;
    let script = between(&page.body, r#"<script src=""#, "\"").replace("&#38;", "&");
    assert!(script.starts_with("/assets/app.js?v="), "{script}");
    assert!(!page.body.contains("<script>"), "no inline script");
    let js = b.get(&script).await;
    assert_eq!(js.status, StatusCode::OK);
    assert!(
        js.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
    assert_eq!(
        js.headers["cache-control"],
        "public, max-age=31536000, immutable"
    );
    let etag = js.headers["etag"].to_str().unwrap().to_owned();
    let again = reqwest::Client::new()
        .get(format!("{}/assets/app.js", world.web))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    let css = b.get("/assets/nhsuk-frontend-10.6.1.min.css").await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(css.body.contains("nhsuk-frontend-version"));
    assert_eq!(
        b.get("/assets/images/nhsuk-icon-cross.svg").await.status,
        StatusCode::OK
    );
    b.get("/assets/nhsuk-frontend-LICENSE.txt")
        .await
        .assert_contains("MIT License");
    assert_eq!(
        b.get("/assets/../Cargo.toml").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_out_browser_cannot_see_or_send_anything() {
    let world = World::start().await;
    let mut b = Browser::new(&world.web);
    for path in ["/patient", "/sent", "/received", "/sent/x", "/received/x"] {
        assert_eq!(b.get(path).await.location(), "/sign-in", "{path}");
    }
    let send = b
        .post(
            "/send",
            &[
                ("nhs", DAWES),
                ("to", "GPC001"),
                ("task_type", "2"),
                ("details", "x"),
            ],
        )
        .await;
    assert_eq!(send.location(), "/sign-in");
    assert!(
        world
            .engine
            .outbox()
            .list(&gpc_domain::OdsCode::parse("Y00001").unwrap(), 10)
            .await
            .unwrap()
            .is_empty()
    );
}

/// The receiving practice works a task from its pages (task-lifecycle.md
/// §4): the lists by state, take, a colleague who reaches for it after is
/// told who took it, assign, done, and the timeline of every change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_received_task_is_taken_assigned_and_done_from_its_page() {
    let world = World::start().await;
    let mut hub = world.browser();
    hub.sign_in("Y00001", "G11111116").await;
    let id = hub.deliver_to_gpc001("Please review medication").await;
    let task = format!("/received/{id}");
    let change = format!("/received/{id}/change");

    let mut gilbert = world.browser();
    gilbert.sign_in("GPC001", "G13579135").await;
    let mut ross = world.browser();
    ross.sign_in("GPC001", "G50000001").await;

    let todo = gilbert.get("/received").await;
    todo.assert_contains(r#"aria-current="page">To do</a>"#)
        .assert_contains(&task)
        .assert_contains(r#"data-testid="state">Received</strong>"#);
    gilbert
        .get("/received?view=unassigned")
        .await
        .assert_contains(&task);
    gilbert
        .get("/received?view=done")
        .await
        .assert_lacks(&task)
        .assert_contains("No task is done yet.");
    assert_eq!(
        gilbert.get("/received?view=everything").await.status,
        StatusCode::NOT_FOUND
    );
    gilbert
        .get(&task)
        .await
        .assert_contains("Take this task")
        .assert_contains(r#"name="version" value="1""#)
        .assert_contains("Mrs Helen ROSS, Nurse");

    // Both saw version 1: the first take wins, the second is told who.
    let taken = gilbert
        .post(&change, &[("action", "take"), ("version", "1")])
        .await;
    assert_eq!(taken.status, StatusCode::SEE_OTHER, "{}", taken.body);
    let late = ross
        .post(&change, &[("action", "take"), ("version", "1")])
        .await;
    assert_eq!(late.status, StatusCode::CONFLICT, "{}", late.body);
    late.assert_contains("Your change was not made: Dr Nichole GILBERT took this task at")
        .assert_contains("The task is now accepted.")
        .assert_contains(r#"data-testid="owner">Dr Nichole GILBERT (G13579135)"#)
        .assert_lacks("Take this task");
    gilbert
        .get("/received?view=mine")
        .await
        .assert_contains(&task);
    ross.get("/received?view=mine").await.assert_lacks(&task);

    // A reason is required to reject: nothing changes without one.
    let no_reason = gilbert
        .post(
            &change,
            &[("action", "reject"), ("version", "2"), ("text", "  ")],
        )
        .await;
    assert_eq!(
        no_reason.status,
        StatusCode::BAD_REQUEST,
        "{}",
        no_reason.body
    );
    no_reason.assert_contains(r##"href="#reject-reason">Enter the reason the sender will see"##);

    let assigned = gilbert
        .post(
            &change,
            &[
                ("action", "assign"),
                ("version", "2"),
                ("to", "G50000001"),
                ("text", "Over to you"),
            ],
        )
        .await;
    assert_eq!(assigned.status, StatusCode::SEE_OTHER, "{}", assigned.body);
    ross.get("/received?view=mine").await.assert_contains(&task);
    let done = ross
        .post(
            &change,
            &[
                ("action", "complete"),
                ("version", "3"),
                ("text", "Review booked <b>Thursday</b>"),
            ],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.body);

    let page = ross.get(&task).await;
    page.assert_contains(r#"data-testid="state">Completed</strong>"#)
        .assert_lacks("Take this task")
        .assert_lacks(r#"data-testid="reject""#)
        .assert_contains("Over to you")
        .assert_contains("Review booked &#60;b&#62;Thursday&#60;/b&#62;")
        .assert_lacks("<b>Thursday");
    let versions: Vec<&str> = page
        .body
        .match_indices("data-version=\"")
        .map(|(i, m)| &page.body[i + m.len()..i + m.len() + 1])
        .collect();
    assert_eq!(versions, ["1", "2", "3", "4"]);
    gilbert
        .get("/received?view=done")
        .await
        .assert_contains(&task)
        .assert_contains(r#"data-testid="state">Completed</strong>"#);
    gilbert.get("/received").await.assert_lacks(&task);
    // Another organisation cannot change it.
    assert_eq!(
        hub.post(&change, &[("action", "take"), ("version", "4")])
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}
