//! The pages, one module per part of the service, and what they share: the
//! layout around every page, form errors in the NHS.UK style, and the error
//! page.

pub mod patient;
pub mod received;
pub mod send;
pub mod sent;
pub mod sign_in;

use crate::App;
use crate::assets;
use crate::session::User;
use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use std::sync::LazyLock;

pub struct AssetUrls {
    pub nhsuk_css: String,
    pub app_css: String,
    pub app_js: String,
}

static ASSET_URLS: LazyLock<AssetUrls> = LazyLock::new(|| AssetUrls {
    nhsuk_css: assets::url(assets::NHSUK_CSS),
    app_css: assets::url(assets::APP_CSS),
    app_js: assets::url(assets::APP_JS),
});

/// Which header link is the current page.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    None,
    Patient,
    Sent,
    Received,
}

/// What the frame around every page needs.
pub struct Layout {
    pub title: String,
    pub user: Option<User>,
    pub nav: Nav,
    /// Tells the script which live updates the page wants ("" for none).
    pub live: &'static str,
    pub assets: &'static AssetUrls,
}

impl Layout {
    pub fn new(title: impl Into<String>, user: Option<User>, nav: Nav) -> Self {
        Self {
            title: title.into(),
            user,
            nav,
            live: "",
            assets: &ASSET_URLS,
        }
    }

    pub fn live(mut self, live: &'static str) -> Self {
        self.live = live;
        self
    }

    /// `aria-current` for a header link.
    pub fn current(&self, nav: Nav) -> &'static str {
        if self.nav == nav { "page" } else { "false" }
    }
}

/// Form errors, in the order of the fields: the error summary lists them and
/// each field shows its own.
#[derive(Default)]
pub struct FieldErrors {
    pub items: Vec<FieldError>,
}

pub struct FieldError {
    /// The id of the input the summary links to.
    pub field: &'static str,
    pub message: String,
}

impl FieldErrors {
    pub fn add(&mut self, field: &'static str, message: impl Into<String>) {
        self.items.push(FieldError {
            field,
            message: message.into(),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The message for one field (by the name its error is filed under).
    pub fn get(&self, field: &str) -> Option<&str> {
        self.items
            .iter()
            .find(|e| e.field == field)
            .map(|e| e.message.as_str())
    }
}

/// Renders a page; a template that fails to render is a bug, shown as 500.
pub fn render(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a page template failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "The page could not be shown.",
            )
                .into_response()
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    layout: Layout,
    heading: String,
    message: String,
}

/// Why a page could not be shown.
pub enum PageError {
    NotFound,
    /// A service the page needs did not answer: worth trying again.
    Unavailable(String),
    Internal(String),
}

impl PageError {
    pub fn response(self, user: Option<User>) -> Response {
        let (status, heading, message) = match self {
            PageError::NotFound => (
                StatusCode::NOT_FOUND,
                "Page not found",
                "If you typed the web address, check it is correct. If you followed a link, \
                 the task may belong to another organisation."
                    .to_owned(),
            ),
            PageError::Unavailable(message) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Sorry, there is a problem with the service",
                message,
            ),
            PageError::Internal(message) => {
                tracing::error!(error = %message, "a page failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Sorry, there is a problem with the service",
                    "Try again later.".to_owned(),
                )
            }
        };
        render(
            status,
            &ErrorPage {
                layout: Layout::new(heading, user, Nav::None),
                heading: heading.to_owned(),
                message,
            },
        )
    }
}

impl From<gpc_store::StoreError> for PageError {
    fn from(e: gpc_store::StoreError) -> Self {
        match e {
            gpc_store::StoreError::Busy(_) => {
                PageError::Unavailable("The task store is busy. Try again in a moment.".to_owned())
            }
            other => PageError::Internal(other.to_string()),
        }
    }
}

/// `/`: the patient search for a signed-in user, the sign-in otherwise.
pub async fn home(State(app): State<App>, headers: HeaderMap) -> Redirect {
    match app.sessions.user(&headers).await {
        Some(_) => Redirect::to("/patient"),
        None => Redirect::to(app.auth.sign_in_path()),
    }
}

/// "10,000".
pub fn thousands(n: usize) -> String {
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

#[cfg(test)]
mod tests {
    #[test]
    fn thousands_separators() {
        assert_eq!(super::thousands(10_000), "10,000");
        assert_eq!(super::thousands(999), "999");
        assert_eq!(super::thousands(1_234_567), "1,234,567");
    }
}
