//! The sender's outbox: one row per sent task, one per attempt. Statuses are
//! stored as `SendStatus::code`, never as the words people read.

use super::{Cell, RowReader, corrupt, to_ns};
use crate::StoreError;
use gpc_domain::Asid;
use gpc_domain::sent::{Attempt, SendStatus, SentTask};
use gpc_domain::task::TaskType;

/// The sent-task columns, in the order of `SentRow::cells` and `decode_sent`.
macro_rules! sent_columns {
    () => {
        "id, created_at, updated_at, from_ods, from_name, from_asid, user_sds_id, user_id, \
         user_name, user_role_code, user_role_display, nhs_number, patient_name, to_ods, \
         to_name, to_telephone, to_address, endpoint, to_asid, task_type, text, identifier, \
         status, attempts, cycle_attempts, next_attempt_at, provider_task_id, delivered_at, \
         reason"
    };
}
pub(crate) use sent_columns;

/// The attempt columns, in the order of `attempt_cells` and `decode_attempt`.
macro_rules! attempt_columns {
    () => {
        "task_id, number, started_at, finished_at, outcome, http_status, detail"
    };
}
pub(crate) use attempt_columns;

/// A sent task's values, encoded once.
pub(crate) struct SentRow<'a> {
    task: &'a SentTask,
    times: [i64; 2],
    next_attempt_at: Option<i64>,
    delivered_at: Option<i64>,
    nhs_number: String,
}

impl<'a> SentRow<'a> {
    pub fn new(task: &'a SentTask) -> Result<Self, StoreError> {
        Ok(Self {
            times: [to_ns(task.created_at)?, to_ns(task.updated_at)?],
            next_attempt_at: task.next_attempt_at.map(to_ns).transpose()?,
            delivered_at: task.delivered_at.map(to_ns).transpose()?,
            nhs_number: task.nhs_number.as_digits(),
            task,
        })
    }

    /// The values of `sent_columns!`, in its order.
    pub fn cells(&self) -> [Cell<'_>; 29] {
        let t = self.task;
        [
            Cell::Text(&t.id),
            Cell::Int(self.times[0]),
            Cell::Int(self.times[1]),
            Cell::Text(t.from_ods.as_str()),
            Cell::Text(&t.from_name),
            Cell::Text(t.from_asid.as_ref().map_or("", Asid::as_str)),
            Cell::Text(&t.user_sds_id),
            Cell::Text(&t.user_id),
            Cell::Text(&t.user_name),
            Cell::Text(&t.user_role_code),
            Cell::Text(&t.user_role_display),
            Cell::Text(&self.nhs_number),
            Cell::Text(&t.patient_name),
            Cell::Text(t.to_ods.as_str()),
            Cell::Text(&t.to_name),
            Cell::Text(&t.to_telephone),
            Cell::Text(&t.to_address),
            Cell::Text(&t.endpoint),
            Cell::Text(t.to_asid.as_ref().map_or("", Asid::as_str)),
            Cell::Text(t.task_type.code()),
            Cell::Text(&t.text),
            Cell::Text(&t.identifier),
            Cell::Text(t.status.code()),
            Cell::Int(i64::from(t.attempts)),
            Cell::Int(i64::from(t.cycle_attempts)),
            Cell::opt_int(self.next_attempt_at),
            Cell::opt_text(t.provider_task_id.as_deref()),
            Cell::opt_int(self.delivered_at),
            Cell::opt_text(t.reason.as_deref()),
        ]
    }

    /// The values of the state update (`UPDATE sent_tasks SET updated_at = 2,
    /// status = 3, attempts = 4, cycle_attempts = 5, next_attempt_at = 6,
    /// provider_task_id = 7, delivered_at = 8, reason = 9 WHERE id = 1`), in
    /// that placeholder order.
    pub fn state_cells(&self) -> [Cell<'_>; 9] {
        let t = self.task;
        [
            Cell::Text(&t.id),
            Cell::Int(self.times[1]),
            Cell::Text(t.status.code()),
            Cell::Int(i64::from(t.attempts)),
            Cell::Int(i64::from(t.cycle_attempts)),
            Cell::opt_int(self.next_attempt_at),
            Cell::opt_text(t.provider_task_id.as_deref()),
            Cell::opt_int(self.delivered_at),
            Cell::opt_text(t.reason.as_deref()),
        ]
    }
}

/// Reads the columns of `sent_columns!`, in its order.
pub(crate) fn decode_sent(row: &impl RowReader) -> Result<SentTask, StoreError> {
    Ok(SentTask {
        id: row.string(0)?,
        created_at: row.timestamp(1)?,
        updated_at: row.timestamp(2)?,
        from_ods: row.ods(3)?,
        from_name: row.string(4)?,
        from_asid: row.asid_or_empty(5)?,
        user_sds_id: row.string(6)?,
        user_id: row.string(7)?,
        user_name: row.string(8)?,
        user_role_code: row.string(9)?,
        user_role_display: row.string(10)?,
        nhs_number: row.nhs_number(11)?,
        patient_name: row.string(12)?,
        to_ods: row.ods(13)?,
        to_name: row.string(14)?,
        to_telephone: row.string(15)?,
        to_address: row.string(16)?,
        endpoint: row.string(17)?,
        to_asid: row.asid_or_empty(18)?,
        task_type: TaskType::from_code(row.str(19)?).ok_or_else(|| corrupt("task type"))?,
        text: row.string(20)?,
        identifier: row.string(21)?,
        status: SendStatus::from_code(row.str(22)?).ok_or_else(|| corrupt("send status"))?,
        attempts: row.u32(23, "attempt count")?,
        cycle_attempts: row.u32(24, "attempt count")?,
        next_attempt_at: row.opt_timestamp(25)?,
        provider_task_id: row.opt_string(26)?,
        delivered_at: row.opt_timestamp(27)?,
        reason: row.opt_string(28)?,
        remote: None,
        cancellation: None,
    })
}

pub(crate) fn attempt_cells(a: &Attempt) -> Result<[Cell<'_>; 7], StoreError> {
    Ok([
        Cell::Text(&a.task_id),
        Cell::Int(i64::from(a.number)),
        Cell::Int(to_ns(a.started_at)?),
        Cell::Int(to_ns(a.finished_at)?),
        Cell::Text(a.outcome.code()),
        Cell::opt_int(a.http_status.map(i64::from)),
        Cell::Text(&a.detail),
    ])
}

/// Reads the columns of `attempt_columns!`, in its order.
pub(crate) fn decode_attempt(row: &impl RowReader) -> Result<Attempt, StoreError> {
    Ok(Attempt {
        task_id: row.string(0)?,
        number: row.u32(1, "attempt number")?,
        started_at: row.timestamp(2)?,
        finished_at: row.timestamp(3)?,
        outcome: SendStatus::from_code(row.str(4)?).ok_or_else(|| corrupt("attempt outcome"))?,
        http_status: row
            .opt_int(5)?
            .map(|s| u16::try_from(s).map_err(|_| corrupt("attempt HTTP status")))
            .transpose()?,
        detail: row.string(6)?,
    })
}
