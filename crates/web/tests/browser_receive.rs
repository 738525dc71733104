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
    driver.sign_in_demo(&web, "GPC001", "G50000001").await;
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

    // The page now carries version 2, so marking it done goes through. The
    // hub's word that it heard of the take is the last live change: typed
    // before it, the note would go with the form it replaces.
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
    driver
        .screenshot(&screenshot("31-received-task-done.png"))
        .await;
    driver.goto(&format!("{web}/received?view=done")).await;
    driver.wait_for_text("main table", "Completed").await;
}

/// Task-lifecycle.md §4, both sides in their own browser: the practice
/// takes and completes the hub's task, and the hub's page of it follows
/// each change without a reload; the hub then cancels another task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_watches_its_task_taken_and_completed_then_cancels_another() {
    let world = World::start().await;
    let web = world.web.clone();
    let mut hub_http = world.browser();
    hub_http.sign_in("Y00001", "G11111116").await;
    let sent_path = hub_http
        .send("947 671 9931", "GPC001", "2", "Please review medication")
        .await;
    let delivered = hub_http
        .wait_for(&sent_path, "Delivered to GP Connect Demonstrator")
        .await;
    let id = common::between(&delivered.body, r#"data-testid="provider-task-id">"#, "<").to_owned();

    let hub = Driver::start().await;
    hub.sign_in_demo(&web, "Y00001", "G11111116").await;
    hub.goto(&format!("{web}{sent_path}")).await;
    hub.wait_for_text(
        "[data-testid=remote-state]",
        "Nobody at GP Connect Demonstrator has taken it yet",
    )
    .await;
    hub.find("[data-testid=cancel]").await;
    hub.execute("window.appNoReload = true; return true;").await;

    let practice = Driver::start().await;
    practice.sign_in_demo(&web, "GPC001", "G13579135").await;
    practice.goto(&format!("{web}/received/{id}")).await;
    practice.click("[data-testid=take]").await;
    practice
        .wait_for_text("[data-testid=state]", "Accepted")
        .await;

    hub.wait_for_text("[data-testid=status]", "Accepted by Dr Nichole GILBERT")
        .await;
    hub.wait_for_text(
        "[data-testid=remote-state]",
        "Accepted by Dr Nichole GILBERT",
    )
    .await;
    hub.wait_for_text("#task-timeline", "Dr Nichole GILBERT")
        .await;
    hub.screenshot(&screenshot("32-sent-task-accepted-live.png"))
        .await;

    // The last live change of the take (the hub heard of it) comes before
    // typing, or the note would go with the form it replaces.
    practice
        .wait_for_text("[data-testid=update-status]", "has been told")
        .await;
    practice
        .type_into("#complete-note", "Review booked for Thursday")
        .await;
    practice.click("[data-testid=complete]").await;
    practice
        .wait_for_text("[data-testid=state]", "Completed")
        .await;
    practice
        .wait_for_text("[data-testid=update-status]", "has been told")
        .await;

    hub.wait_for_text("[data-testid=status]", "Completed").await;
    hub.wait_for_text("#task-timeline", "Review booked for Thursday")
        .await;
    let kept = hub.execute("return window.appNoReload === true;").await;
    assert_eq!(kept, true, "the sender's page was reloaded");
    assert!(
        hub.find_all("[data-testid=cancel]").await.is_empty(),
        "a completed task still offers Cancel"
    );
    hub.screenshot(&screenshot("33-sent-task-completed-live.png"))
        .await;
    hub.goto(&format!("{web}/sent")).await;
    hub.wait_for_text("main table", "Completed").await;

    // The hub withdraws a second task; the practice's copy is cancelled.
    let second = hub_http
        .send("947 671 9931", "GPC001", "2", "Please call the patient")
        .await;
    let delivered = hub_http
        .wait_for(&second, "Delivered to GP Connect Demonstrator")
        .await;
    let second_id =
        common::between(&delivered.body, r#"data-testid="provider-task-id">"#, "<").to_owned();
    hub.goto(&format!("{web}{second}")).await;
    // Without a reason it is refused, and the task stays open.
    hub.click("[data-testid=cancel]").await;
    hub.wait_for_text(".nhsuk-error-summary", "Enter why the task is cancelled")
        .await;
    hub.type_into("#cancel-reason", "Sent to the wrong practice")
        .await;
    hub.click("[data-testid=cancel]").await;
    hub.wait_for_text("[data-testid=status]", "Cancelled").await;
    hub.screenshot(&screenshot("34-sent-task-cancelled.png"))
        .await;
    let mut practice_http = world.browser();
    practice_http.sign_in("GPC001", "G13579135").await;
    practice_http
        .get(&format!("/received/{second_id}"))
        .await
        .assert_contains("Cancelled")
        .assert_contains("Sent to the wrong practice");
}
