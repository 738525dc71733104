//! The sender's outbox: one row per sent task, one per attempt, one per
//! change the recipient reported. Statuses are stored as
//! `SendStatus::code`, never as the words people read; the recipient's
//! state as `TaskState::code`, a cancellation's as `UpdateStatus::code`.

use super::timeline::{ENTRY_COLUMN_COUNT, decode_entry_at, entry_cells, owner};
use super::{Cell, RowReader, corrupt, to_ns};
use crate::StoreError;
use gpc_domain::Asid;
use gpc_domain::lifecycle::{Actor, TaskState, TimelineEntry};
use gpc_domain::sent::{Attempt, SendStatus, SentTask};
use gpc_domain::task::TaskType;
use gpc_domain::updates::{Cancellation, ReceivedUpdate, RemoteState, UpdateStatus};

/// The sent-task columns, in the order of `SentRow::cells` and `decode_sent`:
/// the delivery's, then `remote_columns!`, then `cancel_columns!`.
macro_rules! sent_columns {
    () => {
        concat!(
            "id, created_at, updated_at, from_ods, from_name, from_asid, user_sds_id, user_id, \
             user_name, user_role_code, user_role_display, nhs_number, patient_name, to_ods, \
             to_name, to_telephone, to_address, endpoint, to_asid, task_type, text, identifier, \
             status, attempts, cycle_attempts, next_attempt_at, provider_task_id, delivered_at, \
             reason, ",
            $crate::rows::sent::remote_columns!(),
            ", ",
            $crate::rows::sent::cancel_columns!()
        )
    };
}
pub(crate) use sent_columns;

/// Where the recipient's task stands, as last heard: all NULL until delivered.
macro_rules! remote_columns {
    () => {
        "remote_state, remote_version, remote_owner_sds_id, remote_owner_name, remote_at"
    };
}
pub(crate) use remote_columns;

/// The sender's cancellation: all NULL until one is asked for.
macro_rules! cancel_columns {
    () => {
        "cancel_identifier, cancel_reason, cancel_by_sds_id, cancel_by_name, \
         cancel_by_role_code, cancel_by_role_display, cancel_by_ods, cancel_requested_at, \
         cancel_seen_version, cancel_status, cancel_attempts, cancel_next_attempt_at, \
         cancel_http_status, cancel_detail, cancel_finished_at"
    };
}
pub(crate) use cancel_columns;

/// How many columns `sent_columns!` names.
pub(crate) const SENT_COLUMN_COUNT: usize = DELIVERY_COLUMN_COUNT + REMOTE_COUNT + CANCEL_COUNT;
const DELIVERY_COLUMN_COUNT: usize = 29;
const REMOTE_COUNT: usize = 5;
const CANCEL_COUNT: usize = 15;

/// The recipient's task is still open: cancelling it may be asked for
/// (`TaskState::is_final` is false for exactly these codes).
pub(crate) const REMOTE_OPEN: &str =
    "(remote_state IS NULL OR remote_state IN ('received', 'accepted'))";

/// The columns of one change the recipient reported, in the order of
/// `sent_entry_cells`.
macro_rules! sent_timeline_columns {
    () => {
        concat!(
            "sent_task_id, ",
            $crate::rows::timeline::entry_columns!(),
            ", update_id, update_body"
        )
    };
}
pub(crate) use sent_timeline_columns;

/// The entry columns of `sent_timeline`, for `decode_entry_at(row, 0)`.
macro_rules! sent_entry_select {
    () => {
        concat!(
            "SELECT ",
            $crate::rows::timeline::entry_columns!(),
            " FROM sent_timeline WHERE sent_task_id = "
        )
    };
}
pub(crate) use sent_entry_select;

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
    remote_at: Option<i64>,
    cancel_times: [Option<i64>; 3],
}

impl<'a> SentRow<'a> {
    pub fn new(task: &'a SentTask) -> Result<Self, StoreError> {
        let c = task.cancellation.as_ref();
        Ok(Self {
            times: [to_ns(task.created_at)?, to_ns(task.updated_at)?],
            next_attempt_at: task.next_attempt_at.map(to_ns).transpose()?,
            delivered_at: task.delivered_at.map(to_ns).transpose()?,
            nhs_number: task.nhs_number.as_digits(),
            remote_at: task.remote.as_ref().map(|r| to_ns(r.at)).transpose()?,
            cancel_times: [
                c.map(|c| to_ns(c.requested_at)).transpose()?,
                c.and_then(|c| c.next_attempt_at).map(to_ns).transpose()?,
                c.and_then(|c| c.finished_at).map(to_ns).transpose()?,
            ],
            task,
        })
    }

