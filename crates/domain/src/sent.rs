//! A task on the sending side: what the clinician asked for, where it is
//! going, and how its delivery went (spec §10).

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

    pub fn as_str(self) -> &'static str {
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

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
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
    pub from_ods: String,
    pub from_name: String,
    /// The sending system's ASID; empty when unknown (no route).
    pub from_asid: String,
    pub user_sds_id: String,
    /// The practitioner's local id, the JWT `sub`.
    pub user_id: String,
    pub user_name: String,
    pub user_role_code: String,
    pub user_role_display: String,
    pub nhs_number: String,
    pub patient_name: String,
    pub to_ods: String,
    pub to_name: String,
    pub to_telephone: String,
    /// One line, for display.
    pub to_address: String,
    /// The recipient's provider root (SDS Endpoint address); empty for no route.
    pub endpoint: String,
    pub to_asid: String,
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
