//! A received task as the provider stores it, with its provenance and where
//! it stands in its life (task-lifecycle.md §1).

use crate::ids::{Asid, NhsNumber, OdsCode};
use crate::lifecycle::{Actor, Lifecycle, Party, TaskState, TimelineEntry};
use jiff::Timestamp;

/// Task type, value set `gpconnect-task-type-1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskType {
    /// Code `1`: a notification.
    InformationOnly,
    /// Code `2`: an action is requested.
    ActionNeeded,
}

impl TaskType {
    pub fn from_code(code: &str) -> Option<Self> {
        match code {
            "1" => Some(Self::InformationOnly),
            "2" => Some(Self::ActionNeeded),
            _ => None,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Self::InformationOnly => "1",
            Self::ActionNeeded => "2",
        }
    }

    pub fn display(self) -> &'static str {
        match self {
            Self::InformationOnly => "Information only",
            Self::ActionNeeded => "Action needed",
        }
    }
}

/// A business identifier (`system|value`) of an Order.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BusinessIdentifier {
    pub system: String,
    pub value: String,
}

/// The practitioner and organisation who sent the task, from the validated JWT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provenance {
    pub sender_asid: Asid,
    pub organisation_ods: OdsCode,
    pub organisation_name: String,
    pub practitioner_sds_id: String,
    pub practitioner_name: String,
    pub role_code: String,
    pub role_display: String,
    pub trace_id: String,
}

/// A task accepted by a provider, ready to be stored.
#[derive(Clone, PartialEq)]
pub struct NewTask {
    /// Server-assigned resource id (a UUID).
    pub id: String,
    pub version_id: String,
    /// ODS code of the receiving organisation (the tenant).
    pub tenant: OdsCode,
    /// Keys under which a repeat of this request finds this task:
    /// the consumer's identifiers and any `If-None-Exist` identifier.
    pub idempotency_keys: Vec<BusinessIdentifier>,
    /// The provider-generated `urn:uuid:` business identifier value.
    pub provider_identifier: String,
    pub patient_id: String,
    pub nhs_number: NhsNumber,
    pub patient_name: String,
    pub source_org_id: String,
    pub task_type: TaskType,
    pub text: String,
    pub received_at: Timestamp,
    pub provenance: Provenance,
    /// The complete stored Order (FHIR JSON) as it is returned to callers.
    pub resource: serde_json::Value,
}

/// By hand: a task carries a patient's name and NHS number, the clinical
/// text and the sender's name, none of which may reach a log through `{:?}`.
impl std::fmt::Debug for NewTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewTask")
            .field("id", &self.id)
            .field("version_id", &self.version_id)
            .field("tenant", &self.tenant)
            .field("provider_identifier", &self.provider_identifier)
            .field("task_type", &self.task_type)
            .field("received_at", &self.received_at)
            .field("sender_asid", &self.provenance.sender_asid)
            .field("trace_id", &self.provenance.trace_id)
            .finish_non_exhaustive()
    }
}

/// A task as the receiving organisation holds it: what was delivered, and
/// where it stands now.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedTask {
    pub task: NewTask,
    pub life: Lifecycle,
}

impl ReceivedTask {
    /// A task as it is on its delivery (the 201): `received`, version 1, no owner.
    pub fn delivered(task: NewTask) -> Self {
        Self {
            task,
            life: Lifecycle::delivered(),
        }
    }
}

impl ReceivedTask {
    /// The delivery as the first entry of the task's timeline: version 1,
    /// `received`, by the sender's practitioner. The store keeps only the
    /// changes after it; this one is the task's own provenance.
    pub fn delivery_entry(&self) -> TimelineEntry {
        let p = &self.task.provenance;
        TimelineEntry {
            version: 1,
            at: self.task.received_at,
            by: Actor {
                sds_user_id: p.practitioner_sds_id.clone(),
                name: p.practitioner_name.clone(),
                role_code: p.role_code.clone(),
                role_display: p.role_display.clone(),
                organisation: p.organisation_ods.clone(),
            },
            party: Party::Sender,
            state: TaskState::Received,
            owner: None,
            note: None,
        }
    }
}

/// What was delivered never changes after delivery, so readers reach it
/// through the received task as they did before it had a life.
impl std::ops::Deref for ReceivedTask {
    type Target = NewTask;

    fn deref(&self) -> &NewTask {
        &self.task
    }
}

/// A task has just arrived in an organisation's inbox (for live views).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedEvent {
    /// ODS code of the receiving organisation.
    pub tenant: OdsCode,
    pub task_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_ids_and_never_the_patient_or_the_text() {
        let task = NewTask {
            id: "task-1".into(),
            version_id: "1".into(),
            tenant: OdsCode::parse("GPC001").unwrap(),
            idempotency_keys: Vec::new(),
            provider_identifier: "urn:uuid:p".into(),
            patient_id: "2".into(),
            nhs_number: NhsNumber::parse("9476719931").unwrap(),
            patient_name: "Mrs Minnie DAWES".into(),
            source_org_id: "5".into(),
            task_type: TaskType::ActionNeeded,
            text: "Please review the warfarin dose".into(),
            received_at: Timestamp::UNIX_EPOCH,
            provenance: Provenance {
                sender_asid: Asid::parse("200000000370").unwrap(),
                organisation_ods: OdsCode::parse("Y00001").unwrap(),
                organisation_name: "Hub".into(),
                practitioner_sds_id: "G11111116".into(),
                practitioner_name: "Mrs Melissa PARSONS".into(),
                role_code: "R0260".into(),
                role_display: "General Medical Practitioner".into(),
                trace_id: "trace-1".into(),
            },
            resource: serde_json::json!({"text": "Please review the warfarin dose"}),
        };
        let shown = format!("{:?}", ReceivedTask::delivered(task));
        assert!(
            shown.contains("task-1") && shown.contains("trace-1"),
            "{shown}"
        );
        for secret in ["DAWES", "9476719931", "warfarin", "PARSONS"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
    }
}
