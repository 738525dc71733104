//! Accessibility, measured: axe-core's WCAG 2.1 A and AA rules on every
//! kind of page of the UI, in headless Chromium, in the states a clinician
//! meets them (errors shown, live updates applied, actions offered). One
//! violation anywhere fails the test and lists what broke where.
//!
//! axe-core comes from `tests/axe/package-lock.json` (`npm ci`, as `.ci/run`
//! does); without it the test fails and says how to install it.

// A test crate sees every dev-dependency of its package, and uses only some.
#![allow(unused_crate_dependencies)]
// Helpers outside `#[test]` functions panic on purpose too: a failure is the test's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::webdriver::Driver;
use common::{Spine, World};

/// Fills in and sends the form of the patient on screen; waits for the
/// sent task's page to show `status`.
async fn send(driver: &Driver, to: &str, details: &str, status: &str) -> String {
    driver
        .execute(&format!(
            "document.getElementById('to').value = '{to}'; return true;"
        ))
        .await;
    driver.click("label[for=task_type-2]").await;
    driver.type_into("#details", details).await;
    driver.click("button[value=send]").await;
    driver.wait_for_text("[data-testid=status]", status).await;
    driver.url().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_page_meets_wcag_2_1_a_and_aa() {
    let driver = Driver::start().await;
    let world = World::start().await;
    let web = world.web.clone();
    let check = |what: &'static str| {
        let driver = &driver;
        async move { driver.assert_accessible(what).await }
    };

    // Signing in, both steps.
    driver.goto(&format!("{web}/sign-in")).await;
    driver.wait_for_text("h1", "Sign in").await;
    check("the sign-in page").await;
    driver.goto(&format!("{web}/sign-in?org=NOPE")).await;
    driver.find(".nhsuk-error-summary").await;
    check("the sign-in page with an error").await;
    driver.click("input[name=org][value=Y00001]").await;
    driver.click("main button[type=submit]").await;
    driver.wait_for_text("legend", "Who are you at").await;
    check("the sign-in page's choice of user").await;
    driver.click("main button[type=submit]").await;
    driver
        .wait_for_text(".nhsuk-error-summary", "Select who you are")
        .await;
    check("the sign-in page's choice of user with an error").await;
    driver.click("input[name=user][value=G11111116]").await;
    driver.click("main button[type=submit]").await;
    driver.wait_for_text("h1", "Find a patient").await;
    check("find a patient").await;

    // Find a patient: an error, then banners of every kind with the send form.
    driver.type_into("#nhs", "123 456 7890").await;
    driver.click("form.app-find-patient button").await;
    driver.wait_for_text("#nhs-error", "Modulus 11").await;
    check("find a patient with an error").await;
    driver
        .find_patient(&web, "9476719931", "DAWES, Minnie (Mrs)")
        .await;
    check("a patient's banner and the send form").await;
    driver.click("button[value=send]").await;
    driver
        .wait_for_text(".nhsuk-error-summary", "Select the type of task")
        .await;
    check("the send form with errors").await;
    driver
        .find_patient(&web, "9476718897", "CASSIN, Carl (Mr)")
        .await;
    check("a restricted patient's banner").await;
    driver
        .find_patient(&web, "9000000173", "JOHNSON, Claire (Mrs)")
        .await;
    check("a deceased patient's banner").await;
    driver
        .find_patient(&web, "9000000009", "SMITH, Jane (Mrs)")
        .await;
    driver.wait_for_text("#to-route", "01632 960030").await;
    check("the send form to a practice without an electronic route").await;

    // Sent tasks in each outcome, and the list.
    send(
        &driver,
        "Y12345",
        "Please call the patient.",
        "No electronic route",
    )
    .await;
    check("a sent task without an electronic route").await;
    driver
        .find_patient(&web, "9476719931", "DAWES, Minnie (Mrs)")
        .await;
    send(&driver, "XOA001", "For information.", "Rejected").await;
    check("a rejected sent task").await;
    driver
        .find_patient(&web, "9476719931", "DAWES, Minnie (Mrs)")
        .await;
    let delivered = send(
        &driver,
        "GPC001",
        "Please review the medication.",
        "Delivered",
    )
    .await;
    driver.find("[data-testid=cancel]").await;
    check("a delivered sent task, with Cancel").await;
    driver.click("[data-testid=cancel]").await;
    driver
        .wait_for_text(".nhsuk-error-summary", "Enter why the task is cancelled")
        .await;
    check("a sent task's cancel form with an error").await;
    driver
        .find_patient(&web, "9476719931", "DAWES, Minnie (Mrs)")
        .await;
    let cancelled = send(&driver, "GPC001", "Sent in error.", "Delivered").await;
    driver
        .type_into("#cancel-reason", "Sent to the wrong practice")
        .await;
    driver.click("[data-testid=cancel]").await;
    driver
        .wait_for_text("[data-testid=status]", "Cancelled")
        .await;
    check("a cancelled sent task").await;
    driver.goto(&format!("{web}/sent")).await;
    driver.wait_for_text("#sent-table", "Cancelled").await;
    check("the sent list").await;
    driver.goto(&format!("{web}/sent/no-such-task")).await;
    check("the page of a task that does not exist").await;

    // At the practice: every view of the received list, and a task's page
    // in each state with the actions that state allows.
    driver.click(".nhsuk-header__account-button").await;
    driver.wait_for_text("h1", "Sign in").await;
    driver.sign_in_demo(&web, "GPC001", "G13579135").await;
    for (view, what) in [
        ("todo", "the received list, To do"),
        ("mine", "the received list, Assigned to me (empty)"),
        ("unassigned", "the received list, Unassigned"),
        ("done", "the received list, Done"),
    ] {
        driver.goto(&format!("{web}/received?view={view}")).await;
        driver.find("main h1").await;
        check(what).await;
    }
    driver.goto(&format!("{web}/received")).await;
    driver.wait_for_text("#received-table", "Received").await;
    driver.click("#received-table a[href^='/received/']").await;
    driver
        .wait_for_text("[data-testid=state]", "Received")
        .await;
    let received = driver.url().await;
    check("a received task with its actions").await;
    driver.click("[data-testid=reject]").await;
    driver.find(".nhsuk-error-summary").await;
    check("a received task's reject form with an error").await;
    driver.goto(&received).await;
    driver.click("[data-testid=take]").await;
    driver
        .wait_for_text("[data-testid=state]", "Accepted")
        .await;
    check("an accepted received task").await;
    driver.goto(&format!("{web}/received?view=mine")).await;
    driver.wait_for_text("#received-table", "Accepted").await;
    check("the received list, Assigned to me").await;
    driver.goto(&received).await;
    // Typed before the take's last live change (the hub heard of it), the
    // note would go with the form that change replaces.
    driver
        .wait_for_text("[data-testid=update-status]", "has been told")
        .await;
    driver.type_into("#complete-note", "Review booked").await;
    driver.click("[data-testid=complete]").await;
    driver
        .wait_for_text("[data-testid=state]", "Completed")
        .await;
    driver
        .wait_for_text("#task-timeline", "Review booked")
        .await;
    check("a completed received task with its timeline").await;
    driver.goto(&format!("{web}/received?view=done")).await;
    driver.wait_for_text("main table", "Completed").await;
    check("the received list, Done, with tasks").await;

    // Back at the hub, the sender's page follows what the practice did.
    driver.sign_in_demo(&web, "Y00001", "G11111116").await;
    driver.goto(&delivered).await;
    driver
        .wait_for_text("[data-testid=status]", "Completed")
        .await;
    check("a sent task completed by its recipient").await;
    drop(cancelled);
}

