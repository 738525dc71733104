//! The `gpc-tasks` command line.

mod commands;

use clap::{Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

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
    /// Folder of the embedded database (created and loaded with the demo region when empty).
    #[arg(long, default_value = "./data", env = "GPC_DATA_DIR")]
    pub data_dir: PathBuf,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server: every provider endpoint of the demo region.
    Serve {
        #[arg(long, default_value = "127.0.0.1:8080", env = "GPC_LISTEN")]
        listen: SocketAddr,
        /// Base of absolute URLs (default http://{listen}).
        #[arg(long, env = "GPC_PUBLIC_URL")]
        public_url: Option<String>,
        #[command(flatten)]
        data: DataArgs,
    },
    /// List the tasks an organisation received, newest first.
    Inbox {
        /// ODS code of the receiving organisation.
        #[arg(long)]
        org: String,
        /// At most this many tasks.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        data: DataArgs,
    },
    /// Show the provider audit trail, newest first.
    Audit {
        /// Only requests to this organisation (ODS code).
        #[arg(long)]
        org: Option<String>,
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
}

/// Runs the command line; the exit code says how it went.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
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
                public_url,
                data,
            } => commands::serve(listen, public_url, data.data_dir).await,
            Command::Inbox {
                org,
                limit,
                json,
                data,
            } => commands::inbox(&data.data_dir, &org, limit, json).await,
            Command::Audit {
                org,
                since,
                limit,
                json,
                data,
            } => commands::audit(&data.data_dir, org, since, limit, json).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}