    /// The values of `sent_columns!`, in its order.
    pub fn cells(&self) -> Vec<Cell<'_>> {
        let mut cells = Vec::with_capacity(SENT_COLUMN_COUNT);
        cells.extend(self.delivery_cells());
        cells.extend(self.remote_cells());
        cells.extend(self.cancel_cells());
        cells
    }

    fn delivery_cells(&self) -> [Cell<'_>; DELIVERY_COLUMN_COUNT] {
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

    /// The values of `remote_columns!`, in its order.
    pub fn remote_cells(&self) -> [Cell<'_>; REMOTE_COUNT] {
        let Some(r) = &self.task.remote else {
            return [const { Cell::Null }; REMOTE_COUNT];
        };
        let owner = r.owner.as_ref();
        [
            Cell::Text(r.state.code()),
            Cell::Int(i64::from(r.version)),
            Cell::opt_text(owner.map(|o| o.sds_user_id.as_str())),
            Cell::opt_text(owner.map(|o| o.name.as_str())),
            Cell::opt_int(self.remote_at),
        ]
    }

    /// The values of `cancel_columns!`, in its order.
    pub fn cancel_cells(&self) -> [Cell<'_>; CANCEL_COUNT] {
        let Some(c) = &self.task.cancellation else {
            return [const { Cell::Null }; CANCEL_COUNT];
        };
        let [requested_at, next_attempt_at, finished_at] = self.cancel_times;
        [
            Cell::Text(&c.identifier),
            Cell::Text(&c.reason),
            Cell::Text(&c.by.sds_user_id),
            Cell::Text(&c.by.name),
            Cell::Text(&c.by.role_code),
            Cell::Text(&c.by.role_display),
            Cell::Text(c.by.organisation.as_str()),
            Cell::opt_int(requested_at),
            Cell::Int(i64::from(c.seen_version)),
            Cell::Text(c.status.code()),
            Cell::Int(i64::from(c.attempts)),
            Cell::opt_int(next_attempt_at),
            Cell::opt_int(c.http_status.map(i64::from)),
            Cell::opt_text(c.detail.as_deref()),
            Cell::opt_int(finished_at),
        ]
    }

    /// The values of `state_statement`, in its placeholder order: the id,
    /// the delivery's mutable columns, the remote state and the
    /// cancellation, then `owner`.
    pub fn state_cells(&self, owner: &'a str) -> Vec<Cell<'_>> {
        let mut cells = Vec::with_capacity(10 + REMOTE_COUNT + CANCEL_COUNT);
        cells.extend(self.delivery_state_cells());
        cells.extend(self.remote_cells());
        cells.extend(self.cancel_cells());
        cells.push(Cell::Text(owner));
        cells
    }

    /// The id and the delivery's mutable columns, in the order of
    /// `DELIVERY_STATE` (from placeholder 1).
    fn delivery_state_cells(&self) -> [Cell<'_>; 9] {
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
        remote: decode_remote(row, DELIVERY_COLUMN_COUNT)?,
        cancellation: decode_cancellation(row, DELIVERY_COLUMN_COUNT + REMOTE_COUNT)?,
    })
}

/// Reads `remote_columns!` from `base`: none when the state is NULL.
fn decode_remote(row: &impl RowReader, base: usize) -> Result<Option<RemoteState>, StoreError> {
    let Some(state) = row.opt_str(base)? else {
        return Ok(None);
    };
    let version = row
        .opt_int(base + 1)?
        .ok_or_else(|| corrupt("remote version"))?;
    Ok(Some(RemoteState {
        state: TaskState::from_code(state).ok_or_else(|| corrupt("remote state"))?,
        version: u32::try_from(version).map_err(|_| corrupt("remote version"))?,
        owner: owner(row, base + 2, base + 3)?,
        at: row
            .opt_timestamp(base + 4)?
            .ok_or_else(|| corrupt("remote time"))?,
    }))
}

