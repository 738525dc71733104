//! "Received tasks": the organisation's lists (To do, Assigned to me,
//! Unassigned, Done), newest first, a page at a time, and one task in full
//! with the changes its state allows and its timeline (task-lifecycle.md
//! §4). A task that arrives or changes while a page is open shows there
//! (see `assets/app.js`).

use super::{FieldErrors, Layout, Nav, PageError, render};
use crate::App;
use crate::display;
use crate::session::{SignedIn, User};
use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use gpc_domain::lifecycle::{
    Actor, Change, InboxView, Owner, Party, Refusal, StateFilter, TaskChange, TaskState,
    TimelineEntry, transition,
};
use gpc_domain::task::{ReceivedEvent, ReceivedTask, TaskType};
use gpc_store::ChangeOutcome;
use jiff::Timestamp;
use serde::Deserialize;

const PAGE_SIZE: usize = 50;

/// The lists of §4, in the order of their tabs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum View {
    ToDo,
    Mine,
    Unassigned,
    Done,
}

impl View {
    const ALL: [View; 4] = [View::ToDo, View::Mine, View::Unassigned, View::Done];

    fn parse(word: Option<&str>) -> Option<Self> {
        match word {
            None | Some("todo") => Some(View::ToDo),
            Some("mine") => Some(View::Mine),
            Some("unassigned") => Some(View::Unassigned),
            Some("done") => Some(View::Done),
            Some(_) => None,
        }
    }

    fn word(self) -> &'static str {
        match self {
            View::ToDo => "todo",
            View::Mine => "mine",
            View::Unassigned => "unassigned",
            View::Done => "done",
        }
    }

    fn label(self) -> &'static str {
        match self {
            View::ToDo => "To do",
            View::Mine => "Assigned to me",
            View::Unassigned => "Unassigned",
            View::Done => "Done",
        }
    }

    fn of(self, user: &User) -> InboxView {
        match self {
            View::ToDo => InboxView::of(StateFilter::Open),
            View::Mine => InboxView {
                owner: Some(user.sds_user_id.clone()),
                ..InboxView::of(StateFilter::Open)
            },
            View::Unassigned => InboxView {
                unowned: true,
                ..InboxView::of(StateFilter::Open)
            },
            View::Done => InboxView::of(StateFilter::Done),
        }
    }

    fn empty(self) -> &'static str {
        match self {
            View::ToDo => "There is nothing to do.",
            View::Mine => "No open task is assigned to you.",
            View::Unassigned => "Every open task has an owner.",
            View::Done => "No task is done yet.",
        }
    }
}

struct Tab {
    href: String,
    label: &'static str,
    current: bool,
}

#[derive(Template)]
#[template(path = "received_list.html")]
struct ReceivedListPage {
    layout: Layout,
    org_name: String,
    tabs: Vec<Tab>,
    view: &'static str,
    view_label: &'static str,
    empty: &'static str,
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
    state: &'static str,
    state_code: &'static str,
    owner: String,
}

#[derive(Deserialize)]
pub struct PageQuery {
    view: Option<String>,
    before: Option<String>,
    before_id: Option<String>,
}

pub async fn list(
    State(app): State<App>,
    SignedIn(user): SignedIn,
    Query(query): Query<PageQuery>,
) -> Response {
    let Some(view) = View::parse(query.view.as_deref()) else {
        return PageError::NotFound.response(Some(user));
    };
    let before = match (&query.before, query.before_id) {
        (Some(t), Some(id)) => match t.parse::<Timestamp>() {
            Ok(t) => Some((t, id)),
            Err(_) => return PageError::NotFound.response(Some(user)),
        },
        _ => None,
    };
    let paged = before.is_some();
    let tasks = match app
        .store
        .inbox_view(&user.org_ods, &view.of(&user), PAGE_SIZE, before)
        .await
    {
        Ok(tasks) => tasks,
        Err(e) => return PageError::from(e).response(Some(user)),
    };
    let older = (tasks.len() == PAGE_SIZE)
        .then(|| tasks.last())
        .flatten()
        .map(|t| {
            format!(
                "view={}&before={}&before_id={}",
                view.word(),
                t.received_at,
                t.id
            )
        });
    let tabs = View::ALL
        .iter()
        .map(|v| Tab {
            href: format!("/received?view={}", v.word()),
            label: v.label(),
            current: *v == view,
        })
        .collect();
    let page =
        ReceivedListPage {
            layout: Layout::new("Received tasks", Some(user.clone()), Nav::Received)
                .live(if paged { "" } else { "received-list" }),
            org_name: user.org_name,
            tabs,
            view: view.word(),
            view_label: view.label(),
            empty: view.empty(),
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
        state: t.life.state.display(),
        state_code: t.life.state.code(),
        owner: t
            .life
            .owner
            .as_ref()
            .map(|o| o.name.clone())
            .unwrap_or_default(),
    }
}

