//! The lists of received tasks (task-lifecycle.md §4) as one query shape for
//! both backends: newest first, keyset paged, narrowed by state and owner.

use super::Cell;
use super::task::task_columns;
use gpc_domain::lifecycle::{InboxView, StateFilter};

/// The open states, written as the partial index `tasks_open` names them:
/// both databases use a partial index only for a query that repeats its
/// condition, so the To-do lists seek it instead of reading every task.
pub(crate) const OPEN_CONDITION: &str = "state IN ('received', 'accepted')";

const DONE_CONDITION: &str = "state IN ('completed', 'rejected', 'cancelled')";

/// A query for `view`, and its parameters in placeholder order: the tenant,
/// the limit, then the owner and the page start when there are such.
pub(crate) fn inbox_query<'a>(
    tenant: &'a str,
    view: &'a InboxView,
    limit: i64,
    before: Option<(i64, &'a str)>,
    placeholder: fn(usize) -> String,
) -> (String, Vec<Cell<'a>>) {
    let mut cells = vec![Cell::Text(tenant), Cell::Int(limit)];
    let mut sql = format!(
        concat!("SELECT ", task_columns!(), " FROM tasks WHERE tenant = {}"),
        placeholder(1)
    );
    match view.states {
        StateFilter::All => {}
        StateFilter::Open => sql.push_str(&format!(" AND {OPEN_CONDITION}")),
        StateFilter::Done => sql.push_str(&format!(" AND {DONE_CONDITION}")),
        // A code is one of five constants, never input: it may stand in the text.
        StateFilter::One(state) => sql.push_str(&format!(" AND state = '{}'", state.code())),
    }
    if let Some(owner) = &view.owner {
        cells.push(Cell::Text(owner));
        sql.push_str(&format!(" AND owner_sds_id = {}", placeholder(cells.len())));
    }
    if view.unowned {
        sql.push_str(" AND owner_sds_id IS NULL");
    }
    if let Some((ns, id)) = before {
        cells.push(Cell::Int(ns));
        cells.push(Cell::Text(id));
        // A row value, so that the database seeks its index to the page start.
        sql.push_str(&format!(
            " AND (received_at, id) < ({}, {})",
            placeholder(cells.len() - 1),
            placeholder(cells.len())
        ));
    }
    sql.push_str(&format!(
        " ORDER BY received_at DESC, id DESC LIMIT {}",
        placeholder(2)
    ));
    (sql, cells)
}

#[cfg(test)]
mod tests {
    use super::*;
    use gpc_domain::lifecycle::TaskState;

    fn dollar(n: usize) -> String {
        format!("${n}")
    }

    #[test]
    fn each_view_narrows_the_inbox_with_numbered_parameters() {
        let mine = InboxView {
            states: StateFilter::Open,
            owner: Some("G13579135".into()),
            unowned: false,
        };
        let (sql, cells) = inbox_query("GPC001", &mine, 50, Some((7, "id-7")), dollar);
        assert!(
            sql.ends_with(
                "FROM tasks WHERE tenant = $1 AND state IN ('received', 'accepted') \
                 AND owner_sds_id = $3 AND (received_at, id) < ($4, $5) \
                 ORDER BY received_at DESC, id DESC LIMIT $2"
            ),
            "{sql}"
        );
        assert_eq!(cells.len(), 5);
        let unassigned = InboxView {
            unowned: true,
            ..InboxView::of(StateFilter::Open)
        };
        let (sql, cells) = inbox_query("GPC001", &unassigned, 50, None, dollar);
        assert!(sql.contains("AND owner_sds_id IS NULL ORDER BY"), "{sql}");
        assert_eq!(cells.len(), 2);
        let (sql, _) = inbox_query(
            "GPC001",
            &InboxView::of(StateFilter::One(TaskState::Rejected)),
            50,
            None,
            dollar,
        );
        assert!(sql.contains("AND state = 'rejected' ORDER BY"), "{sql}");
        let (sql, _) = inbox_query("GPC001", &InboxView::all(), 50, None, dollar);
        assert!(sql.contains("tenant = $1 ORDER BY"), "{sql}");
    }
}
