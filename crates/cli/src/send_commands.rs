//! The sending side on the command line: send, sent, retry.

use crate::DataArgs;
use crate::commands::time;
use crate::task_commands::entry_json;
use gpc_consumer::{Engine, EngineConfig, SendError, SendRequest, StatusEvent};
use gpc_domain::OdsCode;
use gpc_domain::lifecycle::TimelineEntry;
use gpc_domain::region::RegionIndex;
use gpc_domain::sent::{Attempt, SendStatus, SentTask};
use gpc_domain::task::TaskType;
use gpc_domain::updates::UpdateStatus;
use gpc_server::tls::{SenderCerts, SenderTls};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Where the engine finds the national services and how patient it is.
#[derive(clap::Args, Debug, Clone)]
pub struct NetworkArgs {
    /// The gpc-tasks server hosting the SSP and the directory APIs.
    #[arg(long, default_value = "http://127.0.0.1:8080", env = "GPC_SERVER")]
    pub server: String,
    /// The Spine Security Proxy base (default {server}/ssp).
    #[arg(long, env = "GPC_SSP_URL")]
    pub ssp: Option<String>,
    /// The server hosting the directory APIs (default {server}).
    #[arg(long, env = "GPC_DIRECTORY_URL")]
    pub directory: Option<String>,
    /// Delays before the automatic retries, in milliseconds, comma-separated
    /// (default: the engine's, 2000,4000,8000).
    #[arg(long, env = "GPC_RETRY_DELAYS_MS", value_delimiter = ',')]
    pub retry_delays_ms: Vec<u64>,
    /// Longest wait for one answer, in milliseconds.
    #[arg(long, default_value_t = 15_000, env = "GPC_REQUEST_TIMEOUT_MS")]
    pub request_timeout_ms: u64,
    /// How long a worker owns a task it is delivering, in milliseconds; after
    /// that another process resumes it (default: long enough for one attempt).
    #[arg(long, env = "GPC_LEASE_MS")]
    pub lease_ms: Option<u64>,
    /// The CA to trust for the SSP and the directory (PEM), for HTTPS.
    #[arg(long, env = "GPC_CA")]
    pub ca: Option<PathBuf>,
    /// The sending organisation's certificate (PEM; CN = its ASID, as
    /// `gpc-tasks certs` writes it), for servers that require one.
    #[arg(long, env = "GPC_CLIENT_CERT", requires_all = ["client_key", "ca"])]
    pub client_cert: Option<PathBuf>,
    /// The private key (PEM) of --client-cert.
    #[arg(long, env = "GPC_CLIENT_KEY", requires = "client_cert")]
    pub client_key: Option<PathBuf>,
}

impl NetworkArgs {
    fn tls(&self) -> Option<SenderTls> {
        let certs = match (self.client_cert.clone(), self.client_key.clone()) {
            (Some(cert), Some(key)) => SenderCerts::One { cert, key },
            _ => SenderCerts::None,
        };
        Some(SenderTls {
            ca: self.ca.clone()?,
            certs,
            directory_identity: None,
        })
    }
}

/// The sending side of `serve` (the web UI's engine and the outbox worker).
#[derive(clap::Args, Debug, Clone)]
pub struct ConsumerArgs {
    /// The SSP the engine sends through (default: this server's own).
    #[arg(long, env = "GPC_SSP_URL")]
    pub ssp_url: Option<String>,
    /// The server of the directory APIs the engine asks (default: this server).
    #[arg(long, env = "GPC_DIRECTORY_URL")]
    pub directory_url: Option<String>,
    /// Delays before the automatic retries, in milliseconds, comma-separated
    /// (default: the engine's, 2000,4000,8000).
    #[arg(
        long = "retry-delays-ms",
        env = "GPC_RETRY_DELAYS_MS",
        value_delimiter = ','
    )]
    pub retry_delays_ms: Vec<u64>,
    /// Longest wait for one answer, in milliseconds.
    #[arg(
        long = "request-timeout-ms",
        default_value_t = 15_000,
        env = "GPC_REQUEST_TIMEOUT_MS"
    )]
    pub request_timeout_ms: u64,
    /// The CA the engine trusts for the SSP and the directory (PEM).
    #[arg(long = "ca", env = "GPC_CA")]
    pub ca: Option<PathBuf>,
    /// Folder of `{ODS}.pem` and `{ODS}.key` for every organisation this
    /// server sends for (as `gpc-tasks certs --out` writes them): each
    /// request presents its organisation's certificate.
    #[arg(long, env = "GPC_SENDER_CERTS", requires = "ca")]
    pub sender_certs: Option<PathBuf>,
}

