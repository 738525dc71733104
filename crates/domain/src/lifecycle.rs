//! What becomes of a received task after delivery: its states, who may move
//! it from one to another, and the history each change leaves
//! (task-lifecycle.md §1; the wire codes of §2, the actions of §4).
//!
//! Both sides of the exchange, the store, the CLI and the UI decide "may this
//! happen?" here and nowhere else, so that a change refused on one path is
//! refused on every path.

use std::fmt;

use crate::ids::OdsCode;

/// State of a received task (task-lifecycle.md §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskState {
    Received,
    Accepted,
    Completed,
    Rejected,
    Cancelled,
}

impl TaskState {
    pub const ALL: [TaskState; 5] = [
        Self::Received,
        Self::Accepted,
        Self::Completed,
        Self::Rejected,
        Self::Cancelled,
    ];

    /// Stable storage code, never shown: "received", "accepted", "completed", "rejected", "cancelled".
    pub fn code(self) -> &'static str {
        match self {
            Self::Received => "received",
            Self::Accepted => "accepted",
            Self::Completed => "completed",
            Self::Rejected => "rejected",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        // Exact match only: a stored value that is not one of ours is
        // corruption to report, not something to guess at.
        Self::ALL.into_iter().find(|s| s.code() == code)
    }

    /// Text for people: "Received", "Accepted", "Completed", "Rejected", "Cancelled".
    pub fn display(self) -> &'static str {
        match self {
            Self::Received => "Received",
            Self::Accepted => "Accepted",
            Self::Completed => "Completed",
            Self::Rejected => "Rejected",
            Self::Cancelled => "Cancelled",
        }
    }

    /// completed, rejected, cancelled
    pub fn is_final(self) -> bool {
        matches!(self, Self::Completed | Self::Rejected | Self::Cancelled)
    }

    /// DSTU2 order-status code on the wire (OrderResponse.orderStatus): Some("accepted"|"completed"|"rejected"|"cancelled"), None for Received.
    pub fn order_status(self) -> Option<&'static str> {
        // Delivery itself is acknowledged by the 201 of POST /Order, so
        // `received` is never announced in an OrderResponse (§2).
        match self {
            Self::Received => None,
            Self::Accepted => Some("accepted"),
            Self::Completed => Some("completed"),
            Self::Rejected => Some("rejected"),
            Self::Cancelled => Some("cancelled"),
        }
    }

    /// Only the four codes of §2: "Nothing else is sent or accepted", so the
    /// other DSTU2 order-status codes (pending, review, ...) are refused too.
    pub fn from_order_status(code: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|s| s.order_status() == Some(code))
    }
}

/// Which side of the exchange made a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Party {
    Receiver,
    Sender,
}

impl Party {
    /// "receiver" | "sender"; also the word used in [`Refusal::WrongParty`]'s message.
    pub fn code(self) -> &'static str {
        match self {
            Self::Receiver => "receiver",
            Self::Sender => "sender",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        match code {
            "receiver" => Some(Self::Receiver),
            "sender" => Some(Self::Sender),
            _ => None,
        }
    }
}

/// The person who made a change (from SDS / the JWT's requesting_practitioner).
#[derive(Clone, PartialEq, Eq)]
pub struct Actor {
    pub sds_user_id: String,
    pub name: String,
    pub role_code: String,
    pub role_display: String,
    pub organisation: OdsCode,
}

impl Actor {
    /// The user of a practitioner record, at its organisation.
    pub fn of(p: &crate::reference::Practitioner) -> Self {
        Self {
            sds_user_id: p.sds_user_id.clone(),
            name: p.display_name(),
            role_code: p.role_code.clone(),
            role_display: p.role_display.clone(),
            organisation: p.organisation.clone(),
        }
    }
}

/// By hand: names are personal data and `{:?}` reaches logs (§5).
impl fmt::Debug for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Actor")
            .field("sds_user_id", &self.sds_user_id)
            .field("organisation", &self.organisation)
            .finish_non_exhaustive()
    }
}

/// The named user of the receiving organisation who owns the task.
#[derive(Clone, PartialEq, Eq)]
pub struct Owner {
    pub sds_user_id: String,
    pub name: String,
}

/// By hand, for the same reason as [`Actor`]'s.
impl fmt::Debug for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Owner")
            .field("sds_user_id", &self.sds_user_id)
            .finish_non_exhaustive()
    }
}

impl Owner {
    fn from_actor(actor: &Actor) -> Self {
        Self {
            sds_user_id: actor.sds_user_id.clone(),
            name: actor.name.clone(),
        }
    }
}

/// What a user asks to do to a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Receiver; the owner becomes the actor.
    Take,
    /// Receiver; the owner becomes `to`.
    Assign { to: Owner },
    /// Receiver (for a notification: marked as read).
    Complete,
    /// Receiver; text required (the reason).
    Reject,
    /// Sender; text required (the reason).
    Cancel,
    /// Receiver; text required; the state does not change.
    Note,
}

impl Change {
    /// The only side that may make this change.
    fn party(&self) -> Party {
        match self {
            Self::Cancel => Party::Sender,
            Self::Take | Self::Assign { .. } | Self::Complete | Self::Reject | Self::Note => {
                Party::Receiver
            }
        }
    }

