//! What each sub-command does.

use crate::DataArgs;
use gpc_domain::audit::{AuditFilter, SspAuditFilter};
use gpc_server::ServerConfig;
use serde_json::json;
use std::path::Path;

/// Runs one part from its configuration file.
pub async fn serve_part(
    path: &Path,
    parts: gpc_server::Parts,
    log: crate::logging::LogFormat,
) -> Result<(), String> {
    let config = crate::config_file::ConfigFile::read(path)?
        .with_env(|k| std::env::var(k).ok())?
        .server_config(parts)?;
    serve(config, log).await
}

pub async fn serve(config: ServerConfig, log: crate::logging::LogFormat) -> Result<(), String> {
    crate::logging::init(log);
    let data_dir = config.data_dir.clone();
    let stop = stop_signal()?;
    let running = gpc_server::bind(config).await?;
    println!(
        "gpc-tasks {} listening on {}",
        env!("CARGO_PKG_VERSION"),
        running.addr
    );
    println!("data directory: {}", data_dir.display());
    for problem in &running.sender_cert_problems {
        println!("warning: {problem}; sends for it fail until it is added");
    }
    if let Some(addr) = running.metrics_addr {
        println!("metrics: http://{addr}/metrics (health: /livez, /readyz)");
    }
    let url = &running.public_url;
    if running.parts.provider {
        let region = running.state.region.current();
        let root = |org: &gpc_domain::reference::Organisation| {
            println!(
                "  {:<7} {:<45} {url}/{}/DSTU2/1",
                org.ods.as_str(),
                org.name,
                org.ods.as_str()
            );
        };
        println!("provider endpoints (FHIR DSTU2, POST /Order and /OrderResponse):");
        region.tenants().for_each(root);
        // Senders hear back about their tasks at roots of their own
        // (task-lifecycle.md §2), though they receive none.
        let senders: Vec<_> = region
            .organisations()
            .iter()
            .filter(|o| o.has_root() && !o.receives_tasks)
            .collect();
        if !senders.is_empty() {
            println!("task updates only (FHIR DSTU2, POST /OrderResponse):");
            senders.into_iter().for_each(root);
        }
    }
    if running.parts.ssp {
        println!("Spine Security Proxy: {url}/ssp/{{provider endpoint URL}}");
    }
    if running.parts.directory {
        println!("PDS:  {url}/personal-demographics/FHIR/R4/Patient/{{NHS number}}");
        println!("SDS:  {url}/spine-directory/FHIR/R4/Endpoint");
        println!("ODS:  {url}/organisation-directory/FHIR/R4/Organization");
    }
    println!("press Ctrl-C to stop");
    running
        .serve(async move {
            stop.await;
            println!("shutting down");
        })
        .await
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM (what a service manager or a
/// container runtime sends to stop a process). The handlers are in place
/// when this returns, so a signal that comes straight after start-up is a
/// clean stop, not the default kill.
#[cfg(unix)]
fn stop_signal() -> Result<impl Future<Output = ()> + Send + 'static, String> {
    use tokio::signal::unix::{SignalKind, signal};
    let listen = |kind| signal(kind).map_err(|e| format!("cannot listen for signals: {e}"));
    let mut interrupt = listen(SignalKind::interrupt())?;
    let mut terminate = listen(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    })
}

/// Ctrl-C only, where there are no Unix signals.
#[cfg(not(unix))]
fn stop_signal() -> Result<impl Future<Output = ()> + Send + 'static, String> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}

/// Says that a list stopped at `--limit` with more left. With `--json` on
/// stderr, so that stdout stays one JSON object a line.
pub(crate) fn more_than_shown(limit: usize, what: &str, as_json: bool) {
    let line =
        format!("more {what} exist than the {limit} shown (newest first): use --limit to see more");
    if as_json {
        eprintln!("{line}");
    } else {
        println!("{line}");
    }
}

/// A time as people in the UK read it.
pub(crate) fn time(t: jiff::Timestamp) -> String {
    t.to_zoned(gpc_domain::order_rules::london())
        .strftime("%Y-%m-%d %H:%M:%S")
        .to_string()
}

