//! In headless Chromium: a task to a provider that is down fails after the
//! automatic retries, offers Retry and the telephone, and is delivered when
//! retried once the provider is back.

// A test crate sees every dev-dependency of its package, and uses only some.
#![allow(unused_crate_dependencies)]
// Helpers outside `#[test]` functions panic on purpose too: a failure is the test's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::webdriver::{Driver, screenshot};
use common::{Spine, World};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_task_is_retried_to_delivered() {
    let driver = Driver::start().await;
    // The providers live on a server of their own, not started yet: SDS
    // lists its address, and the SSP cannot reach it.
    let provider_addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let spine = Spine::serve(
        "127.0.0.1:0".parse().unwrap(),
        tempfile::tempdir().unwrap(),
        Some(format!("http://{provider_addr}")),
    )
    .await;
    let world = World::over(spine).await;
    let web = world.web.clone();

    driver.goto(&format!("{web}/sign-in?org=Y00001")).await;
    driver.click("input[name=user][value=G11111116]").await;
    driver.click("main button[type=submit]").await;
    driver.wait_for_text("h1", "Find a patient").await;
    driver.type_into("#nhs", "9476719931").await;
    driver.click("form.app-find-patient button").await;
    driver
        .wait_for_text("[data-testid=patient-name]", "DAWES, Minnie (Mrs)")
        .await;
    driver.click("label[for=task_type-2]").await;
    driver.type_into("#details", "Please book a review.").await;
    driver.click("button[value=send]").await;

    // Every automatic attempt fails; then Retry and the telephone are offered.
    driver.find("form[action$='/retry'] button").await;
    assert_eq!(driver.text("[data-testid=status]").await, "Failed");
    driver
        .wait_for_text("[data-testid=reason]", "could not be reached")
        .await;
    driver
        .wait_for_text("[data-testid=telephone]", "01632 960001")
        .await;
    let attempts = driver
        .execute("return document.querySelectorAll('#task-attempts tbody tr').length;")
        .await;
    assert_eq!(attempts, 4, "one attempt and three automatic retries");
    driver
        .assert_accessible("a failed sent task, with Retry")
        .await;
    driver
        .screenshot(&screenshot("20-sent-task-failed.png"))
        .await;

    // The provider comes back; a person retries.
    let provider = Spine::start(provider_addr, tempfile::tempdir().unwrap(), None).await;
    driver.click("form[action$='/retry'] button").await;
    driver
        .wait_for_text("[data-testid=status]", "Delivered")
        .await;
    driver.wait_for_text("#task-attempts", "201").await;
    let attempts = driver
        .execute("return document.querySelectorAll('#task-attempts tbody tr').length;")
        .await;
    assert_eq!(attempts, 5);
    driver
        .screenshot(&screenshot("21-sent-task-retried-delivered.png"))
        .await;

    // Delivered exactly once, on the provider that was down: the page said
    // Delivered once the provider had stored it, and no attempt is left due.
    assert_eq!(world.engine.outbox().next_due().await.unwrap(), None);
    assert_eq!(
        provider
            .store
            .count_tasks(&gpc_domain::OdsCode::parse("GPC001").unwrap())
            .await
            .unwrap(),
        1
    );
}