    /// Past participle for [`Refusal::NotAllowed`]: "a task that is … cannot be {action}".
    fn action(&self) -> &'static str {
        match self {
            Self::Take => "taken",
            Self::Assign { .. } => "assigned",
            Self::Complete => "completed",
            Self::Reject => "rejected",
            Self::Cancel => "cancelled",
            Self::Note => "noted",
        }
    }

    /// The refusal when the text is missing, for the changes that need one.
    fn missing_text(&self) -> Option<Refusal> {
        match self {
            Self::Reject | Self::Cancel => Some(Refusal::ReasonRequired),
            Self::Note => Some(Refusal::NoteRequired),
            Self::Take | Self::Assign { .. } | Self::Complete => None,
        }
    }
}

/// Why a change was refused. Messages carry no personal data (they may be logged).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The task is completed, rejected or cancelled.
    #[error("the task is already {}", .0.code())]
    AlreadyFinal(TaskState),
    /// E.g. Take of an Accepted task (someone owns it: reassigning is Assign).
    #[error("a task that is {} cannot be {action}", .from.code())]
    NotAllowed {
        from: TaskState,
        action: &'static str,
    },
    /// The wrong side: only the sender cancels; only the receiver does the rest.
    #[error("only the {} may do this", .0.code())]
    WrongParty(Party),
    /// The task moved on since the version the user saw.
    #[error("the task is at version {current}, not {expected}")]
    StaleVersion { expected: u32, current: u32 },
    #[error("a reason is required")]
    ReasonRequired,
    #[error("a note is required")]
    NoteRequired,
    /// More than 1,000 characters, or empty/whitespace-only when given, or
    /// control characters other than \n \r \t.
    #[error("{0}")]
    BadText(&'static str),
}

/// The one table of which change is allowed from which state, by whom.
///
/// Checked in this order: the party, then finality, then the state. The
/// party comes first because a change from the wrong side is wrong whatever
/// the task's state: answering "already completed" to a receiver that tried
/// to cancel would suggest that it could have cancelled earlier. Finality
/// comes before the per-change rule so that every change to a closed task
/// gets the same answer, the one the UI and the 409 of §2 explain ("already
/// completed"), rather than a change-specific one.
pub fn transition(from: TaskState, change: &Change, party: Party) -> Result<TaskState, Refusal> {
    let allowed_party = change.party();
    if party != allowed_party {
        return Err(Refusal::WrongParty(allowed_party));
    }
    if from.is_final() {
        return Err(Refusal::AlreadyFinal(from));
    }
    // From here `from` is Received or Accepted.
    match (change, from) {
        // An accepted task belongs to someone: taking it from them silently
        // would let two users each believe it is theirs. Moving it on is an
        // explicit Assign.
        (Change::Take, TaskState::Accepted) => Err(Refusal::NotAllowed {
            from,
            action: change.action(),
        }),
        (Change::Take | Change::Assign { .. }, _) => Ok(TaskState::Accepted),
        (Change::Complete, _) => Ok(TaskState::Completed),
        (Change::Reject, _) => Ok(TaskState::Rejected),
        (Change::Cancel, _) => Ok(TaskState::Cancelled),
        (Change::Note, _) => Ok(from),
    }
}

/// The longest reason or note, in characters (task-lifecycle.md §1, §2).
pub const MAX_TEXT_CHARS: usize = 1000;

/// Checks a reason/note: 1..=1000 characters (chars, not bytes), not blank, no control characters except \n \r \t.
pub fn check_text(text: &str) -> Result<(), Refusal> {
    if text.is_empty() {
        return Err(Refusal::BadText("the text is empty"));
    }
    if text.trim().is_empty() {
        return Err(Refusal::BadText("the text is only spaces"));
    }
    // Characters, not bytes: the limit is what a person typed, and a reason
    // in Welsh or with a "µg" must not run out sooner than one in ASCII.
    if text.chars().nth(MAX_TEXT_CHARS).is_some() {
        return Err(Refusal::BadText("the text is longer than 1,000 characters"));
    }
    // Plain text that both sides show and log ids next to: escape sequences
    // or NULs could rewrite a terminal line or break a store, while line
    // breaks and tabs are how people write.
    if text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(Refusal::BadText("the text contains a control character"));
    }
    Ok(())
}

/// The life of one received task: where it stands now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lifecycle {
    pub state: TaskState,
    pub version: u32,
    pub owner: Option<Owner>,
}

impl Lifecycle {
    /// A task just delivered: Received, version 1, no owner.
    pub fn delivered() -> Self {
        Self {
            state: TaskState::Received,
            version: 1,
            owner: None,
        }
    }

