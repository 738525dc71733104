//! Find a patient by NHS number in PDS, then show the patient banner and the
//! "Send a task" form.
//!
//! The search is a POST so that NHS numbers stay out of URLs, and so out of
//! browser history, proxies and access logs.

use super::send::{SendForm, TaskForm};
use super::{FieldErrors, Layout, Nav, PageError, render};
use crate::App;
use crate::display;
use crate::session::{SignedIn, User};
use askama::Template;
use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use gpc_directory::{DirectoryError, TracedPatient};
use gpc_domain::{NhsNumber, NhsNumberError, OdsCode};
use serde::Deserialize;

#[derive(Template)]
#[template(path = "find.html")]
struct FindPage {
    layout: Layout,
    errors: FieldErrors,
    nhs: String,
}

#[derive(Template)]
#[template(path = "patient.html")]
pub struct PatientPage {
    pub layout: Layout,
    pub errors: FieldErrors,
    pub patient: Banner,
    pub form: SendForm,
}

/// The patient banner: who the task is about, as PDS knows them.
pub struct Banner {
    pub name: String,
    pub born: String,
    pub nhs_number: String,
    pub gender: &'static str,
    /// `None` for a restricted record.
    pub address: Option<String>,
    pub restricted: bool,
    pub died: Option<String>,
    /// "GP Connect Demonstrator (GPC001)"; `None` when PDS does not say.
    pub practice: Option<String>,
    pub practice_ods: Option<String>,
}

#[derive(Deserialize)]
pub struct FindForm {
    #[serde(default)]
    nhs: String,
}

fn find_page(user: User, nhs: String, errors: FieldErrors) -> FindPage {
    FindPage {
        layout: Layout::new("Find a patient", Some(user), Nav::Patient),
        errors,
        nhs,
    }
}

pub async fn find_form(SignedIn(user): SignedIn) -> Response {
    render(
        StatusCode::OK,
        &find_page(user, String::new(), FieldErrors::default()),
    )
}

/// Why an NHS number as typed cannot be searched for, in the words of the
/// NHS.UK pattern for NHS numbers.
pub fn nhs_number_problem(typed: &str) -> Result<NhsNumber, String> {
    if typed.trim().is_empty() {
        return Err("Enter the patient's NHS number".to_owned());
    }
    NhsNumber::parse(typed).map_err(|e| match e {
        NhsNumberError::NotDigits => {
            "NHS number must only contain numbers and spaces, like 485 777 3456".to_owned()
        }
        NhsNumberError::WrongLength => "NHS number must be 10 digits, like 485 777 3456".to_owned(),
        NhsNumberError::CheckDigit => "This is not a valid NHS number: its last digit does not \
             match the other nine (Modulus 11 check). Check the number and try again."
            .to_owned(),
    })
}

pub async fn find(
    State(app): State<App>,
    SignedIn(user): SignedIn,
    Form(form): Form<FindForm>,
) -> Response {
    let typed = form.nhs.trim().to_owned();
    let nhs = match nhs_number_problem(&typed) {
        Ok(nhs) => nhs,
        Err(message) => {
            let mut errors = FieldErrors::default();
            errors.add("nhs", message);
            return render(StatusCode::BAD_REQUEST, &find_page(user, typed, errors));
        }
    };
    let traced = match trace(&app, &nhs).await {
        Ok(Some(p)) => p,
        Ok(None) => {
            let mut errors = FieldErrors::default();
            errors.add(
                "nhs",
                format!(
                    "No patient with NHS number {} was found. Check the number and try again.",
                    nhs.formatted()
                ),
            );
            return render(StatusCode::NOT_FOUND, &find_page(user, typed, errors));
        }
        Err(e) => return e.response(Some(user)),
    };
    let default_to = traced
        .registered_practice
        .as_ref()
        .map(|o| o.to_string())
        .unwrap_or_default();
    let task = TaskForm {
        nhs: nhs.as_digits(),
        to: default_to,
        ..TaskForm::default()
    };
    match patient_page(&app, user.clone(), &traced, task, FieldErrors::default()).await {
        Ok(page) => render(StatusCode::OK, &page),
        Err(e) => e.response(Some(user)),
    }
}

