//! A received task's changes on their way to its sender (task-lifecycle.md
//! §3): one `task_updates` row per change the sender hears of, written in
//! the change's transaction, and read back with that change's timeline row,
//! which holds what the update says.

use super::timeline::decode_entry_at;
use super::{Cell, RowReader, corrupt, to_ns};
use crate::StoreError;
use gpc_domain::lifecycle::TimelineEntry;
use gpc_domain::task::ReceivedTask;
use gpc_domain::updates::{OutgoingUpdate, UpdateStatus};

/// The columns of a new update, in the order of `new_update_cells`.
macro_rules! update_insert_columns {
    () => {
        "identifier, tenant, task_id, version, to_ods, to_asid, created_at, status, attempts, \
         next_attempt_at, http_status, detail, finished_at"
    };
}
pub(crate) use update_insert_columns;

/// An update (`u`) with the entry of its change (`l`, the timeline row of
/// the same task and version), in the order of `decode_update`.
macro_rules! update_columns {
    () => {
        "u.identifier, u.tenant, u.task_id, u.to_ods, u.to_asid, u.created_at, u.status, \
         u.attempts, u.next_attempt_at, u.http_status, u.detail, u.finished_at, \
         l.version, l.at, l.party, l.by_sds_id, l.by_name, l.by_role_code, l.by_role_display, \
         l.by_ods, l.state, l.owner_sds_id, l.owner_name, l.note"
    };
}
pub(crate) use update_columns;

/// `update_columns!` from the two tables, joined.
macro_rules! updates_with_entries {
    () => {
        concat!(
            "SELECT ",
            $crate::rows::updates::update_columns!(),
            " FROM task_updates u JOIN task_timeline l \
             ON l.tenant = u.tenant AND l.task_id = u.task_id AND l.version = u.version"
        )
    };
}
pub(crate) use updates_with_entries;

/// The index in `update_columns!` of the entry's first column.
const ENTRY_BASE: usize = 12;

/// Which pending updates may go now (`u` the update, `?1`/`$1` the time):
/// due, not leased (or the lease ran out: its worker died), and the lowest
/// pending version of its task, so that a task's updates leave in version
/// order and a later one never overtakes an earlier one being retried.
/// `pending` is `UpdateStatus::Pending.code()`.
macro_rules! claimable {
    ($now:literal) => {
        concat!(
            "u.status = 'pending' AND u.next_attempt_at <= ",
            $now,
            " AND (u.lease_until IS NULL OR u.lease_until < ",
            $now,
            ") AND ",
            $crate::rows::updates::first_pending!()
        )
    };
}
pub(crate) use claimable;

/// No pending update of the same task has a lower version than `u`.
macro_rules! first_pending {
    () => {
        "NOT EXISTS (SELECT 1 FROM task_updates o WHERE o.tenant = u.tenant \
         AND o.task_id = u.task_id AND o.status = 'pending' AND o.version < u.version)"
    };
}
pub(crate) use first_pending;

/// The order in which due updates are claimed: longest due first (a new
/// update is due when it is made). It leads with `next_attempt_at` so that
/// the claim walks `task_updates_pending` in order and stops at its limit:
/// ordered by `created_at`, each claim sorted every pending row (18 ms
/// per claim of 32 with 10,000 queued, against 1 ms).
macro_rules! claim_order {
    () => {
        "u.next_attempt_at, u.created_at, u.identifier"
    };
}
pub(crate) use claim_order;

