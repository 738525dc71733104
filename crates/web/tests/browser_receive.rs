//! The receiving practice's pages in headless Chromium: a task's page shows
//! a colleague's change as it happens, without a reload, and the task is
//! then marked as done from it.

// A test crate sees every dev-dependency of its package, and uses only some.
#![allow(unused_crate_dependencies)]
// Helpers outside `#[test]` functions panic on purpose too: a failure is the test's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::World;
use common::webdriver::{Driver, screenshot};
use reqwest::StatusCode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_colleagues_take_shows_live_on_the_task_page_which_then_marks_it_done() {
    let driver = Driver::start().await;
    let world = World::start().await;
    let web = world.web.clone();

    let mut hub = world.browser();
    hub.sign_in("Y00001", "G11111116").await;
    let id = hub.deliver_to_gpc001("Please review medication").await;

    // Mrs ROSS has the task open in her browser.
    driver.goto(&format!("{web}/sign-in")).await;
    driver.click("input[name=org][value=GPC001]").await;
    driver.click("main button[type=submit]").await;
    driver.wait_for_text("legend", "Who are you at").await;
    driver.click("input[name=user][value=G50000001]").await;
    driver.click("main button[type=submit]").await;
    driver.wait_for_text("h1", "Find a patient").await;
    driver.goto(&format!("{web}/received/{id}")).await;
    driver
        .wait_for_text("[data-testid=state]", "Received")
        .await;
    driver.wait_for_text("#task-status", "Take this task").await;
    // Gone after a reload: proves the change below arrives without one.
    driver
        .execute("window.appNoReload = true; return true;")
        .await;

    // Dr GILBERT takes it from another browser.
    let mut gilbert = world.browser();
    gilbert.sign_in("GPC001", "G13579135").await;
    let taken = gilbert
        .post(
            &format!("/received/{id}/change"),
            &[("action", "take"), ("version", "1")],
        )
        .await;
    assert_eq!(taken.status, StatusCode::SEE_OTHER, "{}", taken.body);

    driver
        .wait_for_text("[data-testid=state]", "Accepted")
        .await;
    driver
        .wait_for_text("[data-testid=owner]", "Dr Nichole GILBERT")
        .await;
    driver
        .wait_for_text("#task-timeline", "Dr Nichole GILBERT")
        .await;
    let kept = driver.execute("return window.appNoReload === true;").await;
    assert_eq!(kept, true, "the page was reloaded");
    let take_buttons = driver.find_all("[data-testid=take]").await;
    assert!(take_buttons.is_empty(), "Take is still offered");
    driver
        .screenshot(&screenshot("30-received-task-taken-live.png"))
        .await;

    // The page now carries version 2, so marking it done goes through.
    driver.type_into("#complete-note", "Review booked").await;
    driver.click("[data-testid=complete]").await;
    driver
        .wait_for_text("[data-testid=state]", "Completed")
        .await;
    driver
        .wait_for_text("#task-timeline", "Review booked")
        .await;
    driver
        .screenshot(&screenshot("31-received-task-done.png"))
        .await;
    driver.goto(&format!("{web}/received?view=done")).await;
    driver.wait_for_text("main table", "Completed").await;
}
