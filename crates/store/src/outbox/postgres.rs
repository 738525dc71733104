//! The outbox on PostgreSQL, in the store's database (its own tables), so
//! that the workers of several instances share one queue. A claim locks the
//! due rows with `FOR UPDATE SKIP LOCKED`: two workers claiming at the same
//! moment take different tasks, neither waits for the other, and a lease
//! that runs out (its instance died) makes the task due again for any.
//! Leases are compared with the claiming worker's clock, so the instances'
//! clocks must agree (NTP) to well within a lease.
//!
//! Every committed change of a task is announced on `gpc_sent` (from the
//! transaction that made it, so only once committed), which `sent_events`
//! turns back into events on every instance.

use super::{Outbox, SentEvent};
use crate::StoreError;
use crate::postgres::connection::{self, from_ns, pg_err, pool_err, to_ns};
use crate::postgres::listener::Listener;
use crate::postgres::schema;
use crate::rows::Cell;
use crate::rows::sent::{
    SentRow, attempt_cells, attempt_columns, decode_attempt, decode_sent, sent_columns,
};
use deadpool_postgres::Pool;
use gpc_domain::OdsCode;
use gpc_domain::sent::{Attempt, SentTask};
use jiff::Timestamp;
use tokio::sync::broadcast;
use tokio_postgres::types::ToSql;

/// The channel on which committed changes of sent tasks are announced.
pub const SENT_CHANNEL: &str = "gpc_sent";

/// Sends are made by people, a few a second at most, and the worker claims
/// in batches: a few connections are plenty.
const POOL_SIZE: usize = 4;

pub struct PostgresOutbox {
    pool: Pool,
    sent: Listener<SentEvent>,
}

impl PostgresOutbox {
    /// Connects to `database_url` and migrates the outbox tables to this
    /// binary's schema (instances starting together take turns).
    pub async fn connect(database_url: &str) -> Result<Self, StoreError> {
        let config = connection::parse_url(database_url)?;
        let pool = connection::pool(&config, POOL_SIZE)?;
        let version = {
            let mut client = pool.get().await.map_err(pool_err)?;
            let tx = client.transaction().await.map_err(pg_err)?;
            let version = schema::migrate(&tx, "outbox", schema::OUTBOX).await?;
            tx.commit().await.map_err(pg_err)?;
            version
        };
        tracing::info!(
            database = config.get_dbname().unwrap_or_default(),
            schema_version = version,
            "outbox opened on PostgreSQL"
        );
        let sent = Listener::new(config, SENT_CHANNEL, parse_sent);
        Ok(Self { pool, sent })
    }

    /// Like `sent_events`, and waits until the `LISTEN` is in place, so that
    /// every change committed after this returns is seen.
    pub async fn sent_events_ready(&self) -> Result<broadcast::Receiver<SentEvent>, StoreError> {
        self.sent.subscribe_ready().await
    }

    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(pool_err)
    }
}

/// Ids only: a notification is visible to every session of the database.
fn sent_payload(from_ods: &OdsCode, task_id: &str) -> String {
    serde_json::json!([from_ods.as_str(), task_id]).to_string()
}

fn parse_sent(payload: &str) -> Option<SentEvent> {
    let (from_ods, task_id): (String, String) = serde_json::from_str(payload).ok()?;
    Some(SentEvent {
        from_ods: OdsCode::parse(&from_ods)?,
        task_id,
    })
}

async fn notify(
    tx: &deadpool_postgres::Transaction<'_>,
    from_ods: &OdsCode,
    task_id: &str,
) -> Result<(), StoreError> {
    tx.execute(
        "SELECT pg_notify($1, $2)",
        &[&SENT_CHANNEL, &sent_payload(from_ods, task_id)],
    )
    .await
    .map_err(pg_err)?;
    Ok(())
}