impl ConsumerArgs {
    /// The directory is asked with this server's own certificate (`tls`).
    pub fn config(&self, tls: &crate::spine_args::TlsArgs) -> gpc_server::ConsumerConfig {
        let tls = self.ca.clone().map(|ca| SenderTls {
            ca,
            certs: self
                .sender_certs
                .clone()
                .map_or(SenderCerts::None, SenderCerts::Folder),
            directory_identity: tls.tls_cert.clone().zip(tls.tls_key.clone()),
        });
        gpc_server::ConsumerConfig {
            tls,
            ssp_url: self.ssp_url.clone(),
            directory_url: self.directory_url.clone(),
            retry_delays: self
                .retry_delays_ms
                .iter()
                .map(|ms| Duration::from_millis(*ms))
                .collect(),
            request_timeout: Some(Duration::from_millis(self.request_timeout_ms)),
        }
    }
}

/// Exit codes of send and retry.
pub const EXIT_REJECTED: u8 = 2;
pub const EXIT_FAILED: u8 = 3;

pub fn parse_task_type(s: &str) -> Result<TaskType, String> {
    match s.to_ascii_lowercase().as_str() {
        "action" | "task" | "2" => Ok(TaskType::ActionNeeded),
        "info" | "information" | "notification" | "1" => Ok(TaskType::InformationOnly),
        _ => Err(format!(
            "'{s}' is not a task type; use 'action' (action needed) or 'info' (information only)"
        )),
    }
}

/// The engine of this process, on the outbox of `data_dir`.
pub async fn engine(data: &DataArgs, net: &NetworkArgs) -> Result<Engine, String> {
    let outbox = data.outbox().await?;
    let store = data.store().await?;
    let mut users = store.reference_index().await.map_err(|e| e.to_string())?;
    // A sender's own folder that was never loaded (`send --data-dir` apart
    // from the server's) knows its users from the demo region, as before,
    // without writing it there: only `serve` and `import` write reference data.
    if users.is_empty() {
        users = gpc_directory::demo_region();
    }
    let reference = RegionIndex::shared(users);
    let server = net.server.trim_end_matches('/');
    let directory_server = net.directory.as_deref().unwrap_or(server);
    let tls = net.tls();
    if let Some(tls) = &tls {
        tls.check()?;
    }
    let directory = gpc_server::http_directory(directory_server, tls.as_ref())?;
    let ssp = net.ssp.clone().unwrap_or_else(|| format!("{server}/ssp"));
    let mut config = EngineConfig::new(&ssp, server);
    // Unset, the engine's own delays stand: one default, in one place.
    if !net.retry_delays_ms.is_empty() {
        config.retry_delays = net
            .retry_delays_ms
            .iter()
            .map(|ms| Duration::from_millis(*ms))
            .collect();
    }
    config.request_timeout = Duration::from_millis(net.request_timeout_ms);
    config.tls = tls.map(|tls| Arc::new(tls) as Arc<dyn gpc_consumer::SenderTls>);
    config.lease = match net.lease_ms {
        Some(ms) => Duration::from_millis(ms),
        None => config.request_timeout * 4 + Duration::from_secs(5),
    };
    Engine::new(config, Arc::new(directory), outbox, reference)
}

fn event_json(e: &StatusEvent) -> Value {
    json!({
        "task_id": e.task_id,
        "status": e.status.label(),
        "at": e.at.to_string(),
        "attempt": e.attempt,
        "next_attempt_at": e.next_attempt_at.map(|t| t.to_string()),
        "provider_task_id": e.provider_task_id,
        "detail": e.detail,
    })
}