/// The values of `update_insert_columns!` for the update that `entry`, a
/// change of `task` made at `at` under `identifier`, sends to the task's
/// sender: pending, no attempt yet, due at once.
pub(crate) fn new_update_cells<'a>(
    task: &'a ReceivedTask,
    entry: &TimelineEntry,
    identifier: &'a str,
    at: jiff::Timestamp,
) -> Result<[Cell<'a>; 13], StoreError> {
    let at = to_ns(at)?;
    let p = &task.provenance;
    Ok([
        Cell::Text(identifier),
        Cell::Text(task.tenant.as_str()),
        Cell::Text(&task.id),
        Cell::Int(i64::from(entry.version)),
        Cell::Text(p.organisation_ods.as_str()),
        Cell::Text(p.sender_asid.as_str()),
        Cell::Int(at),
        Cell::Text(UpdateStatus::Pending.code()),
        Cell::Int(0),
        Cell::Int(at),
        Cell::Null,
        Cell::Null,
        Cell::Null,
    ])
}

/// The values of the finish (`UPDATE task_updates SET status = 1,
/// attempts = 2, next_attempt_at = 3, http_status = 4, detail = 5,
/// finished_at = 6, lease cleared WHERE identifier = 7 AND lease_owner = 8`),
/// in that placeholder order.
pub(crate) fn finish_cells<'a>(
    owner: &'a str,
    update: &'a OutgoingUpdate,
) -> Result<[Cell<'a>; 8], StoreError> {
    Ok([
        Cell::Text(update.status.code()),
        Cell::Int(i64::from(update.attempts)),
        Cell::opt_int(update.next_attempt_at.map(to_ns).transpose()?),
        Cell::opt_int(update.http_status.map(i64::from)),
        Cell::opt_text(update.detail.as_deref()),
        Cell::opt_int(update.finished_at.map(to_ns).transpose()?),
        Cell::Text(&update.identifier),
        Cell::Text(owner),
    ])
}

/// The finish statement, in a backend's placeholders (`p(n)`).
pub(crate) fn finish_statement(p: fn(usize) -> String) -> String {
    format!(
        "UPDATE task_updates SET status = {}, attempts = {}, next_attempt_at = {}, \
         http_status = {}, detail = {}, finished_at = {}, lease_owner = NULL, \
         lease_until = NULL WHERE identifier = {} AND lease_owner = {}",
        p(1),
        p(2),
        p(3),
        p(4),
        p(5),
        p(6),
        p(7),
        p(8)
    )
}

/// Reads the columns of `update_columns!`, in its order.
pub(crate) fn decode_update(row: &impl RowReader) -> Result<OutgoingUpdate, StoreError> {
    Ok(OutgoingUpdate {
        identifier: row.string(0)?,
        tenant: row.ods(1)?,
        task_id: row.string(2)?,
        to_ods: row.ods(3)?,
        to_asid: row.asid(4)?,
        created_at: row.timestamp(5)?,
        status: UpdateStatus::from_code(row.str(6)?).ok_or_else(|| corrupt("update status"))?,
        attempts: row.u32(7, "update attempts")?,
        next_attempt_at: row.opt_timestamp(8)?,
        http_status: row
            .opt_int(9)?
            .map(|s| u16::try_from(s).map_err(|_| corrupt("update HTTP status")))
            .transpose()?,
        detail: row.opt_string(10)?,
        finished_at: row.opt_timestamp(11)?,
        entry: decode_entry_at(row, ENTRY_BASE)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rows::timeline::{ENTRY_COLUMN_COUNT, entry_columns};

    /// The joined list is the update's own columns, then the entry's as
    /// `entry_columns!` names them, so that `decode_entry_at` reads it.
    #[test]
    fn the_joined_columns_end_with_the_entry_columns() {
        let joined: Vec<&str> = update_columns!().split(", ").collect();
        let entry: Vec<String> = entry_columns!()
            .split(", ")
            .map(|c| format!("l.{c}"))
            .collect();
        assert_eq!(joined.len(), ENTRY_BASE + ENTRY_COLUMN_COUNT);
        assert_eq!(joined[ENTRY_BASE..], entry);
        assert_eq!(update_insert_columns!().split(", ").count(), 13);
        assert_eq!(UpdateStatus::Pending.code(), "pending");
    }
}
