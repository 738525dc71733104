//! What an operator's tools read, on a listener of its own
//! (`--metrics-listen`), apart from the clients' port so that it can stay
//! on a private address: `GET /metrics` (Prometheus text format), `GET
//! /livez` (the process answers) and `GET /readyz` (the store answers a
//! query). README, Metrics and health, lists every metric.

mod exporter;
pub(crate) mod http_metrics;
pub(crate) mod labels;

use crate::state::AppState;
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;
use std::time::Duration;
use tokio::net::TcpListener;

pub use exporter::{enabled, install_recorder};

/// How long `/readyz` waits for the store before saying it is not ready.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone)]
struct OpsState {
    app: AppState,
    prometheus: PrometheusHandle,
}

/// The operator's routes over `app`'s store and outbox.
fn router(app: AppState, prometheus: PrometheusHandle) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .route("/livez", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .with_state(OpsState { app, prometheus })
}

/// Serves the operator's routes on `listener` until the task is aborted.
pub(crate) fn spawn(
    listener: TcpListener,
    app: AppState,
    prometheus: PrometheusHandle,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let limits = crate::limits::Limits::default();
        let router = router(app, prometheus);
        if let Err(e) =
            crate::connections::serve(listener, router, None, &limits, std::future::pending()).await
        {
            tracing::error!(error = %e, "the metrics listener stopped");
        }
    })
}

/// The gauges read from the database at scrape time (so that they are right
/// whichever instance or command changed it), then everything rendered.
async fn scrape(State(ops): State<OpsState>) -> Response {
    if let Some(outbox) = &ops.app.outbox {
        match outbox.waiting().await {
            Ok(n) => exporter::set_outbox_depth("task", n),
            Err(e) => tracing::warn!(error = %e, "outbox depth not read"),
        }
    }
    match ops.app.store.waiting_updates().await {
        Ok(Some(n)) => exporter::set_outbox_depth("update", n),
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "waiting updates not read"),
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        ops.prometheus.render(),
    )
        .into_response()
}

/// 200 when the store answers a query within [`READY_TIMEOUT`], else 503.
async fn ready(State(ops): State<OpsState>) -> Response {
    // Any tenant will do: the question is whether the query runs.
    let probe = gpc_domain::OdsCode::parse("READYZ");
    let answered = match probe {
        Some(ods) => tokio::time::timeout(READY_TIMEOUT, ops.app.store.count_tasks(&ods)).await,
        None => return (StatusCode::INTERNAL_SERVER_ERROR, "no probe\n").into_response(),
    };
    match answered {
        Ok(Ok(_)) => (StatusCode::OK, "ready\n").into_response(),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "not ready: the store failed a query");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready: the store failed a query\n",
            )
                .into_response()
        }
        Err(_) => {
            tracing::warn!("not ready: the store did not answer in time");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "not ready: the store did not answer in time\n",
            )
                .into_response()
        }
    }
}