/// A sent task as scripts read it: its delivery (`status`, attempts) and,
/// once delivered, the recipient's `state`, `version`, owner and the whole
/// `timeline` (§4).
pub fn task_json(t: &SentTask, attempts: &[Attempt], changes: &[TimelineEntry]) -> Value {
    let remote = t.remote.as_ref();
    let owner = remote.and_then(|r| r.owner.as_ref());
    let timeline: Vec<Value> = t
        .delivery_entry()
        .iter()
        .chain(changes)
        .map(entry_json)
        .collect();
    let cancellation = t.cancellation.as_ref().map(|c| {
        json!({
            "status": c.status.code(),
            "requested_at": c.requested_at.to_string(),
            "by_sds_id": c.by.sds_user_id,
            "reason": c.reason,
            "attempts": c.attempts,
            "next_attempt_at": c.next_attempt_at.map(|t| t.to_string()),
            "http_status": c.http_status,
            "detail": c.detail,
        })
    });
    json!({
        "id": t.id,
        "created_at": t.created_at.to_string(),
        "status": t.status.label(),
        "state": remote.map(|r| r.state.code()),
        "version": remote.map(|r| r.version),
        "owner_sds_id": owner.map(|o| o.sds_user_id.as_str()),
        "owner_name": owner.map(|o| o.name.as_str()),
        "label": t.state_label(last_note(changes)),
        "timeline": timeline,
        "cancellation": cancellation,
        "from_ods": t.from_ods.as_str(),
        "from_name": t.from_name,
        "user_sds_id": t.user_sds_id,
        "user_name": t.user_name,
        "nhs_number": t.nhs_number.as_digits(),
        "patient_name": t.patient_name,
        "to_ods": t.to_ods.as_str(),
        "to_name": t.to_name,
        "to_telephone": t.to_telephone,
        "type": t.task_type.display(),
        "text": t.text,
        "identifier": t.identifier,
        "attempts": t.attempts,
        "next_attempt_at": t.next_attempt_at.map(|t| t.to_string()),
        "provider_task_id": t.provider_task_id,
        "delivered_at": t.delivered_at.map(|t| t.to_string()),
        "reason": t.reason,
        "attempt_log": attempts.iter().map(|a| json!({
            "number": a.number,
            "started_at": a.started_at.to_string(),
            "finished_at": a.finished_at.to_string(),
            "outcome": a.outcome.label(),
            "http_status": a.http_status,
            "detail": a.detail,
        })).collect::<Vec<_>>(),
    })
}

/// The reason or note of the latest change, for "Rejected: reason".
fn last_note(changes: &[TimelineEntry]) -> Option<&str> {
    changes.last().and_then(|e| e.note.as_deref())
}

fn print_event(e: &StatusEvent, as_json: bool) {
    if as_json {
        println!("{}", event_json(e));
        return;
    }
    let detail = e.detail.as_deref().unwrap_or("");
    match (e.status, e.next_attempt_at) {
        (SendStatus::Failed, Some(next)) => println!(
            "{:<10} attempt {} failed: {detail} Retrying at {}.",
            "Failed",
            e.attempt,
            time(next)
        ),
        (SendStatus::Delivered, _) => println!(
            "{:<10} at {}, recipient's task id {}",
            "Delivered",
            time(e.at),
            e.provider_task_id.as_deref().unwrap_or("-")
        ),
        (status, _) => println!("{:<10} {detail}", status.label()),
    }
}

/// The final state of a task: no automatic attempt is pending.
fn settled(e: &StatusEvent) -> bool {
    e.status.is_final() || (e.status == SendStatus::Failed && e.next_attempt_at.is_none())
}

fn exit_code(status: SendStatus) -> ExitCode {
    match status {
        SendStatus::Delivered => ExitCode::SUCCESS,
        SendStatus::Rejected | SendStatus::NoRoute => ExitCode::from(EXIT_REJECTED),
        _ => ExitCode::from(EXIT_FAILED),
    }
}

/// Follows one task's events until it settles, printing each.
async fn follow(
    engine: &Engine,
    mut events: tokio::sync::broadcast::Receiver<StatusEvent>,
    first: &SentTask,
    as_json: bool,
) -> Result<ExitCode, String> {
    // A settled task (no route) has no more events coming; otherwise the
    // subscription already holds the first one.
    let first_event = StatusEvent::of(first, None);
    if settled(&first_event) {
        print_event(&first_event, as_json);
        return Ok(finish(engine, &first.id, as_json).await);
    }
    let worker = engine.spawn_worker();
    loop {
        match events.recv().await {
            Ok(e) if e.task_id == first.id => {
                print_event(&e, as_json);
                if settled(&e) {
                    break;
                }
            }
            Ok(_) => {}
            // Missed events are only printing; the outbox has the truth.
            Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
        }
    }
    worker.abort();
    Ok(finish(engine, &first.id, as_json).await)
}

