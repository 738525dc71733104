//! "Received tasks": the organisation's inbox, newest first, a page at a
//! time, and one task in full. A task that arrives while the list is open
//! appears in it (see `assets/app.js`).

use super::{Layout, Nav, PageError, render};
use crate::App;
use crate::display;
use crate::session::SignedIn;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use gpc_domain::task::ReceivedTask;
use jiff::Timestamp;
use serde::Deserialize;

const PAGE_SIZE: usize = 50;

#[derive(Template)]
#[template(path = "received_list.html")]
struct ReceivedListPage {
    layout: Layout,
    org_name: String,
    rows: Vec<ReceivedRow>,
    /// Query string of the next (older) page, if there may be one.
    older: Option<String>,
    paged: bool,
}

struct ReceivedRow {
    id: String,
    when: String,
    iso: String,
    from: String,
    from_ods: String,
    sender: String,
    role: String,
    patient: String,
    nhs_number: String,
    task_type: &'static str,
}

#[derive(Deserialize)]
pub struct PageQuery {
    before: Option<String>,
    before_id: Option<String>,
}

pub async fn list(
    State(app): State<App>,
    SignedIn(user): SignedIn,
    Query(query): Query<PageQuery>,
) -> Response {
    let before = match (&query.before, query.before_id) {
        (Some(t), Some(id)) => match t.parse::<Timestamp>() {
            Ok(t) => Some((t, id)),
            Err(_) => return PageError::NotFound.response(Some(user)),
        },
        _ => None,
    };
    let paged = before.is_some();
    let tasks = match app.store.inbox(&user.org_ods, PAGE_SIZE, before).await {
        Ok(tasks) => tasks,
        Err(e) => return PageError::from(e).response(Some(user)),
    };
    let older = (tasks.len() == PAGE_SIZE)
        .then(|| tasks.last())
        .flatten()
        .map(|t| format!("before={}&before_id={}", t.received_at, t.id));
    let page =
        ReceivedListPage {
            layout: Layout::new("Received tasks", Some(user.clone()), Nav::Received)
                .live(if paged { "" } else { "received-list" }),
            org_name: user.org_name,
            rows: tasks.iter().map(row).collect(),
            older,
            paged,
        };
    render(StatusCode::OK, &page)
}

fn row(t: &ReceivedTask) -> ReceivedRow {
    ReceivedRow {
        id: t.id.clone(),
        when: display::when(t.received_at),
        iso: display::iso(t.received_at),
        from: t.provenance.organisation_name.clone(),
        from_ods: t.provenance.organisation_ods.to_string(),
        sender: t.provenance.practitioner_name.clone(),
        role: t.provenance.role_display.clone(),
        patient: t.patient_name.clone(),
        nhs_number: display::nhs_number(&t.nhs_number),
        task_type: t.task_type.display(),
    }
}

#[derive(Template)]
#[template(path = "received_detail.html")]
struct ReceivedDetailPage {
    layout: Layout,
    task: ReceivedRow,
    received: String,
    sender_id: String,
    identifier: String,
    text: String,
}

pub async fn detail(
    State(app): State<App>,
    SignedIn(user): SignedIn,
    Path(id): Path<String>,
) -> Response {
    let task = match app.store.get_task(&user.org_ods, &id).await {
        Ok(Some(t)) => t,
        Ok(None) => return PageError::NotFound.response(Some(user)),
        Err(e) => return PageError::from(e).response(Some(user)),
    };
    let page = ReceivedDetailPage {
        layout: Layout::new("Received task", Some(user), Nav::Received),
        received: display::when_exact(task.received_at),
        sender_id: task.provenance.practitioner_sds_id.clone(),
        identifier: task.provider_identifier.clone(),
        text: task.text.clone(),
        task: row(&task),
    };
    render(StatusCode::OK, &page)
}