/// Reads `cancel_columns!` from `base`: none when the identifier is NULL.
fn decode_cancellation(
    row: &impl RowReader,
    base: usize,
) -> Result<Option<Cancellation>, StoreError> {
    let Some(identifier) = row.opt_string(base)? else {
        return Ok(None);
    };
    let text = |i: usize, what: &str| -> Result<String, StoreError> {
        row.opt_string(base + i)?.ok_or_else(|| corrupt(what))
    };
    let int = |i: usize, what: &str| -> Result<u32, StoreError> {
        let n = row.opt_int(base + i)?.ok_or_else(|| corrupt(what))?;
        u32::try_from(n).map_err(|_| corrupt(what))
    };
    let organisation = gpc_domain::OdsCode::parse(&text(6, "cancellation ODS code")?)
        .ok_or_else(|| corrupt("cancellation ODS code"))?;
    Ok(Some(Cancellation {
        identifier,
        reason: text(1, "cancellation reason")?,
        by: Actor {
            sds_user_id: text(2, "cancellation user")?,
            name: text(3, "cancellation user")?,
            role_code: text(4, "cancellation role")?,
            role_display: text(5, "cancellation role")?,
            organisation,
        },
        requested_at: row
            .opt_timestamp(base + 7)?
            .ok_or_else(|| corrupt("cancellation time"))?,
        seen_version: int(8, "cancellation version")?,
        status: UpdateStatus::from_code(&text(9, "cancellation status")?)
            .ok_or_else(|| corrupt("cancellation status"))?,
        attempts: int(10, "cancellation attempts")?,
        next_attempt_at: row.opt_timestamp(base + 11)?,
        http_status: row
            .opt_int(base + 12)?
            .map(|s| u16::try_from(s).map_err(|_| corrupt("cancellation HTTP status")))
            .transpose()?,
        detail: row.opt_string(base + 13)?,
        finished_at: row.opt_timestamp(base + 14)?,
    }))
}

/// `a = p(first), b = p(first + 1), …` for the comma-separated `columns`.
fn assignments(columns: &str, first: usize, p: fn(usize) -> String) -> String {
    columns
        .split(", ")
        .enumerate()
        .map(|(i, c)| format!("{c} = {}", p(first + i)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Writes every mutable column of a task (`SentRow::state_cells`), if
/// `lease_owner` is the last placeholder's. A delivery in flight keeps its
/// lease; any other status releases it.
pub(crate) fn state_statement(p: fn(usize) -> String) -> String {
    let remote_from = 10;
    let cancel_from = remote_from + REMOTE_COUNT;
    let owner = cancel_from + CANCEL_COUNT;
    format!(
        "UPDATE sent_tasks SET updated_at = {p2}, status = {p3}, attempts = {}, \
         cycle_attempts = {}, next_attempt_at = {}, provider_task_id = {}, delivered_at = {}, \
         reason = {}, {}, {}, \
         lease_owner = CASE WHEN {p3} IN ('sending', 'retrying') THEN lease_owner END, \
         lease_until = CASE WHEN {p3} IN ('sending', 'retrying') THEN lease_until END \
         WHERE id = {} AND lease_owner = {}",
        p(4),
        p(5),
        p(6),
        p(7),
        p(8),
        p(9),
        assignments(remote_columns!(), remote_from, p),
        assignments(cancel_columns!(), cancel_from, p),
        p(1),
        p(owner),
        p2 = p(2),
        p3 = p(3),
    )
}

/// The values of `remote_statement`, for the entry `entry` reported: the
/// remote state becomes its state, version, owner and time.
pub(crate) fn remote_entry_cells<'a>(
    id: &'a str,
    entry: &'a TimelineEntry,
) -> Result<[Cell<'a>; 1 + REMOTE_COUNT], StoreError> {
    let owner = entry.owner.as_ref();
    Ok([
        Cell::Text(id),
        Cell::Text(entry.state.code()),
        Cell::Int(i64::from(entry.version)),
        Cell::opt_text(owner.map(|o| o.sds_user_id.as_str())),
        Cell::opt_text(owner.map(|o| o.name.as_str())),
        Cell::Int(to_ns(entry.at)?),
    ])
}

/// Sets the remote state of task `p(1)` (`remote_entry_cells`).
pub(crate) fn remote_statement(p: fn(usize) -> String) -> String {
    format!(
        "UPDATE sent_tasks SET {} WHERE id = {}",
        assignments(remote_columns!(), 2, p),
        p(1)
    )
}

/// The remote state an applied entry leaves.
pub(crate) fn remote_of(entry: &TimelineEntry) -> RemoteState {
    RemoteState {
        state: entry.state,
        version: entry.version,
        owner: entry.owner.clone(),
        at: entry.at,
    }
}

/// Writes the cancellation of task `p(1)` and its `updated_at` (`p(2)`),
/// and releases the lease, if `lease_owner` is the last placeholder's
/// (`cancellation_cells`).
pub(crate) fn cancellation_statement(p: fn(usize) -> String) -> String {
    format!(
        "UPDATE sent_tasks SET updated_at = {}, {}, lease_owner = NULL, lease_until = NULL \
         WHERE id = {} AND lease_owner = {}",
        p(2),
        assignments(cancel_columns!(), 3, p),
        p(1),
        p(3 + CANCEL_COUNT)
    )
}

impl<'a> SentRow<'a> {
    /// The values of `cancellation_statement`, in its placeholder order.
    pub fn cancellation_cells(&self, owner: &'a str) -> Vec<Cell<'_>> {
        let mut cells = Vec::with_capacity(3 + CANCEL_COUNT);
        cells.push(Cell::Text(&self.task.id));
        cells.push(Cell::Int(self.times[1]));
        cells.extend(self.cancel_cells());
        cells.push(Cell::Text(owner));
        cells
    }
}

/// Stores a requested cancellation (`p(1)` the task, `p(2)` the time, then
/// `cancel_columns!`) where one may be asked for: the task delivered, the
/// recipient's task open, no cancellation yet.
pub(crate) fn request_cancel_statement(p: fn(usize) -> String) -> String {
    format!(
        "UPDATE sent_tasks SET updated_at = {}, {} WHERE id = {} AND status = 'delivered' \
         AND {REMOTE_OPEN} AND cancel_identifier IS NULL",
        p(2),
        assignments(cancel_columns!(), 3, p),
        p(1),
    )
}

/// The values of `request_cancel_statement`: `cancellation` as asked for,
/// pending.
pub(crate) fn request_cancel_cells<'a>(
    id: &'a str,
    cancellation: &'a Cancellation,
) -> Result<Vec<Cell<'a>>, StoreError> {
    let c = cancellation;
    Ok(vec![
        Cell::Text(id),
        Cell::Int(to_ns(c.requested_at)?),
        Cell::Text(&c.identifier),
        Cell::Text(&c.reason),
        Cell::Text(&c.by.sds_user_id),
        Cell::Text(&c.by.name),
        Cell::Text(&c.by.role_code),
        Cell::Text(&c.by.role_display),
        Cell::Text(c.by.organisation.as_str()),
        Cell::Int(to_ns(c.requested_at)?),
        Cell::Int(i64::from(c.seen_version)),
        Cell::Text(UpdateStatus::Pending.code()),
        Cell::Int(i64::from(c.attempts)),
        Cell::opt_int(c.next_attempt_at.map(to_ns).transpose()?),
        Cell::opt_int(c.http_status.map(i64::from)),
        Cell::opt_text(c.detail.as_deref()),
        Cell::opt_int(c.finished_at.map(to_ns).transpose()?),
    ])
}

/// The values of `sent_timeline_columns!` for `entry`, reported for sent
/// task `id` in the OrderResponse `received` (none for the answer to this
/// side's cancellation).
pub(crate) fn sent_entry_cells<'a>(
    id: &'a str,
    entry: &'a TimelineEntry,
    received: Option<&'a ReceivedUpdate>,
) -> Result<Vec<Cell<'a>>, StoreError> {
    let mut cells = Vec::with_capacity(ENTRY_COLUMN_COUNT + 3);
    cells.push(Cell::Text(id));
    cells.extend(entry_cells(entry)?);
    cells.push(Cell::opt_text(received.map(|r| r.identifier.as_str())));
    cells.push(Cell::opt_text(received.map(|r| r.body.as_str())));
    Ok(cells)
}

