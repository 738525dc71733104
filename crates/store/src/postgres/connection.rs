//! What the store and the outbox share on PostgreSQL: the connection
//! settings, the pool, and the mapping of errors to what a caller can do.

use crate::StoreError;
use deadpool_postgres::{Manager, Pool, PoolError, Runtime};
use std::time::Duration;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Config, NoTls};

/// Long enough for a server across a data centre; short enough that a dead
/// one turns into a 503 rather than a hung request.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a request waits for a free connection before answering 503.
const POOL_WAIT: Duration = Duration::from_secs(10);

/// Parses a `postgres://` URL (or a key=value string). The error never
/// repeats the URL, which may hold a password.
pub(crate) fn parse_url(url: &str) -> Result<Config, StoreError> {
    let mut config: Config = url
        .parse()
        .map_err(|e| StoreError::Other(format!("invalid database URL: {e}")))?;
    if config.get_application_name().is_none() {
        // Names the sessions in pg_stat_activity, so an operator can tell them apart.
        config.application_name("gpc-tasks");
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    Ok(config)
}

/// Connections are made when first needed, so a short-lived command that
/// reads one page opens one connection, not `size`.
pub(crate) fn pool(config: &Config, size: usize) -> Result<Pool, StoreError> {
    Pool::builder(Manager::new(config.clone(), NoTls))
        .max_size(size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(POOL_WAIT))
        .create_timeout(Some(CONNECT_TIMEOUT))
        .recycle_timeout(Some(CONNECT_TIMEOUT))
        .build()
        .map_err(|e| StoreError::Other(format!("cannot build the connection pool: {e}")))
}

pub(crate) fn pool_err(e: PoolError) -> StoreError {
    match e {
        PoolError::Backend(e) => pg_err(e),
        other => StoreError::Busy(format!("no database connection: {other}")),
    }
}

/// Maps PostgreSQL failures to what the caller can do about them. Only the
/// primary message and the SQLSTATE are kept: the DETAIL of a constraint
/// error repeats the row, which may hold an NHS number or a name.
pub(crate) fn pg_err(e: tokio_postgres::Error) -> StoreError {
    let Some(db) = e.as_db_error() else {
        // No server answer: the connection broke, timed out or was closed.
        return StoreError::Busy(format!("database connection: {e}"));
    };
    let code = db.code().code();
    let message = format!("{} (SQLSTATE {code})", db.message());
    match &code[..2] {
        // Connection, resources, operator intervention, system errors: try again later.
        "08" | "53" | "57" | "58" => StoreError::Busy(message),
        // Serialisation failure and deadlock: the same request may succeed when repeated.
        "40" => StoreError::Busy(message),
        "XX" if *db.code() == SqlState::DATA_CORRUPTED
            || *db.code() == SqlState::INDEX_CORRUPTED =>
        {
            StoreError::Corrupt(message)
        }
        _ => StoreError::Other(message),
    }
}

/// True for failures that repeating the whole transaction can cure.
pub(crate) fn is_retryable(e: &tokio_postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED
    )
}

/// Nanoseconds since the epoch in a BIGINT: the SQLite backend keeps
/// nanoseconds and `timestamptz` only microseconds, and both backends must
/// give back exactly what they were given.
pub(crate) use crate::rows::{corrupt, from_ns, to_ns};

/// A column read with its failure as `Corrupt`, naming the column, not its value.
pub(crate) fn get<'a, T: tokio_postgres::types::FromSql<'a>>(
    row: &'a tokio_postgres::Row,
    index: usize,
) -> Result<T, StoreError> {
    row.try_get(index)
        .map_err(|_| StoreError::Corrupt(format!("unreadable column {index}")))
}
