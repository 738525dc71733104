//! `gpc-tasks backup --to FILE`: a consistent copy of the SQLite store while
//! the server runs (README, Backup and restore). PostgreSQL has its own
//! tools for that (pg_dump), so this command refuses a database URL.

use crate::DataArgs;
use std::path::Path;

pub async fn backup(data: &DataArgs, to: &Path) -> Result<(), String> {
    if data.database_url.is_some() {
        return Err(
            "backup copies the SQLite files of --data-dir; on PostgreSQL use pg_dump (README, Backup and restore)"
                .into(),
        );
    }
    if to.is_dir() {
        return Err(format!(
            "--to {} is a folder; give the file to write",
            to.display()
        ));
    }
    let (dir, to) = (data.data_dir.clone(), to.to_owned());
    // File work that may take a while on a large store: off the async workers.
    let written = tokio::task::spawn_blocking(move || gpc_store::backup_data_dir(&dir, &to))
        .await
        .map_err(|e| format!("the backup stopped: {e}"))?
        .map_err(|e| format!("backup failed: {e}"))?;
    for file in written {
        println!(
            "{} -> {} ({} bytes)",
            file.source.display(),
            file.copy.display(),
            file.bytes
        );
    }
    Ok(())
}