/// A colleague the task can be assigned to.
struct Colleague {
    sds_user_id: String,
    name: String,
    role: String,
}

/// What the signed-in user may do to the task now.
struct Actions {
    take: bool,
    assign: bool,
    complete: bool,
    complete_label: &'static str,
    reject: bool,
    note: bool,
}

#[derive(Template)]
#[template(path = "received_detail.html")]
struct ReceivedDetailPage {
    layout: Layout,
    errors: FieldErrors,
    task: ReceivedRow,
    received: String,
    sender_id: String,
    identifier: String,
    text: String,
    version: u32,
    owner: String,
    actions: Actions,
    colleagues: Vec<Colleague>,
    timeline: Vec<display::TimelineRow>,
    /// Whether the sender has heard of the latest change (§3): empty when
    /// nothing was sent, else pending, delivered or refused.
    update_status: &'static str,
    update_version: u32,
    /// Why it has not reached the sender yet, or why the sender refused it.
    update_detail: String,
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

async fn detail_page(
    app: &App,
    user: User,
    id: &str,
    errors: FieldErrors,
) -> Result<ReceivedDetailPage, PageError> {
    let task = app
        .store
        .get_task(&user.org_ods, id)
        .await?
        .ok_or(PageError::NotFound)?;
    let changes = app.store.timeline(&user.org_ods, id).await?;
    let state = task.life.state;
    let allowed = |change: &Change| transition(state, change, Party::Receiver).is_ok();
    let owner_id = task.life.owner.as_ref().map(|o| o.sds_user_id.as_str());
    let region = app.engine.reference().current();
    let colleagues: Vec<Colleague> = region
        .practitioners_by_org(&user.org_ods)
        .filter(|p| Some(p.sds_user_id.as_str()) != owner_id)
        .map(|p| Colleague {
            sds_user_id: p.sds_user_id.clone(),
            name: p.display_name(),
            role: p.role_display.clone(),
        })
        .collect();
    let any = Owner {
        sds_user_id: String::new(),
        name: String::new(),
    };
    let actions = Actions {
        take: allowed(&Change::Take),
        assign: allowed(&Change::Assign { to: any }) && !colleagues.is_empty(),
        complete: allowed(&Change::Complete),
        complete_label: match task.task_type {
            TaskType::InformationOnly => "Mark as read",
            TaskType::ActionNeeded => "Mark as done",
        },
        reject: allowed(&Change::Reject),
        note: allowed(&Change::Note),
    };
    let mut timeline = vec![display::timeline_row(&task.delivery_entry())];
    timeline.extend(changes.iter().map(display::timeline_row));
    let updates = app.store.task_updates(&user.org_ods, id).await?;
    // The one that matters: a refused one (someone should know), else the latest.
    let shown = updates
        .iter()
        .rev()
        .find(|u| u.status == gpc_domain::updates::UpdateStatus::Refused)
        .or(updates.last());
    Ok(ReceivedDetailPage {
        update_status: shown.map_or("", |u| u.status.code()),
        update_version: shown.map_or(0, |u| u.entry.version),
        update_detail: shown.and_then(|u| u.detail.clone()).unwrap_or_default(),
        layout: Layout::new("Received task", Some(user), Nav::Received).live("received-detail"),
        errors,
        received: display::when_exact(task.received_at),
        sender_id: task.provenance.practitioner_sds_id.clone(),
        identifier: task.provider_identifier.clone(),
        text: task.text.clone(),
        version: task.life.version,
        owner: task
            .life
            .owner
            .as_ref()
            .map(|o| format!("{} ({})", o.name, o.sds_user_id))
            .unwrap_or_default(),
        task: row(&task),
        actions,
        colleagues,
        timeline,
    })
}

#[derive(Deserialize)]
pub struct ChangeForm {
    action: String,
    version: u32,
    #[serde(default)]
    to: String,
    #[serde(default)]
    text: String,
}

/// One change from the task page, made against the version the page showed.
pub async fn change(
    State(app): State<App>,
    SignedIn(user): SignedIn,
    Path(id): Path<String>,
    Form(form): Form<ChangeForm>,
) -> Response {
    let region = app.engine.reference().current();
    // A user of the demo picker is a record of the region; a signed-in
    // user is who their sign-in says, in the reference data or not (§3).
    let me = if user.from_sign_in {
        user.actor()
    } else {
        let record = region
            .practitioners_by_org(&user.org_ods)
            .find(|p| p.sds_user_id == user.sds_user_id)
            .map(Actor::of);
        match record {
            Some(actor) => actor,
            None => return PageError::NotFound.response(Some(user)),
        }
    };
    let (change, text_field) = match form.action.as_str() {
        "take" => (Change::Take, "take-note"),
        "complete" => (Change::Complete, "complete-note"),
        "reject" => (Change::Reject, "reject-reason"),
        "note" => (Change::Note, "note-text"),
        "assign" => {
            let Some(to) = region
                .practitioners_by_org(&user.org_ods)
                .find(|p| p.sds_user_id == form.to)
            else {
                let mut errors = FieldErrors::default();
                errors.add("assign-to", "Choose who to assign the task to");
                return again(&app, user, &id, errors, StatusCode::BAD_REQUEST).await;
            };
            let to = Owner {
                sds_user_id: to.sds_user_id.clone(),
                name: to.display_name(),
            };
            (Change::Assign { to }, "assign-note")
        }
        _ => return PageError::NotFound.response(Some(user)),
    };
    let text = Some(form.text.trim_end().to_owned()).filter(|t| !t.trim().is_empty());
    let request = TaskChange {
        change,
        by: me,
        party: Party::Receiver,
        text,
        expected_version: Some(form.version),
        at: Timestamp::now(),
        wire: gpc_domain::updates::Wire::outgoing(),
    };
    let outcome = match app.store.change_task(&user.org_ods, &id, request).await {
        Ok(Some(outcome)) => outcome,
        Ok(None) => return PageError::NotFound.response(Some(user)),
        Err(e) => return PageError::from(e).response(Some(user)),
    };
    match outcome {
        // A repeat comes only with an update that arrived, never from a page.
        ChangeOutcome::Changed { task, entry } | ChangeOutcome::Repeat { task, entry, .. } => {
            // Ids and states only: never the note, the reason or a name (§5).
            tracing::info!(
                task = %task.id,
                tenant = %task.tenant,
                state = task.life.state.code(),
                version = task.life.version,
                by = %entry.by.sds_user_id,
                "received task changed"
            );
            if app.announce_changes {
                // Nobody watching is fine.
                let _ = app.changed.send(ReceivedEvent {
                    tenant: task.tenant.clone(),
                    task_id: task.id.clone(),
                });
            }
            Redirect::to(&format!("/received/{id}")).into_response()
        }
        ChangeOutcome::Refused { refusal, task } => {
            tracing::info!(
                task = %task.id,
                state = task.life.state.code(),
                version = task.life.version,
                refusal = %refusal,
                "received task change refused"
            );
            let mut errors = FieldErrors::default();
            let status = match &refusal {
                Refusal::ReasonRequired => {
                    errors.add(text_field, "Enter the reason the sender will see");
                    StatusCode::BAD_REQUEST
                }
                Refusal::NoteRequired => {
                    errors.add(text_field, "Enter the note");
                    StatusCode::BAD_REQUEST
                }
                Refusal::BadText(why) => {
                    errors.add(text_field, capitalised(why));
                    StatusCode::BAD_REQUEST
                }
                _ => {
                    let last = app
                        .store
                        .timeline(&user.org_ods, &id)
                        .await
                        .ok()
                        .and_then(|mut t| t.pop());
                    errors.add("task-status", moved_on(&task, last.as_ref()));
                    StatusCode::CONFLICT
                }
            };
            again(&app, user, &id, errors, status).await
        }
    }
}

async fn again(
    app: &App,
    user: User,
    id: &str,
    errors: FieldErrors,
    status: StatusCode,
) -> Response {
    match detail_page(app, user.clone(), id, errors).await {
        Ok(page) => render(status, &page),
        Err(e) => e.response(Some(user)),
    }
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Why a change could not be made, said as what happened to the task.
fn moved_on(task: &ReceivedTask, last: Option<&TimelineEntry>) -> String {
    let state = task.life.state;
    match last {
        Some(e) => {
            let did = match e.state {
                TaskState::Accepted
                    if e.owner.as_ref().map(|o| &o.sds_user_id) == Some(&e.by.sds_user_id) =>
                {
                    "took this task".to_owned()
                }
                TaskState::Accepted => format!(
                    "assigned this task to {}",
                    e.owner
                        .as_ref()
                        .map(|o| o.name.as_str())
                        .unwrap_or("someone")
                ),
                TaskState::Completed => "marked this task as done".to_owned(),
                TaskState::Rejected => "rejected this task".to_owned(),
                TaskState::Cancelled => "cancelled this task".to_owned(),
                TaskState::Received => "changed this task".to_owned(),
            };
            format!(
                "Your change was not made: {} {did} at {}. The task is now {}.",
                e.by.name,
                display::when_exact(e.at),
                state.display().to_lowercase()
            )
        }
        None => format!(
            "Your change was not made: the task is {}.",
            state.display().to_lowercase()
        ),
    }
}
