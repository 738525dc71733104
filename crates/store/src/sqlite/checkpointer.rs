//! Background checkpoints: copying the WAL back into the database file is
//! the largest part of a commit when the writer does it itself, and it stalls
//! every waiter of that batch. A second connection does it instead, after
//! commits; the writer's own automatic checkpoint remains, at a higher
//! threshold, to finish the tail so the WAL can restart from its beginning.

use super::db_err;
use crate::StoreError;
use rusqlite::{Connection, OpenFlags};
use std::path::Path;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Between two checkpoints, so that a page rewritten by many commits is
/// copied once rather than once per commit. Short, because a checkpoint's
/// sync of the database file holds up the writer's next WAL sync for about
/// as long as the checkpoint took to write. At a fixed 5,000 creates/s right
/// after a saturating run, bench/run's fixed-rate run measured p99 ≈ 10 ms
/// with 10 ms here and ≈ 5.5 ms with 5 ms (50 ms: ≈ 10–30 ms), for the same
/// throughput within noise.
const MIN_INTERVAL: Duration = Duration::from_millis(5);

pub(super) struct Checkpointer {
    wake: Option<mpsc::SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    pub fn spawn(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(db_err)?;
        conn.busy_timeout(super::BUSY_TIMEOUT).map_err(db_err)?;
        let (wake, rx) = mpsc::sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("gpc-store-checkpoint".into())
            .spawn(move || run(conn, rx))
            .map_err(|e| StoreError::Other(format!("cannot start the checkpointer: {e}")))?;
        Ok(Self {
            wake: Some(wake),
            thread: Some(thread),
        })
    }

    /// Asks for a checkpoint soon; never blocks, and requests made while one
    /// is pending merge into it.
    pub fn poke(&self) {
        if let Some(wake) = &self.wake {
            let _ = wake.try_send(());
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        drop(self.wake.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(conn: Connection, rx: mpsc::Receiver<()>) {
    while rx.recv().is_ok() {
        // PASSIVE: never waits for, nor blocks, the writer or the readers.
        let result = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(0));
        if let Err(e) = result {
            tracing::warn!(error = %db_err(e), "background checkpoint failed");
        }
        std::thread::sleep(MIN_INTERVAL);
    }
}
