//! Read-only connections for the readers. WAL lets them read alongside the
//! writer; each runs on a blocking thread so that a query never stalls the
//! async workers.

use super::{PlainHandle, db_err};
use crate::StoreError;
use rusqlite::{Connection, OpenFlags};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Reads running at once; the rest wait as tasks, not as blocking threads.
/// Since every create reads its patient from the store, 64 creates in
/// flight had the runtime start a thread and open a connection (with its
/// page cache) for each: peak memory under bench/run's load went from 80 to
/// 189 MB. Two cores gain nothing from more than a few at once.
const MAX_RUNNING: usize = 8;

/// Idle connections kept for reuse: one for each read that may run.
const MAX_IDLE: usize = MAX_RUNNING;

pub(super) struct Readers {
    path: PathBuf,
    running: Arc<tokio::sync::Semaphore>,
    idle: Mutex<Vec<Connection>>,
    /// Declared after `idle`, so dropped after the idle connections close; a
    /// connection in use holds an `Arc` of this struct until it is given back.
    _plain: PlainHandle,
}

impl Readers {
    pub fn new(path: PathBuf, plain: PlainHandle) -> Self {
        Self {
            path,
            running: Arc::new(tokio::sync::Semaphore::new(MAX_RUNNING)),
            idle: Mutex::new(Vec::new()),
            _plain: plain,
        }
    }

    pub async fn run<T: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let this = Arc::clone(self);
        let permit = Arc::clone(&self.running)
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Busy("the store's readers have closed".into()))?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let conn = this.take()?;
            let result = f(&conn);
            this.give_back(conn);
            result
        })
        .await
        .map_err(|e| StoreError::Other(format!("store read task failed: {e}")))?
    }

    fn take(&self) -> Result<Connection, StoreError> {
        if let Some(conn) = self.lock().pop() {
            return Ok(conn);
        }
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(db_err)?;
        conn.busy_timeout(super::BUSY_TIMEOUT).map_err(db_err)?;
        conn.set_prepared_statement_cache_capacity(32);
        Ok(conn)
    }

    fn give_back(&self, conn: Connection) {
        let mut idle = self.lock();
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
    }

    /// A panic while holding the lock cannot leave the list inconsistent, so a
    /// poisoned lock is still usable.
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Connection>> {
        self.idle.lock().unwrap_or_else(|p| p.into_inner())
    }
}
