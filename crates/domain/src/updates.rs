//! Updates of a task on their way between the two sides
//! (task-lifecycle.md §2, §3): the receiver's changes queued for the
//! sender, the sender's cancellation queued for the receiver, and what an
//! arriving `OrderResponse` leaves behind so that a repeat of it gets the
//! same answer.

use crate::ids::{Asid, OdsCode};
use crate::lifecycle::{Actor, Owner, TaskState, TimelineEntry};
use jiff::Timestamp;
use std::fmt;

/// Where an update on its way to the other side stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UpdateStatus {
    /// Not delivered yet: retried on 502/503/504, timeouts and connection
    /// errors, with backoff, until it is.
    Pending,
    /// The other side answered 200 or 201.
    Delivered,
    /// The other side answered 4xx (for a cancellation: 409, the task was
    /// already final); never retried.
    Refused,
}

impl UpdateStatus {
    pub const ALL: [UpdateStatus; 3] = [Self::Pending, Self::Delivered, Self::Refused];

    /// The stable storage code.
    pub fn code(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Refused => "refused",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.code() == code)
    }
}

/// How a change reaches, or came from, the other side.
#[derive(Clone, PartialEq, Eq)]
pub enum Wire {
    /// Made on this side. When the other side hears of this change (every
    /// change of the receiver except a note), the store queues an update
    /// under this identifier in the change's own transaction.
    Outgoing { identifier: String },
    /// Arrived from the other side as this OrderResponse.
    Incoming(ReceivedUpdate),
}

impl Wire {
    /// A change made here, with a fresh identifier (`urn:uuid:…`).
    pub fn outgoing() -> Self {
        Self::Outgoing {
            identifier: format!("urn:uuid:{}", uuid::Uuid::new_v4()),
        }
    }

    pub fn identifier(&self) -> &str {
        match self {
            Self::Outgoing { identifier } => identifier,
            Self::Incoming(received) => &received.identifier,
        }
    }
}

impl fmt::Debug for Wire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Outgoing { identifier } => f
                .debug_struct("Outgoing")
                .field("identifier", identifier)
                .finish(),
            Self::Incoming(r) => f.debug_tuple("Incoming").field(r).finish(),
        }
    }
}

/// An OrderResponse that arrived, kept with the change it made: its
/// identifier makes a repeat recognisable, its body answers the repeat.
#[derive(Clone, PartialEq, Eq)]
pub struct ReceivedUpdate {
    pub identifier: String,
    /// The OrderResponse as it arrived (JSON). The answer to it (and to a
    /// repeat of it) is derived from this and the change it made: id from
    /// the identifier's uuid, `meta.versionId` and the version extension
    /// from the change's version.
    pub body: String,
}

/// By hand: the body carries names and free text.
impl fmt::Debug for ReceivedUpdate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReceivedUpdate")
            .field("identifier", &self.identifier)
            .finish_non_exhaustive()
    }
}

/// A change of a received task on its way to the task's sender: one row of
/// the receiver's update outbox, written with the change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingUpdate {
    /// The OrderResponse's business identifier, the same on every attempt.
    pub identifier: String,
    /// The receiving organisation (this side).
    pub tenant: OdsCode,
    /// The receiver's id of the task.
    pub task_id: String,
    /// The task's sender, where the update goes.
    pub to_ods: OdsCode,
    pub to_asid: Asid,
    /// The change: version, who, state, owner, note.
    pub entry: TimelineEntry,
    pub created_at: Timestamp,
    pub status: UpdateStatus,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the next attempt is due; `None` once delivered or refused.
    pub next_attempt_at: Option<Timestamp>,
    /// The last answer's HTTP status, if any came.
    pub http_status: Option<u16>,
    /// Why the last attempt failed or the update was refused, in plain words
    /// (no patient data: the other side's diagnostics, or a network error).
    pub detail: Option<String>,
    /// When it was delivered or refused.
    pub finished_at: Option<Timestamp>,
}

/// Where the receiving organisation's task stands, as the sender last heard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteState {
    pub state: TaskState,
    pub version: u32,
    pub owner: Option<Owner>,
    /// When that change was made (the receiver's time).
    pub at: Timestamp,
}

/// The sender's request to withdraw a delivered task, and how it went.
#[derive(Clone, PartialEq, Eq)]
pub struct Cancellation {
    /// The OrderResponse's business identifier, the same on every attempt.
    pub identifier: String,
    pub reason: String,
    pub by: Actor,
    pub requested_at: Timestamp,
    /// The task's version as the sender last saw it (information only, §2).
    pub seen_version: u32,
    /// Pending until the receiver answers; Delivered = cancelled;
    /// Refused = not cancelled (the task was already final).
    pub status: UpdateStatus,
    pub attempts: u32,
    pub next_attempt_at: Option<Timestamp>,
    pub http_status: Option<u16>,
    /// The receiver's diagnostics when refused ("… completed at 10:40"), or
    /// the last failure while pending.
    pub detail: Option<String>,
    pub finished_at: Option<Timestamp>,
}

/// By hand: the reason is free text about a patient.
impl fmt::Debug for Cancellation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cancellation")
            .field("identifier", &self.identifier)
            .field("by", &self.by)
            .field("requested_at", &self.requested_at)
            .field("seen_version", &self.seen_version)
            .field("status", &self.status)
            .field("attempts", &self.attempts)
            .field("next_attempt_at", &self.next_attempt_at)
            .field("http_status", &self.http_status)
            .field("finished_at", &self.finished_at)
            .finish_non_exhaustive()
    }
}

/// A change the recipient reports about a sent task: an OrderResponse it
/// posted (`received` set), or its answer to this side's cancellation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteUpdate {
    pub entry: TimelineEntry,
    pub received: Option<ReceivedUpdate>,
}

/// Delays between attempts of an update: doubling from 1 s, capped at 5
/// minutes (§3). `attempts` is the number made so far (≥ 1).
pub fn update_backoff(attempts: u32) -> std::time::Duration {
    let cap = std::time::Duration::from_secs(300);
    let exponent = attempts.saturating_sub(1).min(16);
    std::time::Duration::from_secs(1u64 << exponent).min(cap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_codes_are_stable() {
        let codes: Vec<&str> = UpdateStatus::ALL.iter().map(|s| s.code()).collect();
        assert_eq!(codes, ["pending", "delivered", "refused"]);
        for s in UpdateStatus::ALL {
            assert_eq!(UpdateStatus::from_code(s.code()), Some(s));
        }
        assert_eq!(UpdateStatus::from_code("Pending"), None);
    }

    #[test]
    fn backoff_doubles_and_stops_at_five_minutes() {
        let secs: Vec<u64> = (1..=12).map(|a| update_backoff(a).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]);
        assert_eq!(update_backoff(u32::MAX).as_secs(), 300);
    }

    #[test]
    fn outgoing_identifiers_are_fresh_uuids() {
        let (a, b) = (Wire::outgoing(), Wire::outgoing());
        assert!(a.identifier().starts_with("urn:uuid:"));
        assert_eq!(a.identifier().len(), "urn:uuid:".len() + 36);
        assert_ne!(a.identifier(), b.identifier());
    }
}