/// The measurement measures: a page made to break a rule is reported, with
/// the rule and the element.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_page_is_reported() {
    let driver = Driver::start().await;
    let world = World::start().await;
    driver.goto(&format!("{}/sign-in", world.web)).await;
    driver.wait_for_text("h1", "Sign in").await;
    assert_eq!(
        driver.accessibility_violations().await,
        Vec::<serde_json::Value>::new()
    );
    driver
        .execute(
            "const img = document.createElement('img'); img.src = '/nothing.png'; \
             img.id = 'no-alt'; document.querySelector('main').appendChild(img); return true;",
        )
        .await;
    let violations = driver.accessibility_violations().await;
    let ids: Vec<&str> = violations.iter().filter_map(|v| v["id"].as_str()).collect();
    assert_eq!(ids, ["image-alt"], "{violations:#?}");
    assert_eq!(violations[0]["nodes"][0]["target"][0], "#no-alt");
}

/// The pages of CIS2 sign-in (sign-in.md), in oidc mode against the test
/// OpenID Provider: a refused sign-in, and signed out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sign_in_pages_of_oidc_mode_meet_wcag_2_1_a_and_aa() {
    let port = common::oidc::free_port();
    let web = format!("http://127.0.0.1:{port}");
    let secret = "a-client-secret-for-tests";
    let client = serde_json::json!({
        "client_id": "gpc-tasks",
        "client_secret": secret,
        "redirect_uris": [format!("{web}/auth/callback")],
        "post_logout_redirect_uris": [format!("{web}/auth/signed-out")],
    });
    let op = common::oidc::Provider::start(serde_json::json!([client]), "").await;
    let auth = gpc_web::AuthMode::Oidc(gpc_web::OidcConfig {
        issuer: op.issuer.clone(),
        client_id: "gpc-tasks".into(),
        client_secret: Some(secret.to_owned()),
        private_key: None,
        redirect_url: format!("{web}/auth/callback"),
        scopes: gpc_web::OidcConfig::default_scopes(),
        timeout: common::PATIENCE,
    });
    let _spine = Spine::serve_with(
        format!("127.0.0.1:{port}").parse().unwrap(),
        tempfile::tempdir().unwrap(),
        None,
        gpc_server::ServerConfig {
            auth,
            ..gpc_server::ServerConfig::default()
        },
    )
    .await;
    let driver = Driver::start().await;
    driver
        .goto(&format!("{web}/auth/callback?state=forged&code=forged"))
        .await;
    driver.find("[data-testid=auth-message]").await;
    driver.assert_accessible("a refused sign-in").await;
    driver.goto(&format!("{web}/auth/signed-out")).await;
    driver
        .wait_for_text("[data-testid=auth-heading]", "You have signed out")
        .await;
    driver.assert_accessible("the signed-out page").await;
}
