//! Reference data imported while the server runs (reference-data.md §2: "a
//! running server uses the new data without a restart ... every instance").
//! Every write of reference data raises a counter in the store in the same
//! transaction; each server polls it and, when it moved, reads the index
//! again and swaps it in. Polling rather than a notification, because it
//! works the same for SQLite (another process wrote the file) and for
//! PostgreSQL (another instance, or the `import` command), and costs one
//! indexed read a second.

use crate::state::AppState;
use gpc_domain::NhsNumber;
use gpc_domain::reference::Patient;
use gpc_store::Store;
use std::sync::Arc;
use std::time::Duration;

/// How often the counter is read: well inside "within a few seconds".
pub const POLL: Duration = Duration::from_secs(1);

/// Runs until aborted. A failed read is logged and tried at the next poll;
/// the index in place stays.
pub async fn follow(state: AppState, mut version: i64, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match reload_if_changed(&state, version).await {
            Ok(Some(now)) => version = now,
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "reading imported reference data failed"),
        }
    }
}

/// The new version when the index was replaced.
async fn reload_if_changed(
    state: &AppState,
    version: i64,
) -> Result<Option<i64>, gpc_store::StoreError> {
    let now = state.store.reference_version().await?;
    if now == version {
        return Ok(None);
    }
    let started = std::time::Instant::now();
    let data = state.store.reference_index().await?;
    let organisations = data.organisations.len();
    state.replace_reference(data);
    tracing::info!(
        version = now,
        organisations,
        ms = started.elapsed().as_millis() as u64,
        "reference data reloaded"
    );
    Ok(Some(now))
}

/// PDS over the store, which holds the patients indexed by NHS number.
pub struct StorePatients(pub Arc<dyn Store>);

#[async_trait::async_trait]
impl gpc_directory::PatientSource for StorePatients {
    async fn patient(&self, nhs: &NhsNumber) -> Result<Option<Patient>, String> {
        self.0.patient(nhs).await.map_err(|e| e.to_string())
    }
}
