//! A received task's changes after its delivery, one row per version
//! (task-lifecycle.md §1), and the row of the task that a change rewrites.
//! The sender's copy of the recipient's changes (`sent_timeline`) holds the
//! same entry columns.

use super::{Cell, RowReader, corrupt, to_ns};
use crate::StoreError;
use gpc_domain::lifecycle::{Actor, Lifecycle, Owner, Party, TaskState, TimelineEntry};
use gpc_domain::task::ReceivedTask;
use gpc_domain::updates::Wire;

/// The columns of one change, in the order of `entry_cells` and
/// `decode_entry_at`: what both sides' timelines hold.
macro_rules! entry_columns {
    () => {
        "version, at, party, by_sds_id, by_name, by_role_code, by_role_display, by_ods, state, \
         owner_sds_id, owner_name, note"
    };
}
pub(crate) use entry_columns;

/// How many columns `entry_columns!` names.
pub(crate) const ENTRY_COLUMN_COUNT: usize = 12;

/// The timeline columns that are read back, in the order of `decode_entry`.
/// The wire columns (`update_id`, `update_body`) are written with them but
/// read only where a repeat is looked for: a body is kilobytes a timeline
/// page never shows.
macro_rules! timeline_columns {
    () => {
        concat!(
            "tenant, task_id, ",
            $crate::rows::timeline::entry_columns!()
        )
    };
}
pub(crate) use timeline_columns;

/// The columns of a new timeline row, in the order of `timeline_cells`.
macro_rules! timeline_insert_columns {
    () => {
        concat!(
            $crate::rows::timeline::timeline_columns!(),
            ", update_id, update_body"
        )
    };
}
pub(crate) use timeline_insert_columns;

/// The values of `entry_columns!` for `entry`.
pub(crate) fn entry_cells(
    entry: &TimelineEntry,
) -> Result<[Cell<'_>; ENTRY_COLUMN_COUNT], StoreError> {
    let owner = entry.owner.as_ref();
    Ok([
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

/// The values of `timeline_insert_columns!` for `entry`, a change of `task`
/// that came or goes over `wire`: its identifier makes a repeat of an
/// arriving update recognisable, and the body it arrived with answers one.
pub(crate) fn timeline_cells<'a>(
    task: &'a ReceivedTask,
    entry: &'a TimelineEntry,
    wire: &'a Wire,
) -> Result<Vec<Cell<'a>>, StoreError> {
    let body = match wire {
        Wire::Outgoing { .. } => Cell::Null,
        Wire::Incoming(received) => Cell::Text(&received.body),
    };
    let mut cells = Vec::with_capacity(ENTRY_COLUMN_COUNT + 4);
    cells.push(Cell::Text(task.tenant.as_str()));
    cells.push(Cell::Text(&task.id));
    cells.extend(entry_cells(entry)?);
    cells.push(Cell::Text(wire.identifier()));
    cells.push(body);
    Ok(cells)
}

/// Reads the columns of `timeline_columns!`, in its order.
pub(crate) fn decode_entry(row: &impl RowReader) -> Result<TimelineEntry, StoreError> {
    decode_entry_at(row, 2)
}

/// Reads the columns of `entry_columns!`, the first of them at `base`.
pub(crate) fn decode_entry_at(
    row: &impl RowReader,
    base: usize,
) -> Result<TimelineEntry, StoreError> {
    Ok(TimelineEntry {
        version: row.u32(base, "timeline version")?,
        at: row.timestamp(base + 1)?,
        party: Party::from_code(row.str(base + 2)?).ok_or_else(|| corrupt("timeline party"))?,
        by: Actor {
            sds_user_id: row.string(base + 3)?,
            name: row.string(base + 4)?,
            role_code: row.string(base + 5)?,
            role_display: row.string(base + 6)?,
            organisation: row.ods(base + 7)?,
        },
        state: TaskState::from_code(row.str(base + 8)?).ok_or_else(|| corrupt("timeline state"))?,
        owner: owner(row, base + 9, base + 10)?,
        note: row.opt_string(base + 11)?,
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

/// The earlier change of this tenant that an arriving update with this
/// identifier made: its task, its entry and the body it arrived with
/// (`update_body` is NULL for a change made here). Parameters: tenant,
/// identifier.
macro_rules! repeat_query {
    ($p1:literal, $p2:literal) => {
        concat!(
            "SELECT task_id, ",
            $crate::rows::timeline::entry_columns!(),
            ", update_body FROM task_timeline WHERE tenant = ",
            $p1,
            " AND update_id = ",
            $p2
        )
    };
}
pub(crate) use repeat_query;

/// What `repeat_query!` found.
pub(crate) struct Earlier {
    pub task_id: String,
    pub entry: TimelineEntry,
    pub body: Option<String>,
}

/// Reads one row of `repeat_query!`.
pub(crate) fn decode_earlier(row: &impl RowReader) -> Result<Earlier, StoreError> {
    Ok(Earlier {
        task_id: row.string(0)?,
        entry: decode_entry_at(row, 1)?,
        body: row.opt_string(1 + ENTRY_COLUMN_COUNT)?,
    })
}

/// An arriving update that reuses the identifier of a change made here is
/// not a repeat of anything: the other side is at fault, and no stored
/// answer exists to give it.
pub(crate) fn not_a_repeat() -> StoreError {
    StoreError::Other("an arriving update reuses the identifier of a change made here".into())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_column_lists_agree_with_their_cells() {
        let count = |list: &str| list.split(", ").count();
        assert_eq!(count(entry_columns!()), ENTRY_COLUMN_COUNT);
        assert_eq!(count(timeline_columns!()), ENTRY_COLUMN_COUNT + 2);
        assert_eq!(count(timeline_insert_columns!()), ENTRY_COLUMN_COUNT + 4);
        assert!(repeat_query!("?1", "?2").ends_with("tenant = ?1 AND update_id = ?2"));
    }
}
