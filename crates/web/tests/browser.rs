//! The UI in headless Chromium (Debian's `chromium` and `chromium-driver`),
//! as a clinician uses it, against the real server, SSP and providers.
//! Screenshots of the main pages go to `target/ui-screenshots/`.

// A test crate sees every dev-dependency of its package, and uses only some.
#![allow(unused_crate_dependencies)]
// Helpers outside `#[test]` functions panic on purpose too: a failure is the test's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::World;
use common::webdriver::{Driver, ENTER, SPACE, TAB, screenshot};
use gpc_consumer::SendRequest;
use gpc_domain::task::TaskType;

async fn shot(driver: &Driver, name: &str) {
    driver.screenshot(&screenshot(name)).await;
}

/// Tabs forward until the element `id` has the focus; returns the stops on the way.
async fn tab_to(driver: &Driver, id: &str) -> Vec<String> {
    let mut stops = Vec::new();
    for _ in 0..40 {
        driver.press(TAB).await;
        let focused = driver.focused().await;
        stops.push(focused.clone());
        if focused == id {
            return stops;
        }
    }
    panic!("the keyboard never reached #{id}; it went {stops:?}");
}

async fn no_sideways_scroll(driver: &Driver, page: &str) {
    let width = driver
        .execute("return document.documentElement.scrollWidth;")
        .await
        .as_u64()
        .unwrap();
    assert!(
        width <= 320,
        "{page} is {width} px wide at a 320 px viewport"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clinician_sends_and_receives_tasks_in_a_browser() {
    let driver = Driver::start().await;
    let world = World::start().await;
    let web = world.web.clone();

    // Sign in at the extended access hub, as the demo says.
    driver.goto(&format!("{web}/")).await;
    driver.wait_for_text("h1", "Sign in").await;
    driver.wait_for_text("main", "This is a demo sign-in").await;
    shot(&driver, "01-sign-in.png").await;
    driver.click("input[name=org][value=Y00001]").await;
    driver.click("main button[type=submit]").await;
    driver
        .wait_for_text("legend", "Who are you at North Lincolnshire")
        .await;
    driver.click("input[name=user][value=G11111116]").await;
    shot(&driver, "02-sign-in-user.png").await;
    driver.click("main button[type=submit]").await;
    driver.wait_for_text("h1", "Find a patient").await;
    driver
        .wait_for_text("[data-testid=signed-in-as]", "Mrs Melissa PARSONS")
        .await;

    // An NHS number that fails Modulus 11 is explained, next to the field.
    driver.type_into("#nhs", "123 456 7890").await;
    driver.click("form.app-find-patient button").await;
    driver
        .wait_for_text(".nhsuk-error-summary", "Modulus 11")
        .await;
    driver.wait_for_text("#nhs-error", "Modulus 11").await;
    shot(&driver, "03-find-patient-error.png").await;

    // The patient's banner, and the form addressed to the registered practice.
    driver
        .find_patient(&web, "947 671 9931", "DAWES, Minnie (Mrs)")
        .await;
    let banner = driver.text(".app-patient-banner").await;
    for shown in [
        "31-May-1952",
        "947 671 9931",
        "Female",
        "24 Grammar School Road, Brigg, DN20 8AF",
        "GP Connect Demonstrator (GPC001)",
    ] {
        assert!(banner.contains(shown), "{shown} not in {banner}");
    }
    let chosen = driver
        .execute("return document.getElementById('to').value;")
        .await;
    assert_eq!(chosen, "GPC001");

    // Send with nothing filled in: each problem next to its field.
    driver.click("button[value=send]").await;
    driver
        .wait_for_text(".nhsuk-error-summary", "Select the type of task")
        .await;
    driver
        .wait_for_text("#details-error", "Enter the details of the task")
        .await;
    shot(&driver, "04-send-form-errors.png").await;

    // The character count follows the typing; the text is sent as typed.
    let text = "<script>document.title='owned'</script> Please review the medication.";
    driver.type_into("#details", text).await;
    let count = driver.text("#details-count").await;
    assert_eq!(
        count,
        format!(
            "You have {} characters remaining",
            format_thousands(10_000 - text.len())
        )
    );
    driver.click("label[for=task_type-2]").await;
    shot(&driver, "05-send-form.png").await;
    driver.click("button[value=send]").await;
    driver
        .wait_for_text("[data-testid=status]", "Delivered")
        .await;
    let provider_id = driver.text("[data-testid=provider-task-id]").await;
    assert!(!provider_id.is_empty());
    assert_eq!(driver.text("[data-testid=task-text]").await, text);
    let title = driver.execute("return document.title;").await;
    assert_ne!(title, "owned", "the task text ran as a script");
    driver.wait_for_text("#task-attempts", "201").await;
    shot(&driver, "06-sent-task-delivered.png").await;
    let delivered_page = driver.url().await;

    // The sent list, with its sortable date.
    driver
        .click("a.nhsuk-header__navigation-link[href='/sent']")
        .await;
    driver.wait_for_text("#sent-table", "Delivered").await;
    driver
        .wait_for_text("#sent-table", "GP Connect Demonstrator (GPC001)")
        .await;
    shot(&driver, "07-sent-tasks.png").await;
    driver.click("a.app-sort-link").await;
    let sort = driver
        .execute("return document.querySelector('th[aria-sort]').getAttribute('aria-sort');")
        .await;
    assert_eq!(sort, "ascending");

    // A task sent elsewhere in the organisation appears, and its status
    // changes, while the list stays open.
    driver.execute("window.stillTheSamePage = true;").await;
    world
        .engine
        .send(SendRequest {
            user: gpc_consumer::Who::Sds("G11111116".into()),
            from: Some("Y00001".into()),
            patient: "9476719966".into(),
            task_type: TaskType::InformationOnly,
            text: "Sent from another screen.".into(),
            to: None,
        })
        .await
        .expect("the hub sends");
    driver
        .wait_for_text("#sent-table", "Miss Ruby MACKIN")
        .await;
    driver
        .wait_for_text("#sent-table tbody tr:last-child", "Delivered")
        .await;
    driver
        .wait_for_text(
            "#announcer",
            "Task to Test GP Care Trust (R1A14): Delivered",
        )
        .await;
    let same_page = driver
        .execute("return window.stillTheSamePage === true;")
        .await;
    assert_eq!(
        same_page, true,
        "the sent list reloaded instead of updating"
    );

    // To an organisation found by the filter, which does not know the patient.
    driver
        .find_patient(&web, "9476719931", "DAWES, Minnie (Mrs)")
        .await;
    driver.type_into("#to-filter", "out of area").await;
    driver
        .wait_for_text("#to-filter-status", "1 organisation matches")
        .await;
    driver.click("#to option[value=XOA001]").await;
    driver
        .wait_for_text(
            "#to-route",
            "Out of Area Medical Centre: GP practice (another area)",
        )
        .await;
    driver.click("label[for=task_type]").await;
    driver.type_into("#details", "For information.").await;
    driver.click("button[value=send]").await;
    driver
        .wait_for_text("[data-testid=status]", "Rejected")
        .await;
    driver
        .wait_for_text("[data-testid=reason]", "holds no record of this patient")
        .await;
    shot(&driver, "08-sent-task-rejected.png").await;

    // A practice with no electronic route: its telephone, before and after Send.
    driver
        .find_patient(&web, "9000000009", "SMITH, Jane (Mrs)")
        .await;
    driver.wait_for_text("#to-route", "01632 960030").await;
    shot(&driver, "09-no-electronic-route.png").await;
    driver.click("label[for=task_type-2]").await;
    driver
        .type_into("#details", "Please call the patient.")
        .await;
    driver.click("button[value=send]").await;
    driver
        .wait_for_text("[data-testid=status]", "No electronic route")
        .await;
    driver
        .wait_for_text("[data-testid=telephone]", "01632 960030")
        .await;

    // The keyboard alone: find the patient and send a notification.
    driver.goto(&format!("{web}/patient")).await;
    tab_to(&driver, "nhs").await;
    driver.press("9476719931").await;
    driver.press(ENTER).await;
    driver
        .wait_for_text("[data-testid=patient-name]", "DAWES, Minnie (Mrs)")
        .await;
    tab_to(&driver, "to").await;
    driver.press(TAB).await;
    assert_eq!(driver.focused().await, "to-filter");
    driver.press(TAB).await;
    assert_eq!(driver.focused().await, "Search");
    driver.press(TAB).await;
    assert_eq!(driver.focused().await, "task_type");
    driver.press(SPACE).await;
    driver.press(TAB).await;
    assert_eq!(driver.focused().await, "details");
    driver.press("Typed without a mouse.").await;
    driver.press(TAB).await;
    assert_eq!(driver.focused().await, "Send");
    driver.press(ENTER).await;
    driver
        .wait_for_text("[data-testid=status]", "Delivered")
        .await;
    driver
        .wait_for_text("[data-testid=task-text]", "Typed without a mouse.")
        .await;

    // 320 px wide: nothing scrolls sideways.
    driver.viewport(320, 900).await;
    driver
        .find_patient(&web, "9476719931", "DAWES, Minnie (Mrs)")
        .await;
    no_sideways_scroll(&driver, "the send form").await;
    shot(&driver, "10-send-form-320px.png").await;
    driver.goto(&format!("{web}/sent")).await;
    no_sideways_scroll(&driver, "the sent list").await;
    shot(&driver, "11-sent-tasks-320px.png").await;
    driver.goto(&delivered_page).await;
    no_sideways_scroll(&driver, "a sent task").await;
    driver.viewport(1280, 1000).await;

    // At the practice: the task is in the inbox, and a new one appears live.
    driver.click(".nhsuk-header__account-button").await;
    driver.wait_for_text("h1", "Sign in").await;
    driver.sign_in_demo(&web, "GPC001", "G13579135").await;
    driver
        .click("a.nhsuk-header__navigation-link[href='/received']")
        .await;
    let inbox = driver
        .wait_for_text(
            "#received-table",
            "North Lincolnshire Extended Access Hub (Y00001)",
        )
        .await;
    assert!(inbox.contains("Mrs Melissa PARSONS"), "{inbox}");
    assert!(inbox.contains("Action needed"), "{inbox}");
    assert!(inbox.contains("Mrs Minnie DAWES"), "{inbox}");
    shot(&driver, "12-received-tasks.png").await;
    driver.execute("window.stillTheSamePage = true;").await;
    world
        .engine
        .send(SendRequest {
            user: gpc_consumer::Who::Sds("G30000003".into()),
            from: None,
            patient: "9476719931".into(),
            task_type: TaskType::ActionNeeded,
            text: "Arrived while you watched.".into(),
            to: Some("GPC001".into()),
        })
        .await
        .expect("the physio sends");
    driver
        .wait_for_text("#received-table", "Brigg Community Physiotherapy (XPH001)")
        .await;
    let same_page = driver
        .execute("return window.stillTheSamePage === true;")
        .await;
    assert_eq!(same_page, true, "the list reloaded instead of updating");
    driver
        .wait_for_text("#announcer", "A new task has arrived")
        .await;
    shot(&driver, "13-received-tasks-live.png").await;
    driver.viewport(320, 900).await;
    no_sideways_scroll(&driver, "the received list").await;
    driver.viewport(1280, 1000).await;

    driver.goto(&format!("{web}/received/{provider_id}")).await;
    assert_eq!(driver.text("[data-testid=task-text]").await, text);
    let title = driver.execute("return document.title;").await;
    assert_ne!(title, "owned");
    shot(&driver, "14-received-task.png").await;
}

fn format_thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