/// Reads the columns of `sent_entry_select!`.
pub(crate) fn decode_sent_entry(row: &impl RowReader) -> Result<TimelineEntry, StoreError> {
    decode_entry_at(row, 0)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_column_lists_agree_with_their_cells() {
        let count = |list: &str| list.split(", ").count();
        assert_eq!(count(sent_columns!()), SENT_COLUMN_COUNT);
        assert_eq!(count(remote_columns!()), REMOTE_COUNT);
        assert_eq!(count(cancel_columns!()), CANCEL_COUNT);
        assert_eq!(count(sent_timeline_columns!()), ENTRY_COLUMN_COUNT + 3);
        let p = |n: usize| format!("?{n}");
        // Every placeholder from 1 to the last is used, once or more.
        for (sql, last) in [
            (state_statement(p), 10 + REMOTE_COUNT + CANCEL_COUNT),
            (remote_statement(p), 1 + REMOTE_COUNT),
            (cancellation_statement(p), 3 + CANCEL_COUNT),
            (request_cancel_statement(p), 2 + CANCEL_COUNT),
        ] {
            for n in 1..=last {
                assert!(
                    sql.contains(&format!("?{n},"))
                        || sql.contains(&format!("?{n} "))
                        || sql.ends_with(&format!("?{n}")),
                    "?{n} missing from {sql}"
                );
            }
            assert!(!sql.contains(&format!("?{}", last + 1)), "{sql}");
        }
    }

    /// The open states named in SQL are the states that are not final.
    #[test]
    fn a_cancellation_is_asked_for_open_tasks_only() {
        for state in TaskState::ALL {
            let named = REMOTE_OPEN.contains(&format!("'{}'", state.code()));
            assert_eq!(named, !state.is_final(), "{state:?}");
        }
    }
}