async fn finish(engine: &Engine, id: &str, as_json: bool) -> ExitCode {
    let Ok(Some(task)) = engine.outbox().get(id).await else {
        eprintln!("error: the task {id} is no longer in the outbox");
        return ExitCode::FAILURE;
    };
    if !as_json {
        match task.status {
            SendStatus::Delivered => {}
            SendStatus::Failed => println!(
                "\nNot delivered. Retry with `gpc-tasks retry {}`, or telephone {} on {}.",
                task.id, task.to_name, task.to_telephone
            ),
            _ => println!("\n{}", task.reason.as_deref().unwrap_or("")),
        }
    }
    exit_code(task.status)
}

pub struct SendArgs {
    pub user: String,
    pub patient: String,
    pub task_type: TaskType,
    pub text: String,
    pub to: Option<String>,
    pub from: Option<String>,
    pub json: bool,
}

fn input_error(e: SendError) -> String {
    e.to_string()
}

pub async fn send(data: &DataArgs, net: &NetworkArgs, args: SendArgs) -> Result<ExitCode, String> {
    let engine = engine(data, net).await?;
    let events = engine.subscribe();
    let sending = engine
        .send(SendRequest {
            user: gpc_consumer::Who::Sds(args.user),
            from: args.from,
            patient: args.patient,
            task_type: args.task_type,
            text: args.text,
            to: args.to,
        })
        .await;
    let task = match sending {
        Ok(task) => task,
        // Refused before sending (the patient is deceased): as a rejection.
        Err(SendError::Refused(why)) => {
            eprintln!("error: the task was not sent: {why}");
            return Ok(ExitCode::from(EXIT_REJECTED));
        }
        Err(e) => return Err(input_error(e)),
    };
    if !args.json {
        let nhs = task.nhs_number.formatted();
        println!("Patient:   {} ({nhs})", task.patient_name);
        println!(
            "From:      {} ({}), {} ({})",
            task.user_name, task.user_role_display, task.from_name, task.from_ods
        );
        println!(
            "To:        {} ({}), telephone {}",
            task.to_name, task.to_ods, task.to_telephone
        );
        println!("Type:      {}", task.task_type.display());
        println!("Task:      {}\n", task.id);
    }
    follow(&engine, events, &task, args.json).await
}

pub async fn retry(
    data: &DataArgs,
    net: &NetworkArgs,
    id: &str,
    as_json: bool,
) -> Result<ExitCode, String> {
    let engine = engine(data, net).await?;
    let events = engine.subscribe();
    let task = engine.retry(id).await.map_err(input_error)?;
    follow(&engine, events, &task, as_json).await
}

pub async fn sent(
    data: &DataArgs,
    from: &str,
    limit: usize,
    as_json: bool,
) -> Result<ExitCode, String> {
    let outbox = data.outbox().await?;
    let from = from.trim().to_uppercase();
    let code = OdsCode::parse(&from).ok_or_else(|| format!("'{from}' is not an ODS code"))?;
    // One more than shown tells whether there are more.
    let mut tasks = outbox
        .list(&code, limit.saturating_add(1))
        .await
        .map_err(|e| e.to_string())?;
    let more = tasks.len() > limit;
    tasks.truncate(limit);
    if tasks.is_empty() && !as_json && !more {
        println!("no tasks sent by {from}");
    }
    for t in tasks {
        let attempts = outbox.attempts(&t.id).await.map_err(|e| e.to_string())?;
        let changes = outbox
            .sent_timeline(&t.id)
            .await
            .map_err(|e| e.to_string())?;
        if as_json {
            println!("{}", task_json(&t, &attempts, &changes));
            continue;
        }
        let nhs = t.nhs_number.formatted();
        println!(
            "{}  {:<20} to {} ({}) — {} {} — {}, {} attempt(s)\n  task {}{}",
            time(t.created_at),
            t.state_label(last_note(&changes)),
            t.to_name,
            t.to_ods,
            t.patient_name,
            nhs,
            t.task_type.display(),
            t.attempts,
            t.id,
            t.reason
                .as_deref()
                .map(|r| format!("\n  {r}"))
                .unwrap_or_default()
        );
        for a in attempts {
            // A refusal or failure says why, and so at which step; a
            // refusal before the Order has no HTTP status of its own.
            let why = match a.outcome {
                SendStatus::Rejected | SendStatus::Failed => format!(": {}", a.detail),
                _ => String::new(),
            };
            println!(
                "    attempt {} at {}: {}{}{why}",
                a.number,
                time(a.started_at),
                a.outcome.label(),
                a.http_status
                    .map(|s| format!(" (HTTP {s})"))
                    .unwrap_or_default()
            );
        }
        for e in &changes {
            println!("    {}", change_line(e));
        }
        if let Some(line) = cancellation_line(&t) {
            println!("    {line}");
        }
    }
    if more {
        crate::commands::more_than_shown(limit, &format!("tasks sent by {from}"), as_json);
    }
    Ok(ExitCode::SUCCESS)
}

