//! Status changes of sent tasks, published for whoever watches (the CLI
//! prints them, the web UI streams them to the browser).

use gpc_domain::OdsCode;
use gpc_domain::sent::{SendStatus, SentTask};
use jiff::Timestamp;

/// One change of a sent task's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusEvent {
    pub task_id: String,
    pub from_ods: OdsCode,
    pub status: SendStatus,
    pub at: Timestamp,
    /// The attempt this event belongs to (0 before the first).
    pub attempt: u32,
    /// For `Failed`: when the next automatic retry is due, if one is.
    pub next_attempt_at: Option<Timestamp>,
    pub provider_task_id: Option<String>,
    /// A step in progress or why it was rejected or failed, in plain words.
    pub detail: Option<String>,
}

impl StatusEvent {
    pub fn of(task: &SentTask, detail: Option<String>) -> Self {
        Self {
            task_id: task.id.clone(),
            from_ods: task.from_ods.clone(),
            status: task.status,
            at: task.updated_at,
            attempt: task.attempts,
            next_attempt_at: task.next_attempt_at,
            provider_task_id: task.provider_task_id.clone(),
            detail: detail.or_else(|| task.reason.clone()),
        }
    }
}
