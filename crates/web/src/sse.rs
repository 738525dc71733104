//! `/events`: the live feed of one signed-in user's organisation, as
//! server-sent events.
//!
//! - `status`: a task sent by the organisation changed state (JSON: id,
//!   status, label, whether it is settled, the step or reason in words);
//! - `received`: a task arrived in the organisation's inbox (JSON: id);
//! - `resync`: events were missed; the page should reload what it shows.
//!
//! Events carry ids, statuses and the engine's words about the delivery,
//! never the task's text or a patient's details: pages fetch what they show
//! through their own (escaped) HTML, and the script puts the words in as text.

use crate::App;
use crate::display;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use gpc_consumer::StatusEvent;
use gpc_domain::sent::SendStatus;
use gpc_domain::task::ReceivedEvent;
use serde_json::json;
use std::convert::Infallible;
use tokio::sync::broadcast::Receiver;
use tokio::sync::broadcast::error::RecvError;

struct Feed {
    org: gpc_domain::OdsCode,
    statuses: Receiver<StatusEvent>,
    received: Receiver<ReceivedEvent>,
    changed: Receiver<ReceivedEvent>,
}

pub async fn events(State(app): State<App>, headers: HeaderMap) -> Response {
    let Some(user) = app.sessions.user(&headers).await else {
        return (StatusCode::UNAUTHORIZED, "Sign in first.").into_response();
    };
    let feed = Feed {
        org: user.org_ods,
        statuses: app.engine.subscribe(),
        received: app.received.subscribe(),
        changed: app.changed.subscribe(),
    };
    let events = stream::unfold(feed, |mut feed| async move {
        let event = feed.next().await?;
        Some((Ok::<_, Infallible>(event), feed))
    });
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}

impl Feed {
    /// The next event for this organisation; `None` when the server stops.
    async fn next(&mut self) -> Option<Event> {
        loop {
            tokio::select! {
                status = self.statuses.recv() => match status {
                    Ok(e) if e.from_ods == self.org => return Some(status_event(&e)),
                    Ok(_) => {}
                    Err(RecvError::Lagged(_)) => return Some(Event::default().event("resync").data("{}")),
                    Err(RecvError::Closed) => return None,
                },
                changed = self.changed.recv() => match changed {
                    Ok(e) if e.tenant == self.org => {
                        return Some(
                            Event::default()
                                .event("changed")
                                .data(json!({ "id": e.task_id }).to_string()),
                        );
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(_)) => return Some(Event::default().event("resync").data("{}")),
                    Err(RecvError::Closed) => return None,
                },
                received = self.received.recv() => match received {
                    Ok(e) if e.tenant == self.org => {
                        return Some(
                            Event::default()
                                .event("received")
                                .data(json!({ "id": e.task_id }).to_string()),
                        );
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(_)) => return Some(Event::default().event("resync").data("{}")),
                    Err(RecvError::Closed) => return None,
                },
            }
        }
    }
}

fn status_event(e: &StatusEvent) -> Event {
    let retry_due = e.next_attempt_at.is_some();
    let tag = display::status_tag(e.status, retry_due);
    let settled = e.status.is_final() || (e.status == SendStatus::Failed && !retry_due);
    Event::default().event("status").data(
        json!({
            "id": e.task_id,
            "status": e.status.label(),
            "label": tag.label,
            "settled": settled,
            "detail": e.detail,
        })
        .to_string(),
    )
}