/// PDS; `None` when it holds nobody with this number.
pub async fn trace(app: &App, nhs: &NhsNumber) -> Result<Option<TracedPatient>, PageError> {
    match app.engine.directory().trace_patient(nhs).await {
        Ok(p) => Ok(Some(p)),
        Err(DirectoryError::NotFound(_)) => Ok(None),
        Err(e) => {
            // Only the kind: PDS diagnostics may quote the NHS number.
            tracing::warn!(kind = error_kind(&e), "PDS trace failed");
            Err(PageError::Unavailable(
                "The demographics service (PDS) could not be reached. Try again in a moment."
                    .to_owned(),
            ))
        }
    }
}

pub fn error_kind(e: &DirectoryError) -> &'static str {
    match e {
        DirectoryError::NotFound(_) => "not found",
        DirectoryError::Invalid(_) => "invalid request",
        DirectoryError::Unavailable(_) => "unavailable",
        DirectoryError::Protocol(_) => "unexpected answer",
    }
}

/// The patient page with the send form as `task` holds it; its search text
/// filters the "To" list through the organisation directory.
pub async fn patient_page(
    app: &App,
    user: User,
    traced: &TracedPatient,
    task: TaskForm,
    mut errors: FieldErrors,
) -> Result<PatientPage, PageError> {
    let unavailable = |e: DirectoryError| {
        tracing::warn!(kind = error_kind(&e), "directory look-up failed");
        PageError::Unavailable(
            "The organisation directory could not be reached. Try again in a moment.".to_owned(),
        )
    };
    let practice = match &traced.registered_practice {
        Some(ods) => app.recipients.get(ods).await.map_err(unavailable)?,
        None => None,
    };
    let query = task.to_q.trim();
    let mut recipients = match Some(query).filter(|q| !q.is_empty()) {
        Some(q) => {
            let found = app.recipients.search(q).await.map_err(unavailable)?;
            if found.is_empty() {
                errors.add(
                    "to-filter",
                    format!("No organisation's name or ODS code contains ‘{q}’"),
                );
                app.recipients.all().await.map_err(unavailable)?
            } else {
                found
            }
        }
        None => app.recipients.all().await.map_err(unavailable)?,
    };
    // The chosen recipient stays in the list whatever the search, so that a
    // search never silently changes where the task goes.
    if !recipients.iter().any(|r| r.ods == task.to)
        && let Some(code) = OdsCode::parse(&task.to)
        && let Some(r) = app.recipients.get(&code).await.map_err(unavailable)?
    {
        recipients.insert(0, r);
    }
    let form = SendForm::new(&user, task, recipients);
    let title = if errors.is_empty() {
        "Send a task"
    } else {
        "Error: Send a task"
    };
    Ok(PatientPage {
        layout: Layout::new(title, Some(user), Nav::Patient),
        errors,
        patient: Banner {
            name: display::banner_name(&traced.title, &traced.given, &traced.family),
            born: display::born(traced.birth_date),
            nhs_number: traced.nhs_number.formatted(),
            gender: display::gender(traced.gender),
            address: traced.address.as_ref().map(display::address),
            restricted: traced.restricted,
            died: traced.deceased.map(display::born),
            practice: match (&practice, &traced.registered_practice) {
                (Some(p), _) => Some(format!("{} ({})", p.name, p.ods)),
                (None, Some(ods)) => Some(ods.to_string()),
                (None, None) => None,
            },
            practice_ods: traced.registered_practice.as_ref().map(|o| o.to_string()),
        },
        form,
    })
}

#[cfg(test)]
mod tests {
    use super::nhs_number_problem;

    #[test]
    fn nhs_number_messages() {
        assert!(nhs_number_problem("947 671 9931").is_ok());
        assert!(nhs_number_problem("  ").unwrap_err().starts_with("Enter"));
        assert!(
            nhs_number_problem("12345")
                .unwrap_err()
                .contains("10 digits")
        );
        assert!(
            nhs_number_problem("94767l9931")
                .unwrap_err()
                .contains("only contain")
        );
        assert!(
            nhs_number_problem("9000000184")
                .unwrap_err()
                .contains("Modulus 11")
        );
    }
}
