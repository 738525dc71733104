//! A task on the sending side: what the clinician asked for, where it is
//! going, and how its delivery went (spec §10).

use crate::ids::{Asid, NhsNumber, OdsCode};
use crate::task::TaskType;

use jiff::Timestamp;

/// Where a sent task stands. `Failed` with a `next_attempt_at` is waiting for
/// an automatic retry; without one it rests until a person retries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SendStatus {
    Queued,
    Sending,
    Retrying,
    Delivered,
    Rejected,
    Failed,
    /// The recipient cannot receive tasks electronically: use the telephone.
    NoRoute,
}

impl SendStatus {
    pub const ALL: [SendStatus; 7] = [
        Self::Queued,
        Self::Sending,
        Self::Retrying,
        Self::Delivered,
        Self::Rejected,
        Self::Failed,
        Self::NoRoute,
    ];

    /// The text people read (the web UI, the CLI, `sent --json`).
    pub fn label(self) -> &'static str {
        match self {
            Self::Queued => "Queued",
            Self::Sending => "Sending",
            Self::Retrying => "Retrying",
            Self::Delivered => "Delivered",
            Self::Rejected => "Rejected",
            Self::Failed => "Failed",
            Self::NoRoute => "No electronic route",
        }
    }

    /// Reads a label back (a form value or a JSON field).
    pub fn from_label(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.label() == s)
    }

    /// The stable storage code. Stored rows and SQL literals use it, so it
    /// never changes with the wording people read.
    pub fn code(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sending => "sending",
            Self::Retrying => "retrying",
            Self::Delivered => "delivered",
            Self::Rejected => "rejected",
            Self::Failed => "failed",
            Self::NoRoute => "no_route",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.code() == code)
    }

    /// No more automatic attempts will be made.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Delivered | Self::Rejected | Self::NoRoute)
    }
}

/// A task in the sender's outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentTask {
    /// Local id of the sent task.
    pub id: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub from_ods: OdsCode,
    pub from_name: String,
    /// The sending system's ASID; `None` when unknown (no route).
    pub from_asid: Option<Asid>,
    pub user_sds_id: String,
    /// The practitioner's local id, the JWT `sub`.
    pub user_id: String,
    pub user_name: String,
    pub user_role_code: String,
    pub user_role_display: String,
    pub nhs_number: NhsNumber,
    pub patient_name: String,
    pub to_ods: OdsCode,
    pub to_name: String,
    pub to_telephone: String,
    /// One line, for display.
    pub to_address: String,
    /// The recipient's provider root (SDS Endpoint address); empty for no route.
    pub endpoint: String,
    /// `None` for no route.
    pub to_asid: Option<Asid>,
    pub task_type: TaskType,
    pub text: String,
    /// The Order's business identifier (`urn:uuid:...`), the same on every attempt.
    pub identifier: String,
    pub status: SendStatus,
    /// Attempts made so far, across automatic and manual retries.
    pub attempts: u32,
    /// Attempts in the current cycle (reset by a manual retry), for the retry budget.
    pub cycle_attempts: u32,
    pub next_attempt_at: Option<Timestamp>,
    pub provider_task_id: Option<String>,
    pub delivered_at: Option<Timestamp>,
    /// Why it was rejected or failed, in plain words.
    pub reason: Option<String>,
    /// Where the recipient's task stands, as last heard (task-lifecycle.md
    /// §3): set on delivery (received, version 1), then by each update the
    /// recipient sends. `None` until delivered.
    pub remote: Option<crate::updates::RemoteState>,
    /// The sender's cancellation, once asked for.
    pub cancellation: Option<crate::updates::Cancellation>,
}

impl SentTask {
    /// The delivery as the first entry of the timeline both sides show:
    /// version 1, `received`, by the user who sent it. `None` until delivered.
    pub fn delivery_entry(&self) -> Option<crate::lifecycle::TimelineEntry> {
        use crate::lifecycle::{Actor, Party, TaskState, TimelineEntry};
        let at = self.delivered_at?;
        Some(TimelineEntry {
            version: 1,
            at,
            by: Actor {
                sds_user_id: self.user_sds_id.clone(),
                name: self.user_name.clone(),
                role_code: self.user_role_code.clone(),
                role_display: self.user_role_display.clone(),
                organisation: self.from_ods.clone(),
            },
            party: Party::Sender,
            state: TaskState::Received,
            owner: None,
            note: None,
        })
    }

    /// Where the task stands, in the words of the sent list (§4): the
    /// delivery status until delivered, then the recipient's state
    /// ("Accepted by Dr Nichole GILBERT", "Rejected: reason"), or the
    /// cancellation's progress.
    pub fn state_label(&self, last_note: Option<&str>) -> String {
        use crate::lifecycle::TaskState;
        use crate::updates::UpdateStatus;
        if let Some(c) = &self.cancellation {
            match c.status {
                UpdateStatus::Pending => return "Cancelling…".into(),
                UpdateStatus::Delivered => return "Cancelled".into(),
                // Not cancelled: the remote state below says what became of it.
                UpdateStatus::Refused => {}
            }
        }
        let Some(remote) = self
            .remote
            .as_ref()
            .filter(|_| self.status == SendStatus::Delivered)
        else {
            return self.status.label().to_owned();
        };
        match remote.state {
            TaskState::Received => "Delivered".into(),
            TaskState::Accepted => match &remote.owner {
                Some(owner) => format!("Accepted by {}", owner.name),
                None => "Accepted".into(),
            },
            TaskState::Completed => "Completed".into(),
            TaskState::Rejected => match last_note {
                Some(reason) => format!("Rejected: {reason}"),
                None => "Rejected".into(),
            },
            TaskState::Cancelled => "Cancelled".into(),
        }
    }
}

/// One delivery attempt and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub task_id: String,
    pub number: u32,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    pub outcome: SendStatus,
    pub http_status: Option<u16>,
    pub detail: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stored rows and the outbox's SQL literals hold these: a change here
    /// needs a migration, not just an edit.
    #[test]
    fn storage_codes_are_stable_and_apart_from_labels() {
        let codes: Vec<&str> = SendStatus::ALL.iter().map(|s| s.code()).collect();
        assert_eq!(
            codes,
            [
                "queued",
                "sending",
                "retrying",
                "delivered",
                "rejected",
                "failed",
                "no_route"
            ]
        );
        for status in SendStatus::ALL {
            assert_eq!(SendStatus::from_code(status.code()), Some(status));
            assert_eq!(SendStatus::from_label(status.label()), Some(status));
        }
        assert_eq!(SendStatus::from_code("No electronic route"), None);
        assert_eq!(SendStatus::NoRoute.label(), "No electronic route");
    }
}
