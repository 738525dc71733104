//! The "Send a task" form of the capability pack's wireframe: From, To,
//! Task type, Details, Send and Cancel. A valid form goes to the engine,
//! which records the task before anything goes on the wire; the browser is
//! then sent to the task's page, where its status changes live.

use super::patient::{nhs_number_problem, patient_page, trace};
use super::{FieldErrors, PageError, render, thousands};
use crate::App;
use crate::recipients::Recipient;
use crate::session::{SignedIn, User};
use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use gpc_consumer::{SendError, SendRequest};
use gpc_domain::order_rules::MAX_TEXT_CHARS;
use gpc_domain::task::TaskType;
use serde::Deserialize;

/// The form as submitted (and as shown again after an error).
#[derive(Debug, Default, Deserialize)]
pub struct TaskForm {
    #[serde(default)]
    pub nhs: String,
    #[serde(default)]
    pub to: String,
    /// The organisation search text.
    #[serde(default)]
    pub to_q: String,
    /// `1` (information only) or `2` (action needed).
    #[serde(default)]
    pub task_type: String,
    #[serde(default)]
    pub details: String,
    /// `search` for the organisation search button, anything else sends.
    #[serde(default)]
    pub action: String,
}

/// What the form template shows.
pub struct SendForm {
    pub from: String,
    pub sender: String,
    pub nhs: String,
    pub recipients: Vec<Recipient>,
    pub to: String,
    /// The recipient selected now, for the route warning.
    pub chosen: Option<Recipient>,
    pub to_q: String,
    pub task_type: String,
    pub details: String,
    pub max_chars: usize,
    pub count_message: String,
}

impl SendForm {
    pub fn new(user: &User, task: TaskForm, recipients: Vec<Recipient>) -> Self {
        let chosen = recipients.iter().find(|r| r.ods == task.to).cloned();
        Self {
            from: format!("{} ({})", user.org_name, user.org_ods),
            sender: format!("{}, {}", user.name, user.role),
            nhs: task.nhs,
            recipients,
            to: task.to,
            chosen,
            to_q: task.to_q,
            task_type: task.task_type,
            count_message: count_message(task.details.chars().count()),
            details: task.details,
            max_chars: MAX_TEXT_CHARS,
        }
    }
}

/// The character count's words; `app.js` keeps the same words as you type.
fn count_message(chars: usize) -> String {
    if chars > MAX_TEXT_CHARS {
        let over = chars - MAX_TEXT_CHARS;
        format!(
            "You have {} character{} too many",
            thousands(over),
            if over == 1 { "" } else { "s" }
        )
    } else {
        let left = MAX_TEXT_CHARS - chars;
        format!(
            "You have {} character{} remaining",
            thousands(left),
            if left == 1 { "" } else { "s" }
        )
    }
}

fn validate(task: &TaskForm) -> (FieldErrors, Option<TaskType>) {
    let mut errors = FieldErrors::default();
    if task.to.trim().is_empty() {
        errors.add("to", "Select who to send the task to");
    }
    let task_type = TaskType::from_code(&task.task_type);
    if task_type.is_none() {
        errors.add("task_type", "Select the type of task");
    }
    let chars = task.details.trim().chars().count();
    if chars == 0 {
        errors.add("details", "Enter the details of the task");
    } else if chars > MAX_TEXT_CHARS {
        errors.add(
            "details",
            format!(
                "Details must be {} characters or fewer",
                thousands(MAX_TEXT_CHARS)
            ),
        );
    }
    (errors, task_type)
}

pub async fn submit(
    State(app): State<App>,
    SignedIn(user): SignedIn,
    Form(mut task): Form<TaskForm>,
) -> Response {
    // Browsers send a textarea's line breaks as CRLF; the count the user saw
    // counted one character for each.
    task.details = task.details.replace("\r\n", "\n");
    let Ok(nhs) = nhs_number_problem(&task.nhs) else {
        return Redirect::to("/patient").into_response();
    };
    let traced = match trace(&app, &nhs).await {
        Ok(Some(p)) => p,
        Ok(None) => return Redirect::to("/patient").into_response(),
        Err(e) => return e.response(Some(user)),
    };
    let (mut errors, task_type) = if task.action == "search" {
        (FieldErrors::default(), None)
    } else {
        validate(&task)
    };
    let mut status = StatusCode::BAD_REQUEST;
    if task.action != "search"
        && errors.is_empty()
        && let Some(task_type) = task_type
    {
        let request = SendRequest {
            user: user.who(),
            from: Some(user.org_ods.to_string()),
            patient: nhs.as_digits(),
            task_type,
            text: task.details.clone(),
            to: Some(task.to.clone()),
        };
        match app.engine.send(request).await {
            Ok(sent) => return Redirect::to(&format!("/sent/{}", sent.id)).into_response(),
            Err(SendError::InvalidInput(m) | SendError::NotFound(m) | SendError::Refused(m)) => {
                errors.add("send-task", format!("The task was not sent: {m}"));
            }
            Err(SendError::DirectoryUnavailable(_)) => {
                // Not the message: it may quote PDS, and so an NHS number.
                tracing::warn!("directory unavailable while sending");
                errors.add(
                    "send-task",
                    "The task was not sent: the national directory could not be reached. \
                     Try again in a moment.",
                );
                status = StatusCode::SERVICE_UNAVAILABLE;
            }
            Err(SendError::Store(e)) => {
                tracing::error!(error = %e, "the outbox could not be written");
                return PageError::Unavailable(
                    "The task could not be recorded, so it was not sent. Try again in a moment."
                        .to_owned(),
                )
                .response(Some(user));
            }
        }
    }
    if errors.is_empty() {
        status = StatusCode::OK;
    }
    match patient_page(&app, user.clone(), &traced, task, errors).await {
        Ok(page) => render(status, &page),
        Err(e) => e.response(Some(user)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_is_checked() {
        let (errors, _) = validate(&TaskForm::default());
        let fields: Vec<_> = errors.items.iter().map(|e| e.field).collect();
        assert_eq!(fields, ["to", "task_type", "details"]);
        let long = TaskForm {
            to: "GPC001".into(),
            task_type: "2".into(),
            details: "é".repeat(MAX_TEXT_CHARS + 1),
            ..TaskForm::default()
        };
        assert_eq!(
            validate(&long).0.get("details"),
            Some("Details must be 10,000 characters or fewer")
        );
        let fits = TaskForm {
            details: "é".repeat(MAX_TEXT_CHARS),
            ..long
        };
        assert!(validate(&fits).0.is_empty());
    }

    #[test]
    fn the_count_says_what_is_left() {
        assert_eq!(count_message(0), "You have 10,000 characters remaining");
        assert_eq!(count_message(9_999), "You have 1 character remaining");
        assert_eq!(count_message(10_002), "You have 2 characters too many");
    }
}
