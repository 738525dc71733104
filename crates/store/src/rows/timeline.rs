//! A received task's changes after its delivery, one row per version
//! (task-lifecycle.md §1), and the row of the task that a change rewrites.

use super::{Cell, RowReader, corrupt, to_ns};
use crate::StoreError;
use gpc_domain::lifecycle::{Actor, Lifecycle, Owner, Party, TaskState, TimelineEntry};
use gpc_domain::task::ReceivedTask;

/// The timeline columns, in the order of `entry_cells` and `decode_entry`.
macro_rules! timeline_columns {
    () => {
        "tenant, task_id, version, at, party, by_sds_id, by_name, by_role_code, \
         by_role_display, by_ods, state, owner_sds_id, owner_name, note"
    };
}
pub(crate) use timeline_columns;

/// The values of `timeline_columns!` for `entry`, a change of `task`.
pub(crate) fn entry_cells<'a>(
    task: &'a ReceivedTask,
    entry: &'a TimelineEntry,
) -> Result<[Cell<'a>; 14], StoreError> {
    let owner = entry.owner.as_ref();
    Ok([
        Cell::Text(task.tenant.as_str()),
        Cell::Text(&task.id),
        Cell::Int(i64::from(entry.version)),
        Cell::Int(to_ns(entry.at)?),
        Cell::Text(entry.party.code()),
        Cell::Text(&entry.by.sds_user_id),
        Cell::Text(&entry.by.name),
        Cell::Text(&entry.by.role_code),
        Cell::Text(&entry.by.role_display),
        Cell::Text(entry.by.organisation.as_str()),
        Cell::Text(entry.state.code()),
        Cell::opt_text(owner.map(|o| o.sds_user_id.as_str())),
        Cell::opt_text(owner.map(|o| o.name.as_str())),
        Cell::opt_text(entry.note.as_deref()),
    ])
}

/// Reads the columns of `timeline_columns!`, in its order.
pub(crate) fn decode_entry(row: &impl RowReader) -> Result<TimelineEntry, StoreError> {
    Ok(TimelineEntry {
        version: row.u32(2, "timeline version")?,
        at: row.timestamp(3)?,
        party: Party::from_code(row.str(4)?).ok_or_else(|| corrupt("timeline party"))?,
        by: Actor {
            sds_user_id: row.string(5)?,
            name: row.string(6)?,
            role_code: row.string(7)?,
            role_display: row.string(8)?,
            organisation: row.ods(9)?,
        },
        state: TaskState::from_code(row.str(10)?).ok_or_else(|| corrupt("timeline state"))?,
        owner: owner(row, 11, 12)?,
        note: row.opt_string(13)?,
    })
}

/// An owner kept as two columns that are both set or both empty.
pub(crate) fn owner(
    row: &impl RowReader,
    sds_user_id: usize,
    name: usize,
) -> Result<Option<Owner>, StoreError> {
    match (row.opt_string(sds_user_id)?, row.opt_string(name)?) {
        (Some(sds_user_id), Some(name)) => Ok(Some(Owner { sds_user_id, name })),
        (None, None) => Ok(None),
        _ => Err(corrupt("task owner")),
    }
}

/// The values of the task update (`UPDATE tasks SET state = 1, version = 2,
/// owner_sds_id = 3, owner_name = 4 WHERE id = 5 AND version = 6`), in that
/// placeholder order: the version the change was made against must still
/// be there.
pub(crate) fn life_cells<'a>(
    id: &'a str,
    life: &'a Lifecycle,
    previous_version: u32,
) -> [Cell<'a>; 6] {
    let owner = life.owner.as_ref();
    [
        Cell::Text(life.state.code()),
        Cell::Int(i64::from(life.version)),
        Cell::opt_text(owner.map(|o| o.sds_user_id.as_str())),
        Cell::opt_text(owner.map(|o| o.name.as_str())),
        Cell::Text(id),
        Cell::Int(i64::from(previous_version)),
    ]
}
