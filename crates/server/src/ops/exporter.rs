//! The process's one Prometheus recorder. `metrics` has one global recorder
//! per process, so every server a process binds with metrics on shares it:
//! the counts are the process's. Without one (no `--metrics-listen`) every
//! `metrics` macro is a no-op.

use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::Duration;

/// Seconds: from a cached read (well under a millisecond) to the SSP's
/// default provider timeout (10 s).
const SECONDS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Operations per commit, up to the SQLite writer's cap of 512.
const BATCH: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];

/// Samples wait in the recorder until a scrape or this upkeep takes them;
/// without it an unscraped process would keep every sample.
const UPKEEP: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();

/// Installs the recorder the first time (with the histograms' buckets and
/// every metric's description), and returns its handle.
pub fn install_recorder() -> Result<PrometheusHandle, String> {
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS)
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Full("gpc_store_batch_size".into()), BATCH)
                })
                .map_err(|e| format!("cannot configure the metrics: {e}"))?
                .install_recorder()
                .map_err(|e| format!("cannot install the metrics recorder: {e}"))?;
            describe();
            let upkeep = handle.clone();
            std::thread::Builder::new()
                .name("gpc-metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(UPKEEP);
                        upkeep.run_upkeep();
                    }
                })
                .map_err(|e| format!("cannot start the metrics upkeep: {e}"))?;
            Ok(handle)
        })
        .clone()
}

/// `gpc_outbox_depth{kind}`, read from the database at scrape time.
pub(super) fn set_outbox_depth(kind: &'static str, waiting: u64) {
    // Precision lost only above 2^53 waiting items.
    #[allow(clippy::cast_precision_loss)]
    metrics::gauge!("gpc_outbox_depth", "kind" => kind).set(waiting as f64);
}

/// The HELP lines; README, Metrics and health, says the same.
fn describe() {
    describe_counter!(
        "gpc_http_requests_total",
        "HTTP requests answered, by route template, method and status"
    );
    describe_histogram!(
        "gpc_http_request_duration_seconds",
        Unit::Seconds,
        "Time to the response head, by route template and method"
    );
    describe_counter!(
        "gpc_provider_creates_total",
        "POST /Order requests to the provider, by outcome (created, duplicate or the error code)"
    );
    describe_counter!(
        "gpc_ssp_refusals_total",
        "Requests the SSP refused, by refusal code"
    );
    describe_counter!(
        "gpc_ssp_forwards_total",
        "Requests the SSP forwarded, by the provider's status"
    );
    describe_gauge!(
        "gpc_outbox_depth",
        "Waiting to be sent: kind=task (sent tasks and cancellations), kind=update (updates of received tasks for their senders)"
    );
    describe_counter!(
        "gpc_deliveries_total",
        "Finished delivery attempts of sent tasks, by outcome"
    );
    describe_counter!(
        "gpc_task_transitions_total",
        "Committed changes of a received task's state, by from and to state"
    );
    describe_histogram!(
        "gpc_store_batch_size",
        Unit::Count,
        "Operations committed in one store transaction (group commit)"
    );
    describe_histogram!(
        "gpc_store_commit_duration_seconds",
        Unit::Seconds,
        "Time of one group commit, from its start to the end of its commit (fsync included)"
    );
}

/// Whether this process records metrics (a recorder is installed).
pub fn enabled() -> bool {
    HANDLE.get().is_some_and(Result::is_ok)
}
