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

use super::{Outbox, RemoteOutcome, SentEvent};
use crate::StoreError;
use crate::postgres::connection::{self, from_ns, pg_err, pool_err, to_ns};
use crate::postgres::listener::Listener;
use crate::postgres::schema;
use crate::rows::Cell;
use crate::rows::sent::{
    SentRow, attempt_cells, attempt_columns, cancellation_statement, decode_attempt, decode_sent,
    decode_sent_entry, remote_entry_cells, remote_of, remote_statement, request_cancel_cells,
    request_cancel_statement, sent_columns, sent_entry_cells, sent_entry_select,
    sent_timeline_columns, state_statement,
};
use deadpool_postgres::{Pool, Transaction};
use gpc_domain::OdsCode;
use gpc_domain::lifecycle::TimelineEntry;
use gpc_domain::sent::{Attempt, SentTask};
use gpc_domain::updates::{Cancellation, ReceivedUpdate, RemoteUpdate};
use jiff::Timestamp;
use std::sync::LazyLock;
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

fn parse_sent(payload: &str) -> Option<Vec<SentEvent>> {
    let (from_ods, task_id): (String, String) = serde_json::from_str(payload).ok()?;
    Some(vec![SentEvent {
        from_ods: OdsCode::parse(&from_ods)?,
        task_id,
    }])
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

fn placeholder(n: usize) -> String {
    format!("${n}")
}

static UPDATE_STATE: LazyLock<String> = LazyLock::new(|| state_statement(placeholder));
static SET_REMOTE: LazyLock<String> = LazyLock::new(|| remote_statement(placeholder));
static FINISH_CANCELLATION: LazyLock<String> =
    LazyLock::new(|| cancellation_statement(placeholder));
static REQUEST_CANCEL: LazyLock<String> = LazyLock::new(|| {
    format!(
        concat!("{} RETURNING ", sent_columns!()),
        request_cancel_statement(placeholder)
    )
});

/// Writes every mutable column of `task`, if `owner` holds its lease.
async fn update_state(
    tx: &Transaction<'_>,
    owner: &str,
    task: &SentTask,
) -> Result<bool, StoreError> {
    let stmt = tx.prepare_cached(&UPDATE_STATE).await.map_err(pg_err)?;
    let row = SentRow::new(task)?;
    let changed = tx
        .execute(&stmt, &params(&row.state_cells(owner)))
        .await
        .map_err(pg_err)?;
    Ok(changed == 1)
}

/// Sent task `id`, locked until `tx` ends, so that changes reported for it
/// at once are applied one after the other, each seeing the last.
async fn lock_sent(tx: &Transaction<'_>, id: &str) -> Result<Option<SentTask>, StoreError> {
    let rows = tx
        .query(
            concat!(
                "SELECT ",
                sent_columns!(),
                " FROM sent_tasks WHERE id = $1 FOR UPDATE"
            ),
            &[&id],
        )
        .await
        .map_err(pg_err)?;
    rows.first().map(decode_sent).transpose()
}

/// Makes `entry` the remote state of task `id` and adds it to the task's
/// timeline, with the OrderResponse it arrived in, if any.
async fn apply_entry(
    tx: &Transaction<'_>,
    id: &str,
    entry: &TimelineEntry,
    received: Option<&ReceivedUpdate>,
) -> Result<(), StoreError> {
    let remote = remote_entry_cells(id, entry)?;
    tx.execute(SET_REMOTE.as_str(), &params(&remote))
        .await
        .map_err(pg_err)?;
    let cells = sent_entry_cells(id, entry, received)?;
    tx.execute(
        concat!(
            "INSERT INTO sent_timeline (",
            sent_timeline_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)"
        ),
        &params(&cells),
    )
    .await
    .map_err(pg_err)?;
    Ok(())
}