/// `cells` as the parameter list `execute` takes.
fn params<'a>(cells: &'a [Cell<'a>]) -> Vec<&'a (dyn ToSql + Sync)> {
    cells.iter().map(|c| c as &(dyn ToSql + Sync)).collect()
}

async fn update_state(
    tx: &deadpool_postgres::Transaction<'_>,
    owner: &str,
    task: &SentTask,
) -> Result<bool, StoreError> {
    let stmt = tx
        .prepare_cached(
            "UPDATE sent_tasks SET updated_at = $2, status = $3, attempts = $4, \
             cycle_attempts = $5, next_attempt_at = $6, provider_task_id = $7, \
             delivered_at = $8, reason = $9, \
             lease_owner = CASE WHEN $3 IN ('sending', 'retrying') THEN lease_owner END, \
             lease_until = CASE WHEN $3 IN ('sending', 'retrying') THEN lease_until END \
             WHERE id = $1 AND lease_owner = $10",
        )
        .await
        .map_err(pg_err)?;
    let row = SentRow::new(task)?;
    let mut cells: Vec<Cell<'_>> = row.state_cells().into_iter().collect();
    cells.push(Cell::Text(owner));
    let changed = tx.execute(&stmt, &params(&cells)).await.map_err(pg_err)?;
    Ok(changed == 1)
}

#[async_trait::async_trait]
impl Outbox for PostgresOutbox {
    async fn enqueue(&self, t: &SentTask) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        let row = SentRow::new(t)?;
        tx.execute(
            concat!(
                "INSERT INTO sent_tasks (",
                sent_columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, \
                 $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29)"
            ),
            &params(&row.cells()),
        )
        .await
        .map_err(pg_err)?;
        notify(&tx, &t.from_ods, &t.id).await?;
        tx.commit().await.map_err(pg_err)
    }

    async fn claim_due(
        &self,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: usize,
    ) -> Result<Vec<SentTask>, StoreError> {
        let (now, until) = (to_ns(now)?, to_ns(lease_until)?);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let client = self.client().await?;
        // The rows are locked as they are chosen and skipped when another
        // claim holds them, so concurrent claims never share a task. The
        // update changes only the lease, so the returned columns are the
        // task as it was before the claim.
        let rows = client
            .query(
                concat!(
                    "WITH due AS ( \
                       SELECT id AS due_id FROM sent_tasks \
                        WHERE (status IN ('queued', 'failed') AND next_attempt_at <= $1 \
                               AND (lease_until IS NULL OR lease_until < $1)) \
                           OR (status IN ('sending', 'retrying') AND lease_until < $1) \
                        ORDER BY created_at, id LIMIT $2 \
                        FOR UPDATE SKIP LOCKED) \
                     UPDATE sent_tasks SET lease_owner = $3, lease_until = $4 \
                       FROM due WHERE id = due.due_id \
                     RETURNING ",
                    sent_columns!()
                ),
                &[&now, &limit, &owner, &until],
            )
            .await
            .map_err(pg_err)?;
        let mut claimed = rows
            .iter()
            .map(decode_sent)
            .collect::<Result<Vec<_>, _>>()?;
        claimed.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(claimed)
    }

    async fn mark(&self, owner: &str, task: &SentTask) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        if !update_state(&tx, owner, task).await? {
            return Ok(false);
        }
        notify(&tx, &task.from_ods, &task.id).await?;
        tx.commit().await.map_err(pg_err)?;
        Ok(true)
    }

    async fn finish_attempt(
        &self,
        owner: &str,
        task: &SentTask,
        attempt: &Attempt,
    ) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        // The update locks the row, so a claim by another worker waits for
        // this transaction, and one that came first makes this find no lease.
        if !update_state(&tx, owner, task).await? {
            return Ok(false);
        }
        tx.execute(
            concat!(
                "INSERT INTO sent_attempts (",
                attempt_columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7) \
                 ON CONFLICT (task_id, number) DO UPDATE SET started_at = EXCLUDED.started_at, \
                 finished_at = EXCLUDED.finished_at, outcome = EXCLUDED.outcome, \
                 http_status = EXCLUDED.http_status, detail = EXCLUDED.detail"
            ),
            &params(&attempt_cells(attempt)?),
        )
        .await
        .map_err(pg_err)?;
        notify(&tx, &task.from_ods, &task.id).await?;
        tx.commit().await.map_err(pg_err)?;
        Ok(true)
    }

    async fn get(&self, id: &str) -> Result<Option<SentTask>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                concat!("SELECT ", sent_columns!(), " FROM sent_tasks WHERE id = $1"),
                &[&id],
            )
            .await
            .map_err(pg_err)?;
        rows.first().map(decode_sent).transpose()
    }

    async fn attempts(&self, id: &str) -> Result<Vec<Attempt>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                concat!(
                    "SELECT ",
                    attempt_columns!(),
                    " FROM sent_attempts WHERE task_id = $1 ORDER BY number"
                ),
                &[&id],
            )
            .await
            .map_err(pg_err)?;
        rows.iter().map(decode_attempt).collect()
    }

    async fn list(&self, from_ods: &OdsCode, limit: usize) -> Result<Vec<SentTask>, StoreError> {
        let from_ods = from_ods.as_str();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let client = self.client().await?;
        let rows = client
            .query(
                concat!(
                    "SELECT ",
                    sent_columns!(),
                    " FROM sent_tasks WHERE from_ods = $1 \
                     ORDER BY created_at DESC, id DESC LIMIT $2"
                ),
                &[&from_ods, &limit],
            )
            .await
            .map_err(pg_err)?;
        rows.iter().map(decode_sent).collect()
    }

    async fn requeue(&self, id: &str, now: Timestamp) -> Result<Option<SentTask>, StoreError> {
        let now = to_ns(now)?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        let rows = tx
            .query(
                concat!(
                    "UPDATE sent_tasks SET status = 'queued', next_attempt_at = $2, \
                     updated_at = $2, cycle_attempts = 0, reason = NULL \
                     WHERE id = $1 AND status = 'failed' AND next_attempt_at IS NULL \
                     RETURNING ",
                    sent_columns!()
                ),
                &[&id, &now],
            )
            .await
            .map_err(pg_err)?;
        let Some(task) = rows.first().map(decode_sent).transpose()? else {
            return Ok(None);
        };
        notify(&tx, &task.from_ods, &task.id).await?;
        tx.commit().await.map_err(pg_err)?;
        Ok(Some(task))
    }

    async fn next_due(&self) -> Result<Option<Timestamp>, StoreError> {
        let client = self.client().await?;
        let next: Option<i64> = client
            .query_one(
                "SELECT LEAST( \
                   (SELECT MIN(next_attempt_at) FROM sent_tasks \
                     WHERE status IN ('queued', 'failed') AND next_attempt_at IS NOT NULL), \
                   (SELECT MIN(lease_until) FROM sent_tasks \
                     WHERE status IN ('sending', 'retrying') AND lease_until IS NOT NULL))",
                &[],
            )
            .await
            .map_err(pg_err)?
            .get(0);
        next.map(from_ns).transpose()
    }

    fn sent_events(&self) -> Option<broadcast::Receiver<SentEvent>> {
        Some(self.sent.subscribe())
    }
}
