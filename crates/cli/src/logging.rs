//! The server's log lines, on stderr (stdout is for people: the URLs).
//! Colour only on a terminal, so that a log file or a journal holds plain
//! text; `--log-format json` for log shippers, one object a line with the
//! same fields as the text lines.

use std::io::IsTerminal;

/// How log lines are written.
#[derive(clap::ValueEnum, Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// One line of text per event (coloured on a terminal).
    #[default]
    Text,
    /// One JSON object per line: timestamp, level, target, message and the
    /// event's fields at the top level, and the spans it happened in.
    Json,
}

/// Where the servers' logging is chosen.
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct LogArgs {
    /// text (coloured only on a terminal) or json (one object per line).
    #[arg(long, value_enum, default_value_t = LogFormat::Text, env = "GPC_LOG_FORMAT")]
    pub log_format: LogFormat,
}

/// Installs the process's subscriber: the level from RUST_LOG (info when
/// unset or unreadable), lines on stderr.
pub fn init(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder
            .with_ansi(colour(std::io::stderr().is_terminal()))
            .init(),
        LogFormat::Json => builder.json().flatten_event(true).with_ansi(false).init(),
    }
}

/// Colour on a terminal, unless NO_COLOR (no-color.org) is set to something.
fn colour(terminal: bool) -> bool {
    terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}
