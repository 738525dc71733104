//! The store's Prometheus metrics (README, Metrics). Each backend's writer
//! calls these after a commit, so that the numbers mean the same on SQLite
//! and PostgreSQL. Without a recorder installed (no `--metrics-listen`) the
//! `metrics` macros do nothing.

use gpc_domain::lifecycle::TaskState;
use std::time::Duration;

/// One committed group: `ops` operations (creates, changes, audit records,
/// ...) written in one transaction that took `took` from its start to the
/// end of its commit (fsync included). Call it only for commits that
/// succeeded.
pub fn record_commit(ops: usize, took: Duration) {
    // Precision lost only above 2^53 operations.
    #[allow(clippy::cast_precision_loss)]
    metrics::histogram!("gpc_store_batch_size").record(ops as f64);
    metrics::histogram!("gpc_store_commit_duration_seconds").record(took.as_secs_f64());
}

/// A committed change of a received task that moved it from one state to
/// another (an assignment or a note, which keep the state, is not counted).
pub fn record_transition(from: TaskState, to: TaskState) {
    if from != to {
        metrics::counter!(
            "gpc_task_transitions_total",
            "from" => from.code(),
            "to" => to.code()
        )
        .increment(1);
    }
}
