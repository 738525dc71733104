//! `gpc-tasks backup`: a consistent copy of the SQLite files while a server
//! writes to them, through SQLite's online backup API. The whole copy is one
//! step, so it reads one snapshot under one read transaction: in WAL mode
//! that never blocks the server's writer, and nothing the writer commits
//! meanwhile can make the copy start over (as it would, copied a few pages
//! at a time, under a steady stream of creates).

use super::{DATABASE_FILE, db_err};
use crate::StoreError;
use crate::outbox::OUTBOX_FILE;
use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Tries of a step that found the source busy (it is recovering its WAL),
/// and the pause between them: about five seconds in all.
const BUSY_TRIES: u32 = 100;
const BUSY_PAUSE: Duration = Duration::from_millis(50);

/// One file written by [`backup_data_dir`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackedUp {
    /// The file of the data directory that was copied.
    pub source: PathBuf,
    /// Where its copy is.
    pub copy: PathBuf,
    pub bytes: u64,
}

/// Copies the task store of `data_dir` (`gpc-tasks.db`) to `to` and, when
/// the directory has one, its outbox (`outbox.db`) to `to` with `.outbox`
/// added to its name. Each copy is consistent on its own and checked
/// (`PRAGMA quick_check`) before it takes its place; a failed copy leaves
/// whatever was at its path before.
pub fn backup_data_dir(data_dir: &Path, to: &Path) -> Result<Vec<BackedUp>, StoreError> {
    let store = data_dir.join(DATABASE_FILE);
    if !store.is_file() {
        return Err(StoreError::Other(format!(
            "{} holds no task store ({DATABASE_FILE})",
            data_dir.display()
        )));
    }
    let mut written = vec![backup_file(&store, to)?];
    let outbox = data_dir.join(OUTBOX_FILE);
    if outbox.is_file() {
        written.push(backup_file(&outbox, &outbox_copy(to))?);
    }
    Ok(written)
}

/// Where [`backup_data_dir`] puts the outbox's copy.
pub fn outbox_copy(to: &Path) -> PathBuf {
    let mut name = to.as_os_str().to_owned();
    name.push(".outbox");
    PathBuf::from(name)
}

/// One database file copied to `copy`, through a temporary file beside it.
fn backup_file(source: &Path, copy: &Path) -> Result<BackedUp, StoreError> {
    let mut partial = copy.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let result = copy_to(source, &partial).and_then(|()| {
        std::fs::rename(&partial, copy).map_err(|e| {
            StoreError::Other(format!("cannot move the copy to {}: {e}", copy.display()))
        })
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result?;
    sync_parent(copy);
    let bytes = std::fs::metadata(copy).map(|m| m.len()).unwrap_or(0);
    Ok(BackedUp {
        source: source.to_owned(),
        copy: copy.to_owned(),
        bytes,
    })
}

fn copy_to(source: &Path, partial: &Path) -> Result<(), StoreError> {
    // Read-write but never created: a read-only connection cannot open a WAL
    // file whose server has stopped (it may need to recover the WAL).
    let from = Connection::open_with_flags(
        source,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(db_err)?;
    from.busy_timeout(Duration::from_secs(5)).map_err(db_err)?;
    let _ = std::fs::remove_file(partial);
    let mut to = Connection::open(partial)
        .map_err(|e| StoreError::Other(format!("cannot create {}: {e}", partial.display())))?;
    {
        let backup = Backup::new(&from, &mut to).map_err(db_err)?;
        let mut tries = 0;
        loop {
            match backup.step(-1).map_err(db_err)? {
                StepResult::Done => break,
                StepResult::More => {}
                StepResult::Busy | StepResult::Locked if tries < BUSY_TRIES => {
                    tries += 1;
                    std::thread::sleep(BUSY_PAUSE);
                }
                StepResult::Busy | StepResult::Locked => {
                    return Err(StoreError::Busy(format!(
                        "{} stayed locked; try again",
                        source.display()
                    )));
                }
                // A step result added by a later SQLite: not one to guess at.
                _ => {
                    return Err(StoreError::Other(
                        "the backup step ended in an unknown state".into(),
                    ));
                }
            }
        }
    }
    // Read back as a server would open it, before it replaces anything. Its
    // WAL, if the check made one, is folded in when `to` closes.
    let check: String = to
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .map_err(db_err)?;
    if check != "ok" {
        return Err(StoreError::Corrupt(format!(
            "the copy of {} failed its check: {check}",
            source.display()
        )));
    }
    to.close().map_err(|(_, e)| db_err(e))
}

/// The rename is durable once the directory is synced; best effort, as
/// the copy itself is already on disk.
fn sync_parent(path: &Path) {
    if let Some(dir) = path.parent()
        && let Ok(dir) = std::fs::File::open(if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        })
    {
        let _ = dir.sync_all();
    }
}
