//! Received tasks: the stored Order as JSON, plus columns for what is
//! searched and shown, and where the task stands in its life.

use super::{Cell, RowReader, corrupt, json_err, to_ns};
use crate::StoreError;
use gpc_domain::lifecycle::{Lifecycle, TaskState};
use gpc_domain::task::{BusinessIdentifier, NewTask, Provenance, ReceivedTask, TaskType};

/// The task columns, in the order of `TaskRow::cells` and `decode`. A macro
/// so that queries are literals, built once at compile time.
macro_rules! task_columns {
    () => {
        "id, version_id, tenant, sender_asid, idempotency_keys, provider_identifier, patient_id, \
         nhs_number, patient_name, source_org_id, task_type, text, received_at, sender_ods, \
         sender_name, practitioner_sds_id, practitioner_name, role_code, role_display, trace_id, \
         resource, state, version, owner_sds_id, owner_name"
    };
}
pub(crate) use task_columns;

/// How many columns `task_columns!` names.
pub(crate) const TASK_COLUMN_COUNT: usize = 25;

/// A task with its text columns already encoded, so that the JSON work is
/// done by the caller's thread and not by a single writer or a held
/// connection.
pub(crate) struct TaskRow {
    pub task: ReceivedTask,
    pub received_ns: i64,
    pub keys_json: String,
    pub resource_json: String,
    nhs_number: String,
}

impl TaskRow {
    pub fn new(task: NewTask) -> Result<Self, StoreError> {
        let resource_json = serde_json::to_string(&task.resource).map_err(json_err)?;
        Self::with_json(task, resource_json)
    }

    /// `resource_json` is `task.resource` already serialised. A new task is
    /// stored as delivered.
    pub fn with_json(task: NewTask, resource_json: String) -> Result<Self, StoreError> {
        let keys: Vec<[&str; 2]> = task
            .idempotency_keys
            .iter()
            .map(|k| [k.system.as_str(), k.value.as_str()])
            .collect();
        let keys_json = serde_json::to_string(&keys).map_err(json_err)?;
        Ok(Self {
            received_ns: to_ns(task.received_at)?,
            nhs_number: task.nhs_number.as_digits(),
            task: ReceivedTask::delivered(task),
            keys_json,
            resource_json,
        })
    }

    /// The values of `task_columns!`, in its order.
    pub fn cells(&self) -> [Cell<'_>; TASK_COLUMN_COUNT] {
        let t = &self.task.task;
        let p = &t.provenance;
        let life = &self.task.life;
        let owner = life.owner.as_ref();
        [
            Cell::Text(&t.id),
            Cell::Text(&t.version_id),
            Cell::Text(t.tenant.as_str()),
            Cell::Text(p.sender_asid.as_str()),
            Cell::Text(&self.keys_json),
            Cell::Text(&t.provider_identifier),
            Cell::Text(&t.patient_id),
            Cell::Text(&self.nhs_number),
            Cell::Text(&t.patient_name),
            Cell::Text(&t.source_org_id),
            Cell::Text(t.task_type.code()),
            Cell::Text(&t.text),
            Cell::Int(self.received_ns),
            Cell::Text(p.organisation_ods.as_str()),
            Cell::Text(&p.organisation_name),
            Cell::Text(&p.practitioner_sds_id),
            Cell::Text(&p.practitioner_name),
            Cell::Text(&p.role_code),
            Cell::Text(&p.role_display),
            Cell::Text(&p.trace_id),
            Cell::Text(&self.resource_json),
            Cell::Text(life.state.code()),
            Cell::Int(i64::from(life.version)),
            Cell::opt_text(owner.map(|o| o.sds_user_id.as_str())),
            Cell::opt_text(owner.map(|o| o.name.as_str())),
        ]
    }
}

/// Reads the columns of `task_columns!`, in its order.
pub(crate) fn decode(row: &impl RowReader) -> Result<ReceivedTask, StoreError> {
    let keys: Vec<(String, String)> =
        serde_json::from_str(row.str(4)?).map_err(|_| corrupt("task identifiers"))?;
    let task_type = TaskType::from_code(row.str(10)?).ok_or_else(|| corrupt("task type"))?;
    let resource = serde_json::from_str(row.str(20)?).map_err(|_| corrupt("task resource"))?;
    let state = TaskState::from_code(row.str(21)?).ok_or_else(|| corrupt("task state"))?;
    let owner = super::timeline::owner(row, 23, 24)?;
    let task = NewTask {
        id: row.string(0)?,
        version_id: row.string(1)?,
        tenant: row.ods(2)?,
        idempotency_keys: keys
            .into_iter()
            .map(|(system, value)| BusinessIdentifier { system, value })
            .collect(),
        provider_identifier: row.string(5)?,
        patient_id: row.string(6)?,
        nhs_number: row.nhs_number(7)?,
        patient_name: row.string(8)?,
        source_org_id: row.string(9)?,
        task_type,
        text: row.string(11)?,
        received_at: row.timestamp(12)?,
        provenance: Provenance {
            sender_asid: row.asid(3)?,
            organisation_ods: row.ods(13)?,
            organisation_name: row.string(14)?,
            practitioner_sds_id: row.string(15)?,
            practitioner_name: row.string(16)?,
            role_code: row.string(17)?,
            role_display: row.string(18)?,
            trace_id: row.string(19)?,
        },
        resource,
    };
    Ok(ReceivedTask {
        task,
        life: Lifecycle {
            state,
            version: row.u32(22, "task version")?,
            owner,
        },
    })
}

/// A task's idempotency keys, each once, in the order received.
pub(crate) fn distinct_keys(t: &NewTask) -> Vec<&BusinessIdentifier> {
    let mut keys: Vec<&BusinessIdentifier> = Vec::with_capacity(t.idempotency_keys.len());
    for k in &t.idempotency_keys {
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    keys
}
