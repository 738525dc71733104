//! "Sent tasks": the organisation's outbox, and one task with every attempt
//! to deliver it and, once delivered, what became of it at the recipient
//! (task-lifecycle.md §4). Both pages update live (see `assets/app.js`); a
//! task that failed after its automatic retries can be retried from its
//! page, and an open delivered task cancelled, with a reason.

use super::{FieldErrors, Layout, Nav, PageError, render};
use crate::App;
use crate::display::{self, StatusTag};
use crate::session::{SignedIn, User};
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use gpc_consumer::SendError;
use gpc_domain::sent::{Attempt, SendStatus, SentTask};
use serde::Deserialize;

/// The most tasks the list shows.
const LIST_LIMIT: usize = 500;

#[derive(Template)]
#[template(path = "sent_list.html")]
struct SentListPage {
    layout: Layout,
    org_name: String,
    oldest_first: bool,
    rows: Vec<SentRow>,
}

struct SentRow {
    id: String,
    when: String,
    iso: String,
    to: String,
    to_ods: String,
    patient: String,
    nhs_number: String,
    task_type: &'static str,
    tag: StatusTag,
}

#[derive(Deserialize)]
pub struct ListQuery {
    sort: Option<String>,
}

pub async fn list(
    State(app): State<App>,
    SignedIn(user): SignedIn,
    Query(query): Query<ListQuery>,
) -> Response {
    let tasks = match app.engine.outbox().list(&user.org_ods, LIST_LIMIT).await {
        Ok(tasks) => tasks,
        Err(e) => return PageError::from(e).response(Some(user)),
    };
    let oldest_first = query.sort.as_deref() == Some("oldest");
    let mut rows = Vec::with_capacity(tasks.len());
    for t in &tasks {
        // Only a rejection shows its reason in the list; the other states
        // need no read of the timeline.
        let rejected = t
            .remote
            .as_ref()
            .is_some_and(|r| r.state == gpc_domain::lifecycle::TaskState::Rejected);
        let changes = if rejected {
            match app.engine.outbox().sent_timeline(&t.id).await {
                Ok(changes) => changes,
                Err(e) => return PageError::from(e).response(Some(user)),
            }
        } else {
            Vec::new()
        };
        let mut tag = display::sent_tag(t, changes.last().and_then(|e| e.note.as_deref()));
        tag.label = display::shortened(&tag.label, 80);
        rows.push(SentRow {
            id: t.id.clone(),
            when: display::when(t.created_at),
            iso: display::iso(t.created_at),
            to: t.to_name.clone(),
            to_ods: t.to_ods.to_string(),
            patient: t.patient_name.clone(),
            nhs_number: display::nhs_number(&t.nhs_number),
            task_type: t.task_type.display(),
            tag,
        });
    }
    if oldest_first {
        rows.reverse();
    }
    let page = SentListPage {
        layout: Layout::new("Sent tasks", Some(user.clone()), Nav::Sent).live("sent-list"),
        org_name: user.org_name,
        oldest_first,
        rows,
    };
    render(StatusCode::OK, &page)
}

#[derive(Template)]
#[template(path = "sent_detail.html")]
struct SentDetailPage {
    layout: Layout,
    errors: FieldErrors,
    task: SentView,
    attempts: Vec<AttemptRow>,
    timeline: Vec<display::TimelineRow>,
}

struct SentView {
    id: String,
    created: String,
    created_iso: String,
    from: String,
    sender: String,
    to_name: String,
    to_ods: String,
    to_address: String,
    to_telephone: String,
    patient: String,
    nhs_number: String,
    task_type: &'static str,
    text: String,
    tag: StatusTag,
    /// Which status panel to show: sending, delivered, rejected,
    /// failed-retrying, failed or no-route.
    state: &'static str,
    delivered_at: String,
    provider_task_id: String,
    reason: String,
    next_attempt: String,
    /// The recipient's state (`TaskState::code`), empty until delivered.
    remote_state: &'static str,
    /// "Dr Nichole GILBERT" when someone owns it.
    remote_owner: String,
    remote_at: String,
    /// The reason of a rejection, or the latest note.
    remote_note: String,
    /// The cancellation: empty, or pending, delivered, refused.
    cancellation: &'static str,
    cancel_reason: String,
    /// Why it was not cancelled, or why it has not reached the recipient yet.
    cancel_detail: String,
    can_cancel: bool,
}