fn parse_since(s: &str) -> Result<jiff::Timestamp, String> {
    if let Ok(t) = s.parse::<jiff::Timestamp>() {
        return Ok(t);
    }
    if let Ok(d) = s.parse::<jiff::civil::Date>() {
        return d
            .to_zoned(gpc_domain::order_rules::london())
            .map(|z| z.timestamp())
            .map_err(|e| e.to_string());
    }
    Err(format!(
        "--since '{s}' is not a time; use RFC 3339 (2026-11-25T09:00:00Z) or a date (2026-11-25)"
    ))
}

pub async fn audit(
    data: &DataArgs,
    org: Option<String>,
    since: Option<String>,
    limit: usize,
    as_json: bool,
) -> Result<(), String> {
    let since = since.as_deref().map(parse_since).transpose()?;
    let store = data.existing_store().await?;
    let records = store
        .audit(AuditFilter {
            tenant: org,
            since,
            limit,
        })
        .await
        .map_err(|e| e.to_string())?;
    for r in records {
        if as_json {
            let line = json!({
                "time": r.time.to_string(),
                "tenant": r.tenant,
                "trace_id": r.trace_id,
                "from_asid": r.from_asid,
                "to_asid": r.to_asid,
                "interaction": r.interaction,
                "method": r.method,
                "path": r.path,
                "practitioner_sds_id": r.practitioner_sds_id,
                "organisation_ods": r.organisation_ods,
                "status": r.status,
                "error_code": r.error_code,
                "task_id": r.task_id,
            });
            println!("{line}");
        } else {
            let dash = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".into());
            println!(
                "{} {} {} {} {} from={} to={} user={} org={} trace={} interaction={} error={} task={}",
                time(r.time),
                r.status,
                r.method,
                r.path,
                if r.tenant.is_empty() { "-" } else { &r.tenant },
                dash(&r.from_asid),
                dash(&r.to_asid),
                dash(&r.practitioner_sds_id),
                dash(&r.organisation_ods),
                dash(&r.trace_id),
                dash(&r.interaction),
                dash(&r.error_code),
                dash(&r.task_id),
            );
        }
    }
    Ok(())
}

pub async fn ssp_audit(
    data: &DataArgs,
    since: Option<String>,
    limit: usize,
    as_json: bool,
) -> Result<(), String> {
    let since = since.as_deref().map(parse_since).transpose()?;
    let store = data.existing_store().await?;
    let records = store
        .ssp_audit(SspAuditFilter { since, limit })
        .await
        .map_err(|e| e.to_string())?;
    let dash = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".into());
    for r in records {
        if as_json {
            let line = json!({
                "time": r.time.to_string(),
                "trace_id": r.trace_id,
                "from_asid": r.from_asid,
                "to_asid": r.to_asid,
                "interaction": r.interaction,
                "method": r.method,
                "target": r.target,
                "status": r.status,
                "duration_us": r.duration_us,
                "refusal": r.refusal,
            });
            println!("{line}");
        } else {
            println!(
                "{} {} {} {} from={} to={} trace={} interaction={} {}us refusal={}",
                time(r.time),
                r.status,
                r.method,
                r.target,
                dash(&r.from_asid),
                dash(&r.to_asid),
                dash(&r.trace_id),
                dash(&r.interaction),
                r.duration_us,
                dash(&r.refusal),
            );
        }
    }
    Ok(())
}

/// Writes the development certificates for the SSP and every demo
/// organisation that has a Spine system.
pub fn certs(out: &Path) -> Result<(), String> {
    let systems: Vec<(String, String)> = gpc_directory::demo_region()
        .organisations
        .into_iter()
        .filter_map(|o| Some((o.ods.as_str().to_owned(), o.asid?.as_str().to_owned())))
        .collect();
    let written = gpc_server::tls::certs::write_development_set(out, &systems)?;
    println!(
        "CA certificate: {}",
        out.join(gpc_server::tls::certs::CA_FILE).display()
    );
    for w in written {
        println!(
            "  {:<7} CN={:<21} {} {}",
            w.name,
            w.common_name,
            w.cert.display(),
            w.key.display()
        );
    }
    println!("development use only: anyone holding these keys can act as these systems");
    Ok(())
}