    /// Applies one change made by `by` (of `party`), against `expected_version` when given (None = whatever it is now).
    ///
    /// Checks, in this order: version (StaleVersion), then [`transition`], then the text
    /// (required for Reject, Cancel, Note: ReasonRequired/NoteRequired when None; optional
    /// otherwise; [`check_text`] whenever Some). The version comes first so that
    /// the loser of a race is told "someone got there first" (and the UI shows
    /// what they did) rather than a rule the current state happens to break.
    /// A cancellation from the sender is applied whatever changed since the
    /// sender last looked (§2), so its caller passes None.
    ///
    /// Also refuses assigning a task to the user who already owns it: §1's
    /// `accepted → accepted` is a reassignment "to another user", and a
    /// repeated assignment would only send the sender a duplicate update.
    ///
    /// On success returns the new Lifecycle (version + 1, new state, new owner: Take → the
    /// actor as Owner, Assign → `to`, others keep the owner) and the TimelineEntry recording
    /// it. Does not modify self.
    pub fn apply(
        &self,
        change: &Change,
        by: &Actor,
        party: Party,
        text: Option<&str>,
        expected_version: Option<u32>,
        at: jiff::Timestamp,
    ) -> Result<(Lifecycle, TimelineEntry), Refusal> {
        if let Some(expected) = expected_version
            && expected != self.version
        {
            return Err(Refusal::StaleVersion {
                expected,
                current: self.version,
            });
        }
        let state = transition(self.state, change, party)?;
        if let Change::Assign { to } = change
            && self
                .owner
                .as_ref()
                .is_some_and(|o| o.sds_user_id == to.sds_user_id)
        {
            return Err(Refusal::NotAllowed {
                from: self.state,
                action: "assigned to its current owner",
            });
        }
        match (text, change.missing_text()) {
            (Some(t), _) => check_text(t)?,
            (None, Some(refusal)) => return Err(refusal),
            (None, None) => {}
        }
        // Versions are the concurrency token: wrapping or saturating would
        // hand out a version already used, so the last one is refused instead.
        let version = self.version.checked_add(1).ok_or(Refusal::NotAllowed {
            from: self.state,
            action: "changed again",
        })?;
        let owner = match change {
            Change::Take => Some(Owner::from_actor(by)),
            Change::Assign { to } => Some(to.clone()),
            Change::Complete | Change::Reject | Change::Cancel | Change::Note => self.owner.clone(),
        };
        let entry = TimelineEntry {
            version,
            at,
            by: by.clone(),
            party,
            state,
            owner: owner.clone(),
            note: text.map(str::to_owned),
        };
        Ok((
            Lifecycle {
                state,
                version,
                owner,
            },
            entry,
        ))
    }
}

/// One change in a task's history, as both sides show it.
#[derive(Clone, PartialEq, Eq)]
pub struct TimelineEntry {
    pub version: u32,
    pub at: jiff::Timestamp,
    pub by: Actor,
    pub party: Party,
    /// The state after the change.
    pub state: TaskState,
    /// The owner after the change.
    pub owner: Option<Owner>,
    /// The reason or note.
    pub note: Option<String>,
}