struct AttemptRow {
    number: u32,
    started: String,
    finished: String,
    outcome: &'static str,
    http_status: String,
    detail: String,
}

fn view(t: &SentTask, changes: &[gpc_domain::lifecycle::TimelineEntry]) -> SentView {
    let retry_due = t.next_attempt_at.is_some();
    let remote = t
        .remote
        .as_ref()
        .filter(|_| t.status == SendStatus::Delivered);
    let state = match t.status {
        SendStatus::Queued | SendStatus::Sending | SendStatus::Retrying => "sending",
        SendStatus::Delivered => "delivered",
        SendStatus::Rejected => "rejected",
        SendStatus::Failed if retry_due => "failed-retrying",
        SendStatus::Failed => "failed",
        SendStatus::NoRoute => "no-route",
    };
    SentView {
        id: t.id.clone(),
        created: display::when_exact(t.created_at),
        created_iso: display::iso(t.created_at),
        from: format!("{} ({})", t.from_name, t.from_ods),
        sender: format!("{}, {}", t.user_name, t.user_role_display),
        to_name: t.to_name.clone(),
        to_ods: t.to_ods.to_string(),
        to_address: t.to_address.clone(),
        to_telephone: t.to_telephone.clone(),
        patient: t.patient_name.clone(),
        nhs_number: display::nhs_number(&t.nhs_number),
        task_type: t.task_type.display(),
        text: t.text.clone(),
        tag: display::sent_tag(t, changes.last().and_then(|e| e.note.as_deref())),
        state,
        delivered_at: t.delivered_at.map(display::when_exact).unwrap_or_default(),
        provider_task_id: t.provider_task_id.clone().unwrap_or_default(),
        reason: reason(t),
        next_attempt: t
            .next_attempt_at
            .map(display::when_exact)
            .unwrap_or_default(),
        remote_state: remote.map_or("", |r| r.state.code()),
        remote_owner: remote
            .and_then(|r| r.owner.as_ref())
            .map(|o| o.name.clone())
            .unwrap_or_default(),
        remote_at: remote
            .map(|r| display::when_exact(r.at))
            .unwrap_or_default(),
        remote_note: changes
            .last()
            .and_then(|e| e.note.clone())
            .unwrap_or_default(),
        cancellation: t.cancellation.as_ref().map_or("", |c| c.status.code()),
        cancel_reason: t
            .cancellation
            .as_ref()
            .map(|c| c.reason.clone())
            .unwrap_or_default(),
        cancel_detail: t
            .cancellation
            .as_ref()
            .and_then(|c| c.detail.clone())
            .unwrap_or_default(),
        can_cancel: remote.is_some_and(|r| !r.state.is_final()) && t.cancellation.is_none(),
    }
}

/// Why it was rejected or failed. The page offers Retry and the telephone
/// itself, so the engine's own suggestion to do so is not repeated.
fn reason(t: &SentTask) -> String {
    let reason = t.reason.as_deref().unwrap_or_default();
    let suggestion = format!(" Retry, or telephone {} on {}.", t.to_name, t.to_telephone);
    reason
        .strip_suffix(suggestion.as_str())
        .unwrap_or(reason)
        .to_owned()
}

fn attempt_row(a: &Attempt) -> AttemptRow {
    AttemptRow {
        number: a.number,
        started: display::when_exact(a.started_at),
        finished: display::when_exact(a.finished_at),
        outcome: a.outcome.label(),
        http_status: a
            .http_status
            .map(|s| s.to_string())
            .unwrap_or_else(|| "none".to_owned()),
        detail: a.detail.clone(),
    }
}

