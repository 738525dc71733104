//! Waiting for what a test expects, rather than sleeping and hoping: the
//! probe is asked again and again until it sees the event, and the test
//! fails, saying what it waited for and what it saw last, only after a
//! bound generous enough for a loaded machine.

use std::fmt::Debug;
use std::time::Duration;

/// The bound for things that take a moment on an idle machine (a delivery
/// through a running server, a process starting): many times that, so that
/// a machine busy with other builds does not fail the test.
pub const PATIENCE: Duration = Duration::from_secs(120);

/// Asks `probe` until it answers `Ok`; after `limit`, fails the test with
/// `what` and the probe's last `Err`.
pub async fn wait_for<T, E: Debug>(
    limit: Duration,
    what: &str,
    mut probe: impl AsyncFnMut() -> Result<T, E>,
) -> T {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match probe().await {
            Ok(value) => return value,
            Err(last) => assert!(
                tokio::time::Instant::now() < deadline,
                "gave up after {limit:?} waiting for {what}; last seen: {last:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
