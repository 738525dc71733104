//! Background checkpoints: copying the WAL back into the database file is
//! the largest part of a commit when the writer does it itself, and it stalls
//! every waiter of that batch. A second connection does it instead, after
//! commits; the writer's own automatic checkpoint remains, at a higher
//! threshold, to finish the tail so the WAL can restart from its beginning.
//!
//! Under steady writes a background checkpoint almost never completes (the
//! writer appends while it copies), and SQLite syncs the database file only
//! when one does. The pages it copied would then stay dirty in the kernel
//! until the writer's own checkpoint, whose sync had to write them all out
//! while every waiter of that batch waited: 4–10 ms, every ~8,000 WAL pages,
//! measured as the writer's database fsyncs at a fixed 5,000 creates/s. So
//! the checkpointer syncs what it copied itself: the writer's database fsync
//! then took 0.65 ms at the median, and bench/run's p99 at a fixed 5,000
//! creates/s went from 7.2–8.4 ms to 2.5–3.7 ms, throughput within noise.

use super::{PlainHandle, db_err};
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
/// throughput within noise. Since the checkpointer syncs what it copies,
/// 20 ms measured p99 5.7–6.7 ms against 2.9–3.4 ms, and 2 ms no better.
const MIN_INTERVAL: Duration = Duration::from_millis(5);

pub(super) struct Checkpointer {
    wake: Option<mpsc::SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    pub fn spawn(path: &Path, plain: PlainHandle) -> Result<Self, StoreError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(db_err)?;
        conn.busy_timeout(super::BUSY_TIMEOUT).map_err(db_err)?;
        let (wake, rx) = mpsc::sync_channel(1);
        let thread = std::thread::Builder::new()
            .name("gpc-store-checkpoint".into())
            .spawn(move || run(conn, plain, rx))
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

fn run(conn: Connection, plain: PlainHandle, rx: mpsc::Receiver<()>) {
    let mut last = Progress::default();
    while rx.recv().is_ok() {
        // PASSIVE: never waits for, nor blocks, the writer or the readers.
        let result = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
            Ok(Progress {
                wal_frames: r.get(1)?,
                copied: r.get(2)?,
            })
        });
        match result {
            Ok(progress) => {
                if progress.needs_sync_after(last)
                    && let Err(e) = plain.sync_data()
                {
                    tracing::warn!(error = %e, "database file sync after a checkpoint failed");
                }
                last = progress;
            }
            Err(e) => tracing::warn!(error = %db_err(e), "background checkpoint failed"),
        }
        std::thread::sleep(MIN_INTERVAL);
    }
    drop(conn);
    drop(plain);
}

/// What `wal_checkpoint` reports: frames in the WAL, and how many of them are
/// in the database file (−1 each when not in WAL mode).
#[derive(Debug, Clone, Copy, Default)]
struct Progress {
    wal_frames: i64,
    copied: i64,
}

impl Progress {
    /// Whether this checkpoint copied pages since the last one (or the WAL
    /// restarted in between). Its report cannot say whether SQLite synced
    /// them: the frame count is the checkpoint's snapshot, while SQLite
    /// syncs only when nothing was appended meanwhile. Syncing with nothing
    /// dirty is cheap, so every checkpoint that moved is synced; syncing
    /// only every 1,000 frames instead gave a worse p99 (4.0–4.3 ms against
    /// 2.6 ms at a fixed 5,000 creates/s) and no more throughput.
    fn needs_sync_after(self, last: Progress) -> bool {
        let moved = self.copied != last.copied || self.wal_frames < last.wal_frames;
        self.copied > 0 && moved
    }
}

#[cfg(test)]
mod tests {
    use super::Progress;

    fn p(wal_frames: i64, copied: i64) -> Progress {
        Progress { wal_frames, copied }
    }

    #[test]
    fn a_checkpoint_that_copied_pages_is_synced() {
        assert!(p(100, 40).needs_sync_after(p(0, 0)));
        assert!(p(150, 90).needs_sync_after(p(100, 40)));
        assert!(p(150, 150).needs_sync_after(p(100, 100)));
        // The WAL restarted in between and happens to report the same count.
        assert!(p(50, 40).needs_sync_after(p(100, 40)));
    }

    #[test]
    fn an_idle_or_unmoved_checkpoint_is_not() {
        assert!(!p(0, 0).needs_sync_after(p(0, 0)), "nothing in the WAL");
        assert!(
            !p(120, 40).needs_sync_after(p(100, 40)),
            "nothing new copied"
        );
        assert!(!p(-1, -1).needs_sync_after(p(0, 0)), "not in WAL mode");
    }
}
