//! The `gpc-tasks` command line: one binary crate, no library (nothing else
//! links this code).
// The unit tests' crate sees every dev-dependency, which the integration tests use.
#![cfg_attr(test, allow(unused_crate_dependencies))]

mod auth_args;
mod backup_command;
mod commands;
mod config_file;
mod data;
mod import_commands;
mod logging;
mod send_commands;
mod spine_args;
mod task_commands;

use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// mimalloc rather than the system allocator: a request parses and drops
/// many small JSON values, and bench/run measured the difference
/// (bench/README.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    run()
}

#[derive(Parser, Debug)]
#[command(
    name = "gpc-tasks",
    version,
    about = "GP Connect Task Management: provider, inbox and audit"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Debug, Clone)]
pub struct DataArgs {
    /// PostgreSQL for every store (received tasks, audit, outbox) instead of
    /// SQLite in --data-dir, e.g. postgres://user@host/gpc.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,
    /// Folder of the embedded database (created and loaded with the demo region when empty).
    #[arg(long, default_value = "./data", env = "GPC_DATA_DIR")]
    pub data_dir: PathBuf,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server: every provider endpoint of the region (the demo
    /// region in an empty data directory).
    Serve {
        #[arg(long, default_value = "127.0.0.1:8080", env = "GPC_LISTEN")]
        listen: SocketAddr,
        /// Start with no reference data in an empty store, rather than the
        /// demo region (load a region with `import`).
        #[arg(long)]
        no_demo: bool,
        /// Base of absolute URLs (default http://{listen}, https with --tls-cert).
        #[arg(long, env = "GPC_PUBLIC_URL")]
        public_url: Option<String>,
        #[command(flatten)]
        data: DataArgs,
        #[command(flatten)]
        tls: spine_args::TlsArgs,
        #[command(flatten)]
        ssp: spine_args::SspArgs,
        #[command(flatten)]
        consumer: send_commands::ConsumerArgs,
        #[command(flatten)]
        auth: Box<auth_args::AuthArgs>,
        /// Serve /metrics (Prometheus), /livez and /readyz on this
        /// address:port, apart from the clients' port (off when not given).
        #[arg(long, env = "GPC_METRICS_LISTEN")]
        metrics_listen: Option<SocketAddr>,
        #[command(flatten)]
        log: logging::LogArgs,
    },
    /// Run only the provider endpoints, configured by a TOML file (see README).
    Provider {
        #[arg(long, env = "GPC_CONFIG")]
        config: PathBuf,
        #[command(flatten)]
        log: logging::LogArgs,
    },
    /// Run only the Spine Security Proxy, configured by a TOML file; it
    /// forwards only to providers under `urls.provider`.
    Ssp {
        #[arg(long, env = "GPC_CONFIG")]
        config: PathBuf,
        #[command(flatten)]
        log: logging::LogArgs,
    },
    /// Run only the directory APIs (PDS, SDS, ODS), configured by a TOML file;
    /// SDS lists provider endpoints under `urls.provider`.
    Directory {
        #[arg(long, env = "GPC_CONFIG")]
        config: PathBuf,
        #[command(flatten)]
        log: logging::LogArgs,
    },
    /// Copy the SQLite store (and outbox) of --data-dir while the server
    /// runs: FILE holds the task store, FILE.outbox the outbox. On
    /// PostgreSQL use pg_dump instead (README, Backup and restore).
    Backup {
        /// The file to write (replaced once the copy is complete and checked).
        #[arg(long, value_name = "FILE")]
        to: PathBuf,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Generate a development CA and a certificate and key for the SSP and for
    /// every demo organisation with an ASID (subject CN = the ASID).
    Certs {
        /// Folder to write ca.pem, ssp.pem/.key and {ODS}.pem/.key into.
        #[arg(long)]
        out: PathBuf,
    },
    /// List the tasks an organisation received, newest first: by default
    /// those still to do (received or accepted).
    Inbox {
        /// ODS code of the receiving organisation.
        #[arg(long)]
        org: String,
        /// open (received and accepted), received, accepted, completed,
        /// rejected, cancelled, done (the last three) or all.
        #[arg(long, default_value = "open")]
        state: String,
        /// Only tasks this user (SDS user id) owns.
        #[arg(long)]
        owner: Option<String>,
        /// At most this many tasks.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Work a received task: show it, take it, assign it, complete or reject
    /// it, add a note. Exit code 0 done, 1 bad input, 2 refused (its state,
    /// someone else got there first, or no such task for the organisation).
    Task {
        #[command(subcommand)]
        action: TaskAction,
    },
    /// Show the provider audit trail (or, with --ssp, the SSP's), newest first.
    Audit {
        /// Only requests to this organisation (ODS code).
        #[arg(long, conflicts_with = "ssp")]
        org: Option<String>,
        /// The Spine Security Proxy's audit trail instead of the providers'.
        #[arg(long)]
        ssp: bool,
        /// Only records at or after this time (RFC 3339, e.g. 2026-11-25T09:00:00Z, or a date).
        #[arg(long)]
        since: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: usize,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Send a task or notification about one patient, and follow it until it is
    /// delivered, rejected or failed. Exit code 0 delivered, 2 rejected (also
    /// before sending: a patient recorded as deceased) or no electronic
    /// route, 3 failed.
    Send {
        /// SDS user id of the person sending (e.g. G11111116).
        #[arg(long = "as", value_name = "SDS_USER_ID")]
        user: String,
        /// NHS number of the patient (spaces allowed).
        #[arg(long)]
        patient: String,
        /// "action" (action needed) or "info" (information only).
        #[arg(long = "type", value_parser = send_commands::parse_task_type)]
        task_type: gpc_domain::task::TaskType,
        /// What the recipient should know or do.
        #[arg(long)]
        text: String,
        /// ODS code of the recipient (default: the patient's registered practice, from PDS).
        #[arg(long)]
        to: Option<String>,
        /// ODS code of the sending organisation (default: the user's).
        #[arg(long)]
        from: Option<String>,
        /// Events and the result as JSON lines.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        net: send_commands::NetworkArgs,
        #[command(flatten)]
        data: DataArgs,
    },
    /// List the tasks an organisation sent, newest first, with their attempts.
    Sent {
        /// ODS code of the sending organisation.
        #[arg(long)]
        from: String,
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Cancel a task this organisation sent, with the reason the recipient
    /// will see, and follow it until the recipient answers. Exit code 0
    /// cancelled, 1 bad input, 2 refused (not delivered, already completed,
    /// rejected or cancelled, or no such task), 3 not reached yet (it stays
    /// queued and is retried).
    Cancel {
        /// The sent task's id (from `send` or `sent`).
        task: String,
        /// SDS user id of the person cancelling; a user of the sending organisation.
        #[arg(long = "as", value_name = "SDS_USER_ID")]
        user: String,
        #[arg(long)]
        reason: String,
        /// The task and the outcome as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        net: send_commands::NetworkArgs,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Load reference data into the store: organisations, Spine systems,
    /// practitioners, patients, patient records, or the demo region. Every
    /// problem is printed with file, line and field, and then nothing is
    /// imported (exit 1). Running servers pick the data up within seconds.
    Import {
        #[command(subcommand)]
        what: import_commands::ImportWhat,
    },
    /// The reference data the store holds.
    Region {
        #[command(subcommand)]
        action: import_commands::RegionAction,
    },
    /// Retry a task that failed, and follow it (exit codes as for send).
    Retry {
        /// The sent task's id (from `send` or `sent`).
        task: String,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        net: send_commands::NetworkArgs,
        #[command(flatten)]
        data: DataArgs,
    },
}

/// Who makes a change, and to which task.
#[derive(clap::Args, Debug)]
struct TaskTarget {
    /// The task's id (from `inbox`).
    task: String,
    /// ODS code of the receiving organisation.
    #[arg(long)]
    org: String,
    /// SDS user id of the person making the change; a user of that organisation.
    #[arg(long = "as", value_name = "SDS_USER_ID")]
    user: String,
    /// Make the change only if the task is still at this version.
    #[arg(long)]
    version: Option<u32>,
    /// Print the task and its timeline as JSON.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    data: DataArgs,
}

#[derive(Subcommand, Debug)]
enum TaskAction {
    /// The task and its timeline.
    Show {
        task: String,
        #[arg(long)]
        org: String,
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Take the task: you own it.
    Take {
        #[command(flatten)]
        target: TaskTarget,
        #[arg(long)]
        note: Option<String>,
    },
    /// Give the task to a colleague of the same organisation.
    Assign {
        #[command(flatten)]
        target: TaskTarget,
        /// SDS user id of the colleague.
        #[arg(long, value_name = "SDS_USER_ID")]
        to: String,
        #[arg(long)]
        note: Option<String>,
    },
    /// Mark the task as done (a notification: as read).
    Complete {
        #[command(flatten)]
        target: TaskTarget,
        #[arg(long)]
        note: Option<String>,
    },
    /// Decline the task, with the reason the sender will see.
    Reject {
        #[command(flatten)]
        target: TaskTarget,
        #[arg(long)]
        reason: String,
    },
    /// Add a note without changing the task's state.
    Note {
        #[command(flatten)]
        target: TaskTarget,
        #[arg(long)]
        text: String,
    },
}

impl TaskAction {
    async fn run(self) -> Result<ExitCode, String> {
        use task_commands::ChangeKind;
        let (target, change, text) = match self {
            TaskAction::Show {
                task,
                org,
                json,
                data,
            } => return task_commands::show(&data, &task, &org, json).await,
            TaskAction::Take { target, note } => (target, ChangeKind::Take, note),
            TaskAction::Assign { target, to, note } => (target, ChangeKind::Assign(to), note),
            TaskAction::Complete { target, note } => (target, ChangeKind::Complete, note),
            TaskAction::Reject { target, reason } => (target, ChangeKind::Reject, Some(reason)),
            TaskAction::Note { target, text } => (target, ChangeKind::Note, Some(text)),
        };
        let args = task_commands::ChangeArgs {
            task: target.task,
            org: target.org,
            user: target.user,
            change,
            text,
            version: target.version,
            json: target.json,
        };
        task_commands::change(&target.data, args).await
    }
}

/// Runs the command line; the exit code says how it went.
fn run() -> ExitCode {
    // Usage errors exit 1, not clap's 2: `send` reserves 2 for a rejected task.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve {
                listen,
                no_demo,
                public_url,
                data,
                tls,
                ssp,
                consumer,
                auth,
                metrics_listen,
                log,
            } => {
                let (auth, sessions) = auth.config()?;
                let config = gpc_server::ServerConfig {
                    listen,
                    public_url,
                    data_dir: data.data_dir,
                    database_url: data.database_url,
                    tls: tls.config(),
                    ssp: ssp.config(),
                    parts: gpc_server::Parts::ALL,
                    consumer: Some(consumer.config(&tls)),
                    limits: gpc_server::limits::Limits::from_env()?,
                    seed: (!no_demo).then(gpc_directory::demo_region),
                    auth,
                    sessions,
                    metrics_listen,
                };
                commands::serve(config, log.log_format).await
            }
            Command::Provider { config, log } => {
                commands::serve_part(&config, gpc_server::Parts::PROVIDER, log.log_format).await
            }
            Command::Ssp { config, log } => {
                commands::serve_part(&config, gpc_server::Parts::SSP, log.log_format).await
            }
            Command::Directory { config, log } => {
                commands::serve_part(&config, gpc_server::Parts::DIRECTORY, log.log_format).await
            }
            Command::Backup { to, data } => backup_command::backup(&data, &to).await,
            Command::Certs { out } => commands::certs(&out),
            Command::Inbox {
                org,
                state,
                owner,
                limit,
                json,
                data,
            } => {
                let args = task_commands::InboxArgs {
                    org,
                    state,
                    owner,
                    limit,
                    json,
                };
                return task_commands::inbox(&data, args).await;
            }
            Command::Task { action } => return action.run().await,
            Command::Import { what } => return import_commands::import(what).await,
            Command::Region { action } => return import_commands::region(action).await,
            Command::Audit {
                ssp: true,
                since,
                limit,
                json,
                data,
                ..
            } => commands::ssp_audit(&data, since, limit, json).await,
            Command::Audit {
                org,
                since,
                limit,
                json,
                data,
                ssp: false,
            } => commands::audit(&data, org, since, limit, json).await,
            Command::Send {
                user,
                patient,
                task_type,
                text,
                to,
                from,
                json,
                net,
                data,
            } => {
                let args = send_commands::SendArgs {
                    user,
                    patient,
                    task_type,
                    text,
                    to,
                    from,
                    json,
                };
                return send_commands::send(&data, &net, args).await;
            }
            Command::Sent {
                from,
                limit,
                json,
                data,
            } => return send_commands::sent(&data, &from, limit, json).await,
            Command::Retry {
                task,
                json,
                net,
                data,
            } => return send_commands::retry(&data, &net, &task, json).await,
            Command::Cancel {
                task,
                user,
                reason,
                json,
                net,
                data,
            } => {
                return send_commands::cancel(&data, &net, &task, &user, &reason, json).await;
            }
        }
        .map(|()| ExitCode::SUCCESS)
    });
    match result {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}
