//! The clinician web UI (issue 6): sign-in (the demo picker, or OpenID
//! Connect in the shape of NHS CIS2, issue 15), find a patient in PDS,
//! send a task and watch its delivery live, and the organisation's sent and
//! received tasks.
//!
//! Every page is a plain HTML form first; `assets/app.js` adds the live
//! updates (server-sent events from `/events`), the character count and the
//! organisation filter on top. Pages are askama templates, so every value
//! from the network is HTML-escaped unless a template says otherwise (none
//! does).

// The unit tests' crate sees every dev-dependency, which the integration tests use.
#![cfg_attr(test, allow(unused_crate_dependencies))]

mod assets;
pub mod auth;
mod display;
mod pages;
mod recipients;
mod security;
mod session;
mod sse;

pub use auth::{AuthMode, ClientKey, OidcConfig};
use axum::Router;
use axum::routing::{get, post};
use gpc_domain::task::ReceivedEvent;
use recipients::Recipients;
pub use session::SessionLimits;
use session::Sessions;
use std::sync::Arc;
use tokio::sync::broadcast;

/// What the web UI is built on.
pub struct WebState {
    /// Sends tasks and reports their status; its region lists the users.
    pub engine: gpc_consumer::Engine,
    /// The provider's store: the organisations' received tasks.
    pub store: Arc<dyn gpc_store::Store>,
    /// One event per task the provider stores, for live inboxes.
    pub received: broadcast::Sender<ReceivedEvent>,
    /// One event per change of a received task, for live task pages.
    pub changed: broadcast::Sender<ReceivedEvent>,
    /// Whether the pages announce their own changes on `changed` (when the
    /// store has no feed of its own that does).
    pub announce_changes: bool,
    pub auth: AuthMode,
    pub sessions: SessionLimits,
    /// The UI is served over HTTPS: cookies are Secure and `__Host-`.
    pub https: bool,
}

/// What the handlers share.
#[derive(Clone)]
struct App {
    engine: gpc_consumer::Engine,
    store: Arc<dyn gpc_store::Store>,
    received: broadcast::Sender<ReceivedEvent>,
    /// A received task changed through these pages (ids only), for the
    /// pages open on it or its list.
    changed: broadcast::Sender<ReceivedEvent>,
    announce_changes: bool,
    sessions: Arc<Sessions>,
    auth: Arc<AuthMode>,
    recipients: Arc<Recipients>,
}

/// The UI's routes, to be mounted at `/` of the server. No fallback is set,
/// so the provider's fallback keeps every other path.
pub fn routes(state: WebState) -> Router {
    let recipients = Recipients::new(
        state.engine.directory().clone(),
        state.engine.reference().clone(),
    );
    let app = App {
        engine: state.engine,
        store: state.store.clone(),
        received: state.received,
        changed: state.changed,
        announce_changes: state.announce_changes,
        sessions: Arc::new(Sessions::new(
            state.store.clone(),
            state.sessions,
            state.https,
        )),
        auth: Arc::new(state.auth.clone()),
        recipients: Arc::new(recipients),
    };
    let router = Router::new().route("/", get(pages::home));
    // The demo picker does not exist in oidc mode (sign-in.md §1).
    let router = match &state.auth {
        AuthMode::Demo => router
            .route(
                "/sign-in",
                get(pages::sign_in::form).post(pages::sign_in::submit),
            )
            .route("/sign-out", post(pages::sign_in::sign_out)),
        AuthMode::Oidc(_) => router
            .route("/auth/sign-in", get(auth::oidc::sign_in))
            .route("/auth/callback", get(auth::oidc::callback))
            .route("/auth/sign-out", post(auth::oidc::sign_out))
            .route("/auth/signed-out", get(auth::oidc::signed_out))
            .route("/auth/jwks.json", get(auth::oidc::jwks)),
    };
    router
        .route(
            "/patient",
            get(pages::patient::find_form).post(pages::patient::find),
        )
        .route("/send", post(pages::send::submit))
        .route("/sent", get(pages::sent::list))
        .route("/sent/{id}", get(pages::sent::detail))
        .route("/sent/{id}/retry", post(pages::sent::retry))
        .route("/sent/{id}/cancel", post(pages::sent::cancel))
        .route("/received", get(pages::received::list))
        .route("/received/{id}", get(pages::received::detail))
        .route("/received/{id}/change", post(pages::received::change))
        .route("/events", get(sse::events))
        .route("/assets/{*path}", get(assets::serve))
        .layer(axum::middleware::from_fn_with_state(
            security::policy(&state.auth),
            security::guard,
        ))
        .with_state(app)
}