/// By hand: a note or reason is free text about a patient and must not reach
/// logs (§5); whether there is one is still worth seeing.
impl fmt::Debug for TimelineEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimelineEntry")
            .field("version", &self.version)
            .field("at", &self.at)
            .field("by", &self.by)
            .field("party", &self.party)
            .field("state", &self.state)
            .field("owner", &self.owner)
            .field("note", &self.note.as_ref().map(|_| "…"))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::Change::{Assign, Cancel, Complete, Note, Reject, Take};
    use super::Party::{Receiver, Sender};
    use super::Refusal::{AlreadyFinal, NotAllowed, WrongParty};
    use super::TaskState::{Accepted, Cancelled, Completed, Received, Rejected};
    use super::*;

    fn owner(id: &str, name: &str) -> Owner {
        Owner {
            sds_user_id: id.to_owned(),
            name: name.to_owned(),
        }
    }

    fn actor(id: &str, name: &str) -> Actor {
        Actor {
            sds_user_id: id.to_owned(),
            name: name.to_owned(),
            role_code: "R0260".to_owned(),
            role_display: "General Medical Practitioner".to_owned(),
            organisation: OdsCode::parse("GPC001").unwrap(),
        }
    }

    fn gilbert() -> Actor {
        actor("G13579135", "Dr Nichole GILBERT")
    }

    fn assign() -> Change {
        Assign {
            to: owner("G22222222", "Ms Ada WELLS"),
        }
    }

    fn at() -> jiff::Timestamp {
        "2026-12-02T10:32:05Z".parse().unwrap()
    }

    fn not_allowed(from: TaskState, action: &'static str) -> Refusal {
        NotAllowed { from, action }
    }

    /// Every (state, change, party), written out by hand from §1 and the
    /// check order documented on `transition` (party, final, state).
    #[test]
    fn every_transition_against_the_table() {
        let table: Vec<(TaskState, Change, Party, Result<TaskState, Refusal>)> = vec![
            // received
            (Received, Take, Receiver, Ok(Accepted)),
            (Received, Take, Sender, Err(WrongParty(Receiver))),
            (Received, assign(), Receiver, Ok(Accepted)),
            (Received, assign(), Sender, Err(WrongParty(Receiver))),
            (Received, Complete, Receiver, Ok(Completed)),
            (Received, Complete, Sender, Err(WrongParty(Receiver))),
            (Received, Reject, Receiver, Ok(Rejected)),
            (Received, Reject, Sender, Err(WrongParty(Receiver))),
            (Received, Cancel, Receiver, Err(WrongParty(Sender))),
            (Received, Cancel, Sender, Ok(Cancelled)),
            (Received, Note, Receiver, Ok(Received)),
            (Received, Note, Sender, Err(WrongParty(Receiver))),
            // accepted
            (
                Accepted,
                Take,
                Receiver,
                Err(not_allowed(Accepted, "taken")),
            ),
            (Accepted, Take, Sender, Err(WrongParty(Receiver))),
            (Accepted, assign(), Receiver, Ok(Accepted)),
            (Accepted, assign(), Sender, Err(WrongParty(Receiver))),
            (Accepted, Complete, Receiver, Ok(Completed)),
            (Accepted, Complete, Sender, Err(WrongParty(Receiver))),
            (Accepted, Reject, Receiver, Ok(Rejected)),
            (Accepted, Reject, Sender, Err(WrongParty(Receiver))),
            (Accepted, Cancel, Receiver, Err(WrongParty(Sender))),
            (Accepted, Cancel, Sender, Ok(Cancelled)),
            (Accepted, Note, Receiver, Ok(Accepted)),
            (Accepted, Note, Sender, Err(WrongParty(Receiver))),
            // completed
            (Completed, Take, Receiver, Err(AlreadyFinal(Completed))),
            (Completed, Take, Sender, Err(WrongParty(Receiver))),
            (Completed, assign(), Receiver, Err(AlreadyFinal(Completed))),
            (Completed, assign(), Sender, Err(WrongParty(Receiver))),
            (Completed, Complete, Receiver, Err(AlreadyFinal(Completed))),
            (Completed, Complete, Sender, Err(WrongParty(Receiver))),
            (Completed, Reject, Receiver, Err(AlreadyFinal(Completed))),
            (Completed, Reject, Sender, Err(WrongParty(Receiver))),
            (Completed, Cancel, Receiver, Err(WrongParty(Sender))),
            (Completed, Cancel, Sender, Err(AlreadyFinal(Completed))),
            (Completed, Note, Receiver, Err(AlreadyFinal(Completed))),
            (Completed, Note, Sender, Err(WrongParty(Receiver))),
            // rejected
            (Rejected, Take, Receiver, Err(AlreadyFinal(Rejected))),
            (Rejected, Take, Sender, Err(WrongParty(Receiver))),
            (Rejected, assign(), Receiver, Err(AlreadyFinal(Rejected))),
            (Rejected, assign(), Sender, Err(WrongParty(Receiver))),
            (Rejected, Complete, Receiver, Err(AlreadyFinal(Rejected))),
            (Rejected, Complete, Sender, Err(WrongParty(Receiver))),
            (Rejected, Reject, Receiver, Err(AlreadyFinal(Rejected))),
            (Rejected, Reject, Sender, Err(WrongParty(Receiver))),
            (Rejected, Cancel, Receiver, Err(WrongParty(Sender))),
            (Rejected, Cancel, Sender, Err(AlreadyFinal(Rejected))),
            (Rejected, Note, Receiver, Err(AlreadyFinal(Rejected))),
            (Rejected, Note, Sender, Err(WrongParty(Receiver))),
            // cancelled
            (Cancelled, Take, Receiver, Err(AlreadyFinal(Cancelled))),
            (Cancelled, Take, Sender, Err(WrongParty(Receiver))),
            (Cancelled, assign(), Receiver, Err(AlreadyFinal(Cancelled))),
            (Cancelled, assign(), Sender, Err(WrongParty(Receiver))),
            (Cancelled, Complete, Receiver, Err(AlreadyFinal(Cancelled))),
            (Cancelled, Complete, Sender, Err(WrongParty(Receiver))),
            (Cancelled, Reject, Receiver, Err(AlreadyFinal(Cancelled))),
            (Cancelled, Reject, Sender, Err(WrongParty(Receiver))),
            (Cancelled, Cancel, Receiver, Err(WrongParty(Sender))),
            (Cancelled, Cancel, Sender, Err(AlreadyFinal(Cancelled))),
            (Cancelled, Note, Receiver, Err(AlreadyFinal(Cancelled))),
            (Cancelled, Note, Sender, Err(WrongParty(Receiver))),
        ];

        // The table itself must name every combination exactly once.
        let changes = [Take, assign(), Complete, Reject, Cancel, Note];
        assert_eq!(table.len(), 5 * 6 * 2);
        for state in TaskState::ALL {
            for change in &changes {
                for party in [Receiver, Sender] {
                    let rows = table
                        .iter()
                        .filter(|(s, c, p, _)| *s == state && c == change && *p == party)
                        .count();
                    assert_eq!(rows, 1, "{state:?} {change:?} {party:?}");
                }
            }
        }

        for (from, change, party, expected) in &table {
            assert_eq!(
                transition(*from, change, *party),
                *expected,
                "{from:?} {change:?} {party:?}"
            );
        }
    }

    #[test]
    fn party_is_checked_before_finality_before_state() {
        // Wrong side on a final task: the side is reported, not the finality.
        assert_eq!(
            transition(Completed, &Cancel, Receiver),
            Err(WrongParty(Sender))
        );
        assert_eq!(
            transition(Cancelled, &Take, Sender),
            Err(WrongParty(Receiver))
        );
        // Wrong side on a state the change could never leave: still the side.
        assert_eq!(
            transition(Accepted, &Take, Sender),
            Err(WrongParty(Receiver))
        );
        // Right side, final task: finality.
        assert_eq!(
            transition(Rejected, &Cancel, Sender),
            Err(AlreadyFinal(Rejected))
        );
        // Right side, open task, change not allowed from it.
        assert_eq!(
            transition(Accepted, &Take, Receiver),
            Err(not_allowed(Accepted, "taken"))
        );
    }

    #[test]
    fn refusal_messages() {
        assert_eq!(
            WrongParty(Sender).to_string(),
            "only the sender may do this"
        );
        assert_eq!(
            WrongParty(Receiver).to_string(),
            "only the receiver may do this"
        );
        assert_eq!(
            AlreadyFinal(Completed).to_string(),
            "the task is already completed"
        );
        assert_eq!(
            not_allowed(Accepted, "taken").to_string(),
            "a task that is accepted cannot be taken"
        );
        assert_eq!(
            Refusal::StaleVersion {
                expected: 2,
                current: 3
            }
            .to_string(),
            "the task is at version 3, not 2"
        );
        assert_eq!(Refusal::ReasonRequired.to_string(), "a reason is required");
        assert_eq!(Refusal::NoteRequired.to_string(), "a note is required");
    }

    #[test]
    fn state_codes_round_trip_and_are_distinct() {
        let mut seen = std::collections::HashSet::new();
        for s in TaskState::ALL {
            assert_eq!(TaskState::from_code(s.code()), Some(s));
            assert!(seen.insert(s.code()), "duplicate code {}", s.code());
            assert_ne!(s.display(), s.code());
        }
        assert_eq!(seen.len(), 5);
        let codes: Vec<_> = TaskState::ALL.iter().map(|s| s.code()).collect();
        assert_eq!(
            codes,
            ["received", "accepted", "completed", "rejected", "cancelled"]
        );
        let shown: Vec<_> = TaskState::ALL.iter().map(|s| s.display()).collect();
        assert_eq!(
            shown,
            ["Received", "Accepted", "Completed", "Rejected", "Cancelled"]
        );
    }

    #[test]
    fn unknown_and_display_strings_are_not_codes() {
        for bad in [
            "",
            "Received",
            "Accepted",
            "Completed",
            "Rejected",
            "Cancelled",
            "RECEIVED",
            " received",
            "received ",
            "canceled",
            "open",
            "done",
            "delivered",
            "Delivered",
            "pending",
            "in-progress",
        ] {
            assert_eq!(TaskState::from_code(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn finality() {
        let finals: Vec<_> = TaskState::ALL
            .into_iter()
            .filter(|s| s.is_final())
            .collect();
        assert_eq!(finals, [Completed, Rejected, Cancelled]);
    }

    #[test]
    fn order_status_mapping() {
        assert_eq!(Received.order_status(), None);
        assert_eq!(Accepted.order_status(), Some("accepted"));
        assert_eq!(Completed.order_status(), Some("completed"));
        assert_eq!(Rejected.order_status(), Some("rejected"));
        assert_eq!(Cancelled.order_status(), Some("cancelled"));
        for s in TaskState::ALL {
            if let Some(code) = s.order_status() {
                assert_eq!(TaskState::from_order_status(code), Some(s));
            }
        }
        // The rest of the DSTU2 value set, and anything else, is refused.
        for bad in [
            "received", "pending", "review", "aborted", "replaced", "error", "Accepted",
            "canceled", "",
        ] {
            assert_eq!(TaskState::from_order_status(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn party_codes_round_trip() {
        assert_eq!(Receiver.code(), "receiver");
        assert_eq!(Sender.code(), "sender");
        for p in [Receiver, Sender] {
            assert_eq!(Party::from_code(p.code()), Some(p));
        }
        for bad in ["", "Receiver", "SENDER", "both", "requester"] {
            assert_eq!(Party::from_code(bad), None, "{bad:?}");
        }
    }

    fn is_bad_text(r: Result<(), Refusal>) -> bool {
        matches!(r, Err(Refusal::BadText(_)))
    }

    #[test]
    fn text_bounds() {
        assert!(is_bad_text(check_text("")));
        assert!(is_bad_text(check_text(" ")));
        assert!(is_bad_text(check_text(" \t\r\n ")));
        assert!(is_bad_text(check_text("\u{3000}"))); // ideographic space
        assert_eq!(check_text("x"), Ok(()));
        assert_eq!(check_text(&"x".repeat(MAX_TEXT_CHARS)), Ok(()));
        assert!(is_bad_text(check_text(&"x".repeat(MAX_TEXT_CHARS + 1))));
        assert_eq!(MAX_TEXT_CHARS, 1000);
    }

    #[test]
    fn text_counts_chars_not_bytes() {
        let thousand = "µ".repeat(MAX_TEXT_CHARS); // 2,000 bytes
        assert_eq!(thousand.len(), 2 * MAX_TEXT_CHARS);
        assert_eq!(check_text(&thousand), Ok(()));
        let emoji = "🩺".repeat(MAX_TEXT_CHARS); // 4,000 bytes
        assert_eq!(check_text(&emoji), Ok(()));
        assert!(is_bad_text(check_text(&format!("{emoji}a"))));
        assert_eq!(check_text("Adolygiad meddyginiaeth ŵ ŷ"), Ok(()));
    }

    #[test]
    fn text_control_characters() {
        assert_eq!(check_text("line one\nline two\r\n\tindented"), Ok(()));
        for bad in [
            "a\u{0}b",
            "a\u{7}b",
            "a\u{1b}[2Jb",
            "a\u{7f}b",
            "a\u{85}b",
            "a\u{b}b",
            "a\u{c}b",
        ] {
            assert!(is_bad_text(check_text(bad)), "{bad:?}");
        }
    }

    #[test]
    fn delivered_is_received_version_1_unowned() {
        assert_eq!(
            Lifecycle::delivered(),
            Lifecycle {
                state: Received,
                version: 1,
                owner: None
            }
        );
    }

    #[test]
    fn take_then_assign_then_complete() {
        let start = Lifecycle::delivered();
        let (taken, e1) = start
            .apply(&Take, &gilbert(), Receiver, None, Some(1), at())
            .unwrap();
        assert_eq!(start, Lifecycle::delivered(), "apply must not modify self");
        assert_eq!(taken.state, Accepted);
        assert_eq!(taken.version, 2);
        assert_eq!(taken.owner, Some(owner("G13579135", "Dr Nichole GILBERT")));
        assert_eq!(e1.version, 2);
        assert_eq!(e1.at, at());
        assert_eq!(e1.by, gilbert());
        assert_eq!(e1.party, Receiver);
        assert_eq!(e1.state, Accepted);
        assert_eq!(e1.owner, taken.owner);
        assert_eq!(e1.note, None);

        let (assigned, e2) = taken
            .apply(
                &assign(),
                &gilbert(),
                Receiver,
                Some("Ada does the reviews"),
                None,
                at(),
            )
            .unwrap();
        assert_eq!(assigned.state, Accepted);
        assert_eq!(assigned.version, 3);
        assert_eq!(assigned.owner, Some(owner("G22222222", "Ms Ada WELLS")));
        assert_eq!(e2.owner, assigned.owner);
        assert_eq!(e2.by, gilbert(), "the actor, not the new owner, made it");
        assert_eq!(e2.note.as_deref(), Some("Ada does the reviews"));

        let ada = actor("G22222222", "Ms Ada WELLS");
        let (done, e3) = assigned
            .apply(
                &Complete,
                &ada,
                Receiver,
                Some("Booked for Thursday."),
                Some(3),
                at(),
            )
            .unwrap();
        assert_eq!(done.state, Completed);
        assert_eq!(done.version, 4);
        assert_eq!(done.owner, assigned.owner, "completing keeps the owner");
        assert_eq!(e3.note.as_deref(), Some("Booked for Thursday."));
        assert_eq!(e3.state, Completed);
    }

    #[test]
    fn assign_from_received_sets_owner() {
        let (l, e) = Lifecycle::delivered()
            .apply(&assign(), &gilbert(), Receiver, None, None, at())
            .unwrap();
        assert_eq!(l.state, Accepted);
        assert_eq!(l.owner, Some(owner("G22222222", "Ms Ada WELLS")));
        assert_eq!(e.owner, l.owner);
    }

    #[test]
    fn assign_to_the_current_owner_is_refused() {
        let owned = Lifecycle {
            state: Accepted,
            version: 2,
            owner: Some(owner("G22222222", "Ms Ada WELLS")),
        };
        assert_eq!(
            owned.apply(&assign(), &gilbert(), Receiver, None, Some(2), at()),
            Err(not_allowed(Accepted, "assigned to its current owner"))
        );
    }

    #[test]
    fn other_changes_keep_the_owner() {
        let owned = Lifecycle {
            state: Accepted,
            version: 5,
            owner: Some(owner("G22222222", "Ms Ada WELLS")),
        };
        let cases: [(Change, Party, Option<&str>); 4] = [
            (Complete, Receiver, None),
            (Reject, Receiver, Some("Not ours")),
            (Cancel, Sender, Some("Sent in error")),
            (Note, Receiver, Some("Phoned the patient")),
        ];
        for (change, party, text) in cases {
            let (l, e) = owned
                .apply(&change, &gilbert(), party, text, Some(5), at())
                .unwrap();
            assert_eq!(l.version, 6, "{change:?}");
            assert_eq!(l.owner, owned.owner, "{change:?}");
            assert_eq!(e.owner, owned.owner, "{change:?}");
            assert_eq!(e.note.as_deref(), text, "{change:?}");
            assert_eq!(e.party, party);
        }
    }

    #[test]
    fn note_keeps_state_and_bumps_version() {
        let (l, e) = Lifecycle::delivered()
            .apply(
                &Note,
                &gilbert(),
                Receiver,
                Some("Chasing results"),
                None,
                at(),
            )
            .unwrap();
        assert_eq!(l.state, Received);
        assert_eq!(l.version, 2);
        assert_eq!(l.owner, None);
        assert_eq!(e.state, Received);
        assert_eq!(e.note.as_deref(), Some("Chasing results"));
    }

    #[test]
    fn stale_version_refused_and_nothing_changed() {
        let now = Lifecycle {
            state: Accepted,
            version: 3,
            owner: Some(owner("G13579135", "Dr Nichole GILBERT")),
        };
        let before = now.clone();
        assert_eq!(
            now.apply(&Complete, &gilbert(), Receiver, None, Some(2), at()),
            Err(Refusal::StaleVersion {
                expected: 2,
                current: 3
            })
        );
        assert_eq!(now, before);
        // Stale is reported before the state rule and before the text.
        assert_eq!(
            now.apply(&Take, &gilbert(), Receiver, None, Some(1), at()),
            Err(Refusal::StaleVersion {
                expected: 1,
                current: 3
            })
        );
        assert_eq!(
            now.apply(&Reject, &gilbert(), Receiver, None, Some(4), at()),
            Err(Refusal::StaleVersion {
                expected: 4,
                current: 3
            })
        );
        // Two users take the same task at version 1: exactly one wins.
        let start = Lifecycle::delivered();
        let ada = actor("G22222222", "Ms Ada WELLS");
        let (won, _) = start
            .apply(&Take, &gilbert(), Receiver, None, Some(1), at())
            .unwrap();
        assert!(matches!(
            won.apply(&Take, &ada, Receiver, None, Some(1), at()),
            Err(Refusal::StaleVersion { .. })
        ));
    }

    #[test]
    fn reasons_and_notes_required() {
        let start = Lifecycle::delivered();
        assert_eq!(
            start.apply(&Reject, &gilbert(), Receiver, None, None, at()),
            Err(Refusal::ReasonRequired)
        );
        assert_eq!(
            start.apply(&Cancel, &gilbert(), Sender, None, None, at()),
            Err(Refusal::ReasonRequired)
        );
        assert_eq!(
            start.apply(&Note, &gilbert(), Receiver, None, None, at()),
            Err(Refusal::NoteRequired)
        );
        // Given but blank is bad text, not missing.
        assert!(matches!(
            start.apply(&Reject, &gilbert(), Receiver, Some("  "), None, at()),
            Err(Refusal::BadText(_))
        ));
        // Optional text is still checked when given.
        assert!(matches!(
            start.apply(&Take, &gilbert(), Receiver, Some(""), None, at()),
            Err(Refusal::BadText(_))
        ));
        assert!(matches!(
            start.apply(
                &Complete,
                &gilbert(),
                Receiver,
                Some(&"x".repeat(1001)),
                None,
                at()
            ),
            Err(Refusal::BadText(_))
        ));
        // The transition is checked before the text.
        assert_eq!(
            start.apply(&Cancel, &gilbert(), Receiver, None, None, at()),
            Err(WrongParty(Sender))
        );
        let done = Lifecycle {
            state: Completed,
            version: 4,
            owner: None,
        };
        assert_eq!(
            done.apply(&Note, &gilbert(), Receiver, None, None, at()),
            Err(AlreadyFinal(Completed))
        );
    }

    #[test]
    fn cancel_by_sender_without_version() {
        let owned = Lifecycle {
            state: Accepted,
            version: 7,
            owner: Some(owner("G13579135", "Dr Nichole GILBERT")),
        };
        let sender = Actor {
            organisation: OdsCode::parse("GPC002").unwrap(),
            ..actor("G99999999", "Dr Sam SENDER")
        };
        let (l, e) = owned
            .apply(&Cancel, &sender, Sender, Some("Sent in error"), None, at())
            .unwrap();
        assert_eq!(l.state, Cancelled);
        assert_eq!(l.version, 8);
        assert_eq!(e.by, sender);
        assert_eq!(e.party, Sender);
    }

    #[test]
    fn last_version_is_not_wrapped() {
        let old = Lifecycle {
            state: Received,
            version: u32::MAX,
            owner: None,
        };
        assert_eq!(
            old.apply(&Take, &gilbert(), Receiver, None, None, at()),
            Err(not_allowed(Received, "changed again"))
        );
    }

    #[test]
    fn debug_shows_no_names_and_no_notes() {
        let a = gilbert();
        let a_dbg = format!("{a:?}");
        assert!(a_dbg.contains("G13579135"), "{a_dbg}");
        assert!(a_dbg.contains("GPC001"), "{a_dbg}");
        assert!(!a_dbg.contains("GILBERT"), "{a_dbg}");
        assert!(!a_dbg.contains("Nichole"), "{a_dbg}");

        let o = owner("G22222222", "Ms Ada WELLS");
        let o_dbg = format!("{o:?}");
        assert!(o_dbg.contains("G22222222"), "{o_dbg}");
        assert!(!o_dbg.contains("WELLS"), "{o_dbg}");

        let c_dbg = format!("{:?}", assign());
        assert!(!c_dbg.contains("WELLS"), "{c_dbg}");

        let (l, e) = Lifecycle::delivered()
            .apply(
                &assign(),
                &a,
                Receiver,
                Some("Patient prefers mornings"),
                None,
                at(),
            )
            .unwrap();
        let e_dbg = format!("{e:?}");
        assert!(e_dbg.contains(r#"note: Some("…")"#), "{e_dbg}");
        assert!(!e_dbg.contains("mornings"), "{e_dbg}");
        assert!(!e_dbg.contains("GILBERT"), "{e_dbg}");
        assert!(!e_dbg.contains("WELLS"), "{e_dbg}");
        let l_dbg = format!("{l:?}");
        assert!(!l_dbg.contains("WELLS"), "{l_dbg}");

        let (_, plain) = l.apply(&Complete, &a, Receiver, None, None, at()).unwrap();
        assert!(format!("{plain:?}").contains("note: None"));
    }
}

/// One change asked of a received task, as a store applies it: the rules of
/// [`Lifecycle::apply`] and the write happen together, against the task as
/// it is at that moment.
#[derive(Clone, PartialEq, Eq)]
pub struct TaskChange {
    pub change: Change,
    pub by: Actor,
    pub party: Party,
    /// The reason or note; see [`Lifecycle::apply`].
    pub text: Option<String>,
    /// Make the change only while the task is at this version.
    pub expected_version: Option<u32>,
    pub at: jiff::Timestamp,
    /// How the other side hears of it, or where it came from.
    pub wire: crate::updates::Wire,
}

impl TaskChange {
    /// Whether the store queues an update for the task's sender with this
    /// change: every change the receiver makes here except a note (§2: a
    /// note stays with the receiving organisation).
    pub fn notifies_sender(&self) -> bool {
        self.party == Party::Receiver
            && !matches!(self.change, Change::Note)
            && matches!(self.wire, crate::updates::Wire::Outgoing { .. })
    }
}

impl TaskChange {
    /// This change applied to `life`: see [`Lifecycle::apply`].
    pub fn apply_to(&self, life: &Lifecycle) -> Result<(Lifecycle, TimelineEntry), Refusal> {
        life.apply(
            &self.change,
            &self.by,
            self.party,
            self.text.as_deref(),
            self.expected_version,
            self.at,
        )
    }
}

/// By hand: the text is about a patient and must not reach logs (§5).
impl fmt::Debug for TaskChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskChange")
            .field("change", &self.change)
            .field("by", &self.by)
            .field("party", &self.party)
            .field("text", &self.text.as_ref().map(|_| "…"))
            .field("expected_version", &self.expected_version)
            .field("at", &self.at)
            .field("wire", &self.wire)
            .finish()
    }
}

/// Which received tasks a list shows (task-lifecycle.md §4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxView {
    pub states: StateFilter,
    /// Only tasks this SDS user owns.
    pub owner: Option<String>,
    /// Only tasks nobody owns.
    pub unowned: bool,
}

/// The states a list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateFilter {
    All,
    /// Received and accepted: still to be done.
    Open,
    /// Completed, rejected or cancelled.
    Done,
    One(TaskState),
}

impl StateFilter {
    /// The CLI's `--state` words: `open`, `done`, `all` or a state's code.
    pub fn parse(word: &str) -> Option<Self> {
        match word {
            "all" => Some(Self::All),
            "open" => Some(Self::Open),
            "done" => Some(Self::Done),
            code => TaskState::from_code(code).map(Self::One),
        }
    }

    pub fn includes(self, state: TaskState) -> bool {
        match self {
            Self::All => true,
            Self::Open => !state.is_final(),
            Self::Done => state.is_final(),
            Self::One(s) => s == state,
        }
    }

    /// The states it includes, in `TaskState::ALL` order.
    pub fn states(self) -> Vec<TaskState> {
        TaskState::ALL
            .into_iter()
            .filter(|s| self.includes(*s))
            .collect()
    }
}

impl InboxView {
    /// Every task, newest first.
    pub fn all() -> Self {
        Self {
            states: StateFilter::All,
            owner: None,
            unowned: false,
        }
    }

    pub fn of(states: StateFilter) -> Self {
        Self {
            states,
            ..Self::all()
        }
    }
}

#[cfg(test)]
mod view_tests {
    use super::*;

    #[test]
    fn state_filters_name_the_states_of_each_list() {
        use TaskState::*;
        assert_eq!(
            StateFilter::parse("open").unwrap().states(),
            [Received, Accepted]
        );
        assert_eq!(
            StateFilter::parse("done").unwrap().states(),
            [Completed, Rejected, Cancelled]
        );
        assert_eq!(StateFilter::parse("all").unwrap().states(), TaskState::ALL);
        assert_eq!(StateFilter::parse("rejected").unwrap().states(), [Rejected]);
        assert_eq!(StateFilter::parse("Rejected"), None);
        assert_eq!(StateFilter::parse("closed"), None);
    }
}