/// An entry at or below the version held changes nothing: updates may
/// arrive out of order, and the highest version wins (§2 step 5).
fn is_newer(task: &SentTask, entry: &TimelineEntry) -> bool {
    task.remote
        .as_ref()
        .is_none_or(|remote| entry.version > remote.version)
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
                 $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, \
                 $31, $32, $33, $34, $35, $36, $37, $38, $39, $40, $41, $42, $43, $44, $45, \
                 $46, $47, $48, $49)"
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

    async fn find_delivered(
        &self,
        from_ods: &OdsCode,
        provider_task_id: &str,
    ) -> Result<Option<SentTask>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                concat!(
                    "SELECT ",
                    sent_columns!(),
                    " FROM sent_tasks WHERE from_ods = $1 AND provider_task_id = $2 \
                     AND status = 'delivered' ORDER BY created_at, id LIMIT 1"
                ),
                &[&from_ods.as_str(), &provider_task_id],
            )
            .await
            .map_err(pg_err)?;
        rows.first().map(decode_sent).transpose()
    }

    async fn apply_remote(
        &self,
        id: &str,
        update: &RemoteUpdate,
    ) -> Result<Option<RemoteOutcome>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        // A repeat arriving at once waits here for the first, then finds it.
        let Some(task) = lock_sent(&tx, id).await? else {
            return Ok(None);
        };
        if let Some(received) = &update.received {
            let rows = tx
                .query(
                    "SELECT update_body FROM sent_timeline WHERE update_id = $1",
                    &[&received.identifier],
                )
                .await
                .map_err(pg_err)?;
            if let Some(row) = rows.first() {
                let body: Option<String> = connection::get(row, 0)?;
                let body = body.ok_or_else(|| connection::corrupt("stored update"))?;
                return Ok(Some(RemoteOutcome::Repeat { task, body }));
            }
        }
        if !is_newer(&task, &update.entry) {
            return Ok(Some(RemoteOutcome::Late(task)));
        }
        apply_entry(&tx, id, &update.entry, update.received.as_ref()).await?;
        notify(&tx, &task.from_ods, &task.id).await?;
        tx.commit().await.map_err(pg_err)?;
        let task = SentTask {
            remote: Some(remote_of(&update.entry)),
            ..task
        };
        Ok(Some(RemoteOutcome::Applied(task)))
    }

    async fn sent_timeline(&self, id: &str) -> Result<Vec<TimelineEntry>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(concat!(sent_entry_select!(), "$1 ORDER BY version"), &[&id])
            .await
            .map_err(pg_err)?;
        rows.iter().map(decode_sent_entry).collect()
    }

    async fn request_cancel(
        &self,
        id: &str,
        cancellation: &Cancellation,
    ) -> Result<Option<SentTask>, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        let cells = request_cancel_cells(id, cancellation)?;
        let rows = tx
            .query(REQUEST_CANCEL.as_str(), &params(&cells))
            .await
            .map_err(pg_err)?;
        let Some(task) = rows.first().map(decode_sent).transpose()? else {
            return Ok(None);
        };
        notify(&tx, &task.from_ods, &task.id).await?;
        tx.commit().await.map_err(pg_err)?;
        Ok(Some(task))
    }

    async fn claim_cancellations(
        &self,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: usize,
    ) -> Result<Vec<SentTask>, StoreError> {
        let (now, until) = (to_ns(now)?, to_ns(lease_until)?);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let client = self.client().await?;
        // As `claim_due`: locked as chosen, skipped when another claim holds
        // them; only the lease changes, so the rows are as before the claim.
        let rows = client
            .query(
                concat!(
                    "WITH due AS ( \
                       SELECT id AS due_id FROM sent_tasks \
                        WHERE cancel_status = 'pending' AND cancel_next_attempt_at <= $1 \
                          AND (lease_until IS NULL OR lease_until < $1) \
                        ORDER BY cancel_requested_at, id LIMIT $2 \
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
        let requested = |t: &SentTask| t.cancellation.as_ref().map(|c| c.requested_at);
        claimed.sort_by(|a, b| (requested(a), &a.id).cmp(&(requested(b), &b.id)));
        Ok(claimed)
    }

    async fn finish_cancellation(
        &self,
        owner: &str,
        task: &SentTask,
        applied: Option<&TimelineEntry>,
    ) -> Result<bool, StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        let row = SentRow::new(task)?;
        // The update locks the row: an update reported meanwhile waits for
        // this transaction, or came first and is seen below.
        let changed = tx
            .execute(
                FINISH_CANCELLATION.as_str(),
                &params(&row.cancellation_cells(owner)),
            )
            .await
            .map_err(pg_err)?;
        if changed != 1 {
            return Ok(false);
        }
        if let Some(entry) = applied {
            let current = lock_sent(&tx, &task.id)
                .await?
                .ok_or_else(|| StoreError::Corrupt("a written task is missing".into()))?;
            if is_newer(&current, entry) {
                apply_entry(&tx, &task.id, entry, None).await?;
            }
        }
        notify(&tx, &task.from_ods, &task.id).await?;
        tx.commit().await.map_err(pg_err)?;
        Ok(true)
    }

    async fn waiting(&self) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let n: i64 = client
            .query_one(super::WAITING, &[])
            .await
            .map_err(pg_err)?
            .get(0);
        Ok(n.unsigned_abs())
    }

    async fn next_due(&self) -> Result<Option<Timestamp>, StoreError> {
        let client = self.client().await?;
        // A cancellation being sent is leased: due again only when the lease
        // runs out (GREATEST ignores a NULL lease).
        let next: Option<i64> = client
            .query_one(
                "SELECT LEAST( \
                   (SELECT MIN(next_attempt_at) FROM sent_tasks \
                     WHERE status IN ('queued', 'failed') AND next_attempt_at IS NOT NULL), \
                   (SELECT MIN(lease_until) FROM sent_tasks \
                     WHERE status IN ('sending', 'retrying') AND lease_until IS NOT NULL), \
                   (SELECT MIN(GREATEST(cancel_next_attempt_at, lease_until)) FROM sent_tasks \
                     WHERE cancel_status = 'pending' AND cancel_next_attempt_at IS NOT NULL))",
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
