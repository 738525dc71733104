//! The demo sign-in: choose an organisation of the region, then one of its
//! users. There is no password; the page says so. The chosen user is the
//! practitioner of every task sent in the session.

use super::{FieldErrors, Layout, Nav, render};
use crate::App;
use crate::session::{User, with_cookie};
use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Redirect, Response};
use gpc_domain::Region;
use gpc_domain::reference::{Organisation, Practitioner};
use serde::Deserialize;

#[derive(Template)]
#[template(path = "sign_in.html")]
struct SignInPage<'a> {
    layout: Layout,
    errors: FieldErrors,
    organisations: Vec<&'a Organisation>,
    /// Step two: the organisation chosen and its users.
    chosen: Option<&'a Organisation>,
    users: Vec<&'a Practitioner>,
}

#[derive(Deserialize)]
pub struct OrgQuery {
    org: Option<String>,
}

#[derive(Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    org: String,
    #[serde(default)]
    user: String,
}

/// Organisations with at least one user: those a person can sign in at.
fn organisations(region: &Region) -> Vec<&Organisation> {
    region
        .organisations()
        .iter()
        .filter(|o| users(region, o.ods.as_str()).next().is_some())
        .collect()
}

fn users<'a>(region: &'a Region, ods: &'a str) -> impl Iterator<Item = &'a Practitioner> {
    // Indexed: a national region has thousands of organisations to list.
    region.practitioner_records_at(ods)
}

fn page<'a>(
    region: &'a Region,
    user: Option<User>,
    chosen: Option<&'a Organisation>,
    errors: FieldErrors,
) -> SignInPage<'a> {
    SignInPage {
        layout: Layout::new("Sign in", user, Nav::None),
        errors,
        organisations: organisations(region),
        users: chosen
            .map(|o| users(region, o.ods.as_str()).collect())
            .unwrap_or_default(),
        chosen,
    }
}

pub async fn form(
    State(app): State<App>,
    headers: HeaderMap,
    Query(query): Query<OrgQuery>,
) -> Response {
    let region = app.engine.reference().current();
    let region = &*region;
    let user = app.sessions.user(&headers).await;
    let Some(code) = query.org else {
        return render(
            StatusCode::OK,
            &page(region, user, None, FieldErrors::default()),
        );
    };
    match signable(region, &code) {
        Some(org) => render(
            StatusCode::OK,
            &page(region, user, Some(org), FieldErrors::default()),
        ),
        None => {
            let mut errors = FieldErrors::default();
            errors.add("org", "Select the organisation you work for");
            render(StatusCode::BAD_REQUEST, &page(region, user, None, errors))
        }
    }
}

fn signable<'a>(region: &'a Region, code: &str) -> Option<&'a Organisation> {
    region
        .organisation_by_ods(code.trim())
        .filter(|o| users(region, o.ods.as_str()).next().is_some())
}

pub async fn submit(State(app): State<App>, Form(form): Form<SignInForm>) -> Response {
    let region = app.engine.reference().current();
    let region = &*region;
    let Some(org) = signable(region, &form.org) else {
        let mut errors = FieldErrors::default();
        errors.add("org", "Select the organisation you work for");
        return render(StatusCode::BAD_REQUEST, &page(region, None, None, errors));
    };
    let Some(practitioner) = users(region, org.ods.as_str()).find(|p| p.sds_user_id == form.user)
    else {
        let mut errors = FieldErrors::default();
        errors.add("user", "Select who you are");
        return render(
            StatusCode::BAD_REQUEST,
            &page(region, None, Some(org), errors),
        );
    };
    let user = User::of(practitioner, &org.name);
    tracing::info!(user = %user.sds_user_id, org = %user.org_ods, "demo sign-in");
    match app.sessions.start(&user).await {
        Ok(cookie) => with_cookie(cookie, Redirect::to("/patient")),
        Err(e) => super::PageError::from(e).response(None),
    }
}

pub async fn sign_out(State(app): State<App>, headers: HeaderMap) -> Response {
    with_cookie(app.sessions.end(&headers).await, Redirect::to("/sign-in"))
}