/// The task, if it was sent by the user's organisation.
async fn own_task(app: &App, user: &User, id: &str) -> Result<SentTask, PageError> {
    match app.engine.outbox().get(id).await? {
        Some(t) if t.from_ods == user.org_ods => Ok(t),
        _ => Err(PageError::NotFound),
    }
}

async fn detail_page(
    app: &App,
    user: User,
    id: &str,
    errors: FieldErrors,
) -> Result<SentDetailPage, PageError> {
    let task = own_task(app, &user, id).await?;
    let attempts = app.engine.outbox().attempts(id).await?;
    let changes = app.engine.outbox().sent_timeline(id).await?;
    let timeline = task
        .delivery_entry()
        .iter()
        .chain(&changes)
        .map(display::timeline_row)
        .collect();
    Ok(SentDetailPage {
        layout: Layout::new("Sent task", Some(user), Nav::Sent).live("sent-detail"),
        errors,
        task: view(&task, &changes),
        attempts: attempts.iter().map(attempt_row).collect(),
        timeline,
    })
}

pub async fn detail(
    State(app): State<App>,
    SignedIn(user): SignedIn,
    Path(id): Path<String>,
) -> Response {
    match detail_page(&app, user.clone(), &id, FieldErrors::default()).await {
        Ok(page) => render(StatusCode::OK, &page),
        Err(e) => e.response(Some(user)),
    }
}

pub async fn retry(
    State(app): State<App>,
    SignedIn(user): SignedIn,
    Path(id): Path<String>,
) -> Response {
    if let Err(e) = own_task(&app, &user, &id).await {
        return e.response(Some(user));
    }
    let mut errors = FieldErrors::default();
    match app.engine.retry(&id).await {
        Ok(_) => return Redirect::to(&format!("/sent/{id}")).into_response(),
        Err(SendError::InvalidInput(m)) => errors.add("task-status", m),
        Err(SendError::NotFound(_)) => return PageError::NotFound.response(Some(user)),
        Err(e) => {
            return PageError::Unavailable(format!("The task could not be retried: {e}"))
                .response(Some(user));
        }
    }
    match detail_page(&app, user.clone(), &id, errors).await {
        Ok(page) => render(StatusCode::CONFLICT, &page),
        Err(e) => e.response(Some(user)),
    }
}

#[derive(Deserialize)]
pub struct CancelForm {
    #[serde(default)]
    reason: String,
}

/// The sender's Cancel task: asks for the cancellation (the worker delivers
/// it) and shows the task, now "Cancelling…". A missing or over-long reason,
/// or a task no longer open, shows the page again with the error.
pub async fn cancel(
    State(app): State<App>,
    SignedIn(user): SignedIn,
    Path(id): Path<String>,
    axum::Form(form): axum::Form<CancelForm>,
) -> Response {
    if let Err(e) = own_task(&app, &user, &id).await {
        return e.response(Some(user));
    }
    let mut errors = FieldErrors::default();
    let reason = form.reason.trim();
    let status = if reason.is_empty() {
        errors.add("cancel-reason", "Enter why the task is cancelled");
        StatusCode::BAD_REQUEST
    } else {
        match app.engine.cancel(&id, &user.who(), reason).await {
            Ok(task) => {
                // Ids only (§5): never the reason.
                tracing::info!(task = %task.id, by = %user.sds_user_id, "sent task cancellation asked for");
                return Redirect::to(&format!("/sent/{id}")).into_response();
            }
            Err(SendError::InvalidInput(m)) => {
                errors.add("cancel-reason", format!("The task was not cancelled: {m}"));
                StatusCode::BAD_REQUEST
            }
            Err(SendError::Refused(m)) => {
                errors.add("task-status", format!("The task was not cancelled: {m}"));
                StatusCode::CONFLICT
            }
            Err(SendError::NotFound(_)) => return PageError::NotFound.response(Some(user)),
            Err(e) => {
                return PageError::Unavailable(format!("The task could not be cancelled: {e}"))
                    .response(Some(user));
            }
        }
    };
    match detail_page(&app, user.clone(), &id, errors).await {
        Ok(page) => render(status, &page),
        Err(e) => e.response(Some(user)),
    }
}
