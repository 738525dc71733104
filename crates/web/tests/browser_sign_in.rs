//! Sign-in as a clinician does it (sign-in.md §4): headless Chromium through
//! the real OpenID Provider's login form (`tests/oidc/start.js`), then a
//! task sent and delivered, then sign-out through the provider's
//! end-session endpoint, after which a page asks to sign in again.

// A test crate sees every dev-dependency of its package, and uses only some.
#![allow(unused_crate_dependencies)]
// Helpers outside `#[test]` functions panic on purpose too: a failure is the test's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Browser;
use common::oidc::SignInWorld;
use common::webdriver::Driver;
use gpc_server::ServerConfig;

/// Logs `login` in at the provider's form, which the driver is on (or is
/// on its way to).
async fn log_in_at_provider(driver: &Driver, login: &str) {
    driver.type_into("input[name=login]", login).await;
    driver.type_into("input[name=password]", "any").await;
    driver.click("button[type=submit]").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cis2_user_signs_in_in_chromium_sends_a_task_and_signs_out() {
    let driver = Driver::start().await;
    let s = SignInWorld::start("", false, ServerConfig::default()).await;

    // A page of the UI without a session: off to the provider's login form.
    driver.goto(&format!("{}/sent", s.web)).await;
    driver.find("input[name=login]").await;
    assert!(driver.url().await.starts_with(&s.op.issuer));
    log_in_at_provider(&driver, "hub.clinician").await;
    driver.wait_for_text("h1", "Find a patient").await;
    driver
        .wait_for_text(
            "[data-testid=signed-in-as]",
            "Aisha OKAFOR, North Lincolnshire",
        )
        .await;
    let session = driver
        .cookie("gpc_session")
        .await
        .expect("a session cookie");
    assert_eq!(session["httpOnly"], true, "{session}");
    assert_eq!(session["sameSite"], "Lax", "{session}");
    let held = format!("gpc_session={}", session["value"].as_str().unwrap());
    assert!(
        driver.cookie("gpc_sign_in").await.is_none(),
        "the sign-in's cookie is cleared once used"
    );

    // A task, sent through the form and delivered, as the signed-in user.
    driver
        .find_patient(&s.web, "947 671 9931", "DAWES, Minnie (Mrs)")
        .await;
    driver
        .type_into("#details", "Please review the medication.")
        .await;
    driver.click("label[for=task_type-2]").await;
    driver.click("button[value=send]").await;
    driver
        .wait_for_text("[data-testid=status]", "Delivered")
        .await;
    let id = driver.url().await.rsplit('/').next().unwrap().to_owned();
    let sent = s.world.engine.outbox().get(&id).await.unwrap().unwrap();
    assert_eq!(sent.user_sds_id, "555021935107");
    assert_eq!(sent.user_name, "Aisha OKAFOR");

    // Sign-out: the provider's end-session page, then back to this service.
    driver.click("button.nhsuk-header__account-button").await;
    driver.find("button[name=logout]").await;
    let at_provider = driver.url().await;
    assert!(
        at_provider.starts_with(&format!("{}/session/end", s.op.issuer)),
        "{at_provider}"
    );
    driver.click("button[name=logout]").await;
    driver
        .wait_for_text("[data-testid=auth-heading]", "You have signed out")
        .await;
    assert_eq!(driver.url().await, format!("{}/auth/signed-out", s.web));
    assert!(driver.cookie("gpc_session").await.is_none());
    // The session is gone from the database, not only from this browser.
    let after = Browser::holding(&s.web, &held).get("/sent").await;
    assert_eq!(after.status, 303);
    assert_eq!(after.location(), "/auth/sign-in");

    // The provider's session ended too: a page asks for a sign-in again,
    // rather than letting the browser straight back in.
    driver.goto(&format!("{}/sent", s.web)).await;
    driver.find("input[name=login]").await;
    assert!(driver.url().await.starts_with(&s.op.issuer));
}