/// "version 2 accepted by Dr Nichole GILBERT (General Medical Practitioner, GPC001) at 10:32: note".
fn change_line(e: &TimelineEntry) -> String {
    format!(
        "version {} {} by {} ({}, {}) at {}{}",
        e.version,
        e.state.code(),
        e.by.name,
        e.by.role_display,
        e.by.organisation,
        time(e.at),
        e.note
            .as_deref()
            .map(|n| format!(": {n}"))
            .unwrap_or_default()
    )
}

fn cancellation_line(t: &SentTask) -> Option<String> {
    let c = t.cancellation.as_ref()?;
    Some(match c.status {
        UpdateStatus::Pending => match &c.detail {
            Some(detail) => format!(
                "cancelling (asked at {}; not reached yet: {detail})",
                time(c.requested_at)
            ),
            None => format!("cancelling (asked at {})", time(c.requested_at)),
        },
        UpdateStatus::Delivered => format!("cancelled: {}", c.reason),
        UpdateStatus::Refused => format!(
            "not cancelled: {}",
            c.detail.as_deref().unwrap_or("the recipient refused")
        ),
    })
}

/// Exit codes of `cancel` (task-lifecycle.md §4).
pub const EXIT_CANCEL_REFUSED: u8 = 2;
pub const EXIT_NOT_REACHED: u8 = 3;

/// `cancel`: asks for the cancellation, then follows it until the recipient
/// answers, as `send` follows a task. 0 cancelled; 1 bad input; 2 refused
/// (not delivered, already final, no such task); 3 not reached yet (it stays
/// queued; a running `serve` keeps retrying it).
pub async fn cancel(
    data: &DataArgs,
    net: &NetworkArgs,
    id: &str,
    user: &str,
    reason: &str,
    as_json: bool,
) -> Result<ExitCode, String> {
    let engine = engine(data, net).await?;
    let mut events = engine.subscribe();
    let task = match engine
        .cancel(id, &gpc_consumer::Who::Sds(user.to_owned()), reason)
        .await
    {
        Ok(task) => task,
        Err(SendError::Refused(why) | SendError::NotFound(why)) => {
            eprintln!("error: {why}");
            return Ok(ExitCode::from(EXIT_CANCEL_REFUSED));
        }
        Err(e) => return Err(e.to_string()),
    };
    if !as_json {
        println!("Cancelling task {} at {}…", task.id, task.to_name);
    }
    let worker = engine.spawn_worker();
    let settled = loop {
        match events.recv().await {
            Ok(e) if e.task_id == task.id => {
                let Some(now) = engine
                    .outbox()
                    .get(&task.id)
                    .await
                    .map_err(|e| e.to_string())?
                else {
                    break None;
                };
                // Settled once the recipient answered, or the first attempt
                // failed to reach it (the queue keeps it).
                if now
                    .cancellation
                    .as_ref()
                    .is_some_and(|c| c.status != UpdateStatus::Pending || c.attempts > 0)
                {
                    break Some(now);
                }
            }
            Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(tokio::sync::broadcast::error::RecvError::Closed) => break None,
        }
    };
    worker.abort();
    let Some(now) = settled else {
        return Err(format!("the task {id} is no longer in the outbox"));
    };
    if as_json {
        let attempts = engine
            .outbox()
            .attempts(&now.id)
            .await
            .map_err(|e| e.to_string())?;
        let changes = engine
            .outbox()
            .sent_timeline(&now.id)
            .await
            .map_err(|e| e.to_string())?;
        println!("{}", task_json(&now, &attempts, &changes));
    }
    let c = now.cancellation.as_ref();
    let line = cancellation_line(&now).unwrap_or_default();
    Ok(match c.map(|c| c.status) {
        Some(UpdateStatus::Delivered) => {
            if !as_json {
                println!("Cancelled at {}.", now.to_name);
            }
            ExitCode::SUCCESS
        }
        Some(UpdateStatus::Refused) => {
            eprintln!("{line}");
            ExitCode::from(EXIT_CANCEL_REFUSED)
        }
        _ => {
            eprintln!("{line}. It stays queued: a running `gpc-tasks serve` keeps retrying it.");
            ExitCode::from(EXIT_NOT_REACHED)
        }
    })
}
