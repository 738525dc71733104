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
use crate::postgres::connection::{self, corrupt, from_ns, get, pg_err, pool_err, to_ns};
use crate::postgres::listener::Listener;
use crate::postgres::schema;
use deadpool_postgres::Pool;
use gpc_domain::sent::{Attempt, SendStatus, SentTask};
use gpc_domain::task::TaskType;
use jiff::Timestamp;
use tokio::sync::broadcast;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

/// The channel on which committed changes of sent tasks are announced.
pub const SENT_CHANNEL: &str = "gpc_sent";

/// Sends are made by people, a few a second at most, and the worker claims
/// in batches: a few connections are plenty.
const POOL_SIZE: usize = 4;

const COLUMNS: &str = "id, created_at, updated_at, from_ods, from_name, from_asid, user_sds_id, \
    user_id, user_name, user_role_code, user_role_display, nhs_number, patient_name, to_ods, \
    to_name, to_telephone, to_address, endpoint, to_asid, task_type, text, identifier, status, \
    attempts, cycle_attempts, next_attempt_at, provider_task_id, delivered_at, reason";

/// `COLUMNS` of the updated table in `claim_due`, where `id` alone would be ambiguous.
const CLAIMED_COLUMNS: &str = "s.id, s.created_at, s.updated_at, s.from_ods, s.from_name, \
    s.from_asid, s.user_sds_id, s.user_id, s.user_name, s.user_role_code, s.user_role_display, \
    s.nhs_number, s.patient_name, s.to_ods, s.to_name, s.to_telephone, s.to_address, \
    s.endpoint, s.to_asid, s.task_type, s.text, s.identifier, s.status, s.attempts, \
    s.cycle_attempts, s.next_attempt_at, s.provider_task_id, s.delivered_at, s.reason";

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
fn sent_payload(from_ods: &str, task_id: &str) -> String {
    serde_json::json!([from_ods, task_id]).to_string()
}

fn parse_sent(payload: &str) -> Option<SentEvent> {
    let (from_ods, task_id): (String, String) = serde_json::from_str(payload).ok()?;
    Some(SentEvent { from_ods, task_id })
}

async fn notify(
    tx: &deadpool_postgres::Transaction<'_>,
    from_ods: &str,
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

fn count(n: u32) -> i64 {
    i64::from(n)
}

fn decode(row: &Row) -> Result<SentTask, StoreError> {
    let opt_time = |i: usize| -> Result<Option<Timestamp>, StoreError> {
        get::<Option<i64>>(row, i)?.map(from_ns).transpose()
    };
    let counter = |i: usize| -> Result<u32, StoreError> {
        u32::try_from(get::<i64>(row, i)?).map_err(|_| corrupt("attempt count"))
    };
    Ok(SentTask {
        id: get(row, 0)?,
        created_at: from_ns(get(row, 1)?)?,
        updated_at: from_ns(get(row, 2)?)?,
        from_ods: get(row, 3)?,
        from_name: get(row, 4)?,
        from_asid: get(row, 5)?,
        user_sds_id: get(row, 6)?,
        user_id: get(row, 7)?,
        user_name: get(row, 8)?,
        user_role_code: get(row, 9)?,
        user_role_display: get(row, 10)?,
        nhs_number: get(row, 11)?,
        patient_name: get(row, 12)?,
        to_ods: get(row, 13)?,
        to_name: get(row, 14)?,
        to_telephone: get(row, 15)?,
        to_address: get(row, 16)?,
        endpoint: get(row, 17)?,
        to_asid: get(row, 18)?,
        task_type: TaskType::from_code(get(row, 19)?).ok_or_else(|| corrupt("task type"))?,
        text: get(row, 20)?,
        identifier: get(row, 21)?,
        status: SendStatus::parse(get(row, 22)?).ok_or_else(|| corrupt("send status"))?,
        attempts: counter(23)?,
        cycle_attempts: counter(24)?,
        next_attempt_at: opt_time(25)?,
        provider_task_id: get(row, 26)?,
        delivered_at: opt_time(27)?,
        reason: get(row, 28)?,
    })
}

fn decode_attempt(row: &Row) -> Result<Attempt, StoreError> {
    let number: i64 = get(row, 1)?;
    let http_status: Option<i32> = get(row, 5)?;
    Ok(Attempt {
        task_id: get(row, 0)?,
        number: u32::try_from(number).map_err(|_| corrupt("attempt number"))?,
        started_at: from_ns(get(row, 2)?)?,
        finished_at: from_ns(get(row, 3)?)?,
        outcome: SendStatus::parse(get(row, 4)?).ok_or_else(|| corrupt("attempt outcome"))?,
        http_status: http_status
            .map(u16::try_from)
            .transpose()
            .map_err(|_| corrupt("attempt HTTP status"))?,
        detail: get(row, 6)?,
    })
}

/// Writes every mutable column of `task` if `owner` holds its lease; the
/// lease ends with a state no worker is busy with. Returns whether it did.
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
             lease_owner = CASE WHEN $3 IN ('Sending', 'Retrying') THEN lease_owner END, \
             lease_until = CASE WHEN $3 IN ('Sending', 'Retrying') THEN lease_until END \
             WHERE id = $1 AND lease_owner = $10",
        )
        .await
        .map_err(pg_err)?;
    let changed = tx
        .execute(
            &stmt,
            &[
                &task.id,
                &to_ns(task.updated_at)?,
                &task.status.as_str(),
                &count(task.attempts),
                &count(task.cycle_attempts),
                &task.next_attempt_at.map(to_ns).transpose()?,
                &task.provider_task_id,
                &task.delivered_at.map(to_ns).transpose()?,
                &task.reason,
                &owner,
            ],
        )
        .await
        .map_err(pg_err)?;
    Ok(changed == 1)
}

#[async_trait::async_trait]
impl Outbox for PostgresOutbox {
    async fn enqueue(&self, t: &SentTask) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        let created = to_ns(t.created_at)?;
        let updated = to_ns(t.updated_at)?;
        let (attempts, cycle) = (count(t.attempts), count(t.cycle_attempts));
        let next = t.next_attempt_at.map(to_ns).transpose()?;
        let delivered = t.delivered_at.map(to_ns).transpose()?;
        let params: [&(dyn ToSql + Sync); 29] = [
            &t.id,
            &created,
            &updated,
            &t.from_ods,
            &t.from_name,
            &t.from_asid,
            &t.user_sds_id,
            &t.user_id,
            &t.user_name,
            &t.user_role_code,
            &t.user_role_display,
            &t.nhs_number,
            &t.patient_name,
            &t.to_ods,
            &t.to_name,
            &t.to_telephone,
            &t.to_address,
            &t.endpoint,
            &t.to_asid,
            &t.task_type.code(),
            &t.text,
            &t.identifier,
            &t.status.as_str(),
            &attempts,
            &cycle,
            &next,
            &t.provider_task_id,
            &delivered,
            &t.reason,
        ];
        tx.execute(
            &format!(
                "INSERT INTO sent_tasks ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, \
                 $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, \
                 $26, $27, $28, $29)"
            ),
            &params,
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
                &format!(
                    "WITH due AS ( \
                       SELECT id FROM sent_tasks \
                        WHERE (status IN ('Queued', 'Failed') AND next_attempt_at <= $1 \
                               AND (lease_until IS NULL OR lease_until < $1)) \
                           OR (status IN ('Sending', 'Retrying') AND lease_until < $1) \
                        ORDER BY created_at, id LIMIT $2 \
                        FOR UPDATE SKIP LOCKED) \
                     UPDATE sent_tasks s SET lease_owner = $3, lease_until = $4 \
                       FROM due WHERE s.id = due.id \
                     RETURNING {CLAIMED_COLUMNS}"
                ),
                &[&now, &limit, &owner, &until],
            )
            .await
            .map_err(pg_err)?;
        let mut claimed = rows.iter().map(decode).collect::<Result<Vec<_>, _>>()?;
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
            "INSERT INTO sent_attempts (task_id, number, started_at, finished_at, outcome, \
             http_status, detail) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (task_id, number) DO UPDATE SET started_at = EXCLUDED.started_at, \
             finished_at = EXCLUDED.finished_at, outcome = EXCLUDED.outcome, \
             http_status = EXCLUDED.http_status, detail = EXCLUDED.detail",
            &[
                &attempt.task_id,
                &count(attempt.number),
                &to_ns(attempt.started_at)?,
                &to_ns(attempt.finished_at)?,
                &attempt.outcome.as_str(),
                &attempt.http_status.map(i32::from),
                &attempt.detail,
            ],
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
                &format!("SELECT {COLUMNS} FROM sent_tasks WHERE id = $1"),
                &[&id],
            )
            .await
            .map_err(pg_err)?;
        rows.first().map(decode).transpose()
    }

    async fn attempts(&self, id: &str) -> Result<Vec<Attempt>, StoreError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT task_id, number, started_at, finished_at, outcome, http_status, detail \
                 FROM sent_attempts WHERE task_id = $1 ORDER BY number",
                &[&id],
            )
            .await
            .map_err(pg_err)?;
        rows.iter().map(decode_attempt).collect()
    }

    async fn list(&self, from_ods: &str, limit: usize) -> Result<Vec<SentTask>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let client = self.client().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {COLUMNS} FROM sent_tasks WHERE from_ods = $1 \
                     ORDER BY created_at DESC, id DESC LIMIT $2"
                ),
                &[&from_ods, &limit],
            )
            .await
            .map_err(pg_err)?;
        rows.iter().map(decode).collect()
    }

    async fn requeue(&self, id: &str, now: Timestamp) -> Result<Option<SentTask>, StoreError> {
        let now = to_ns(now)?;
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err)?;
        let rows = tx
            .query(
                &format!(
                    "UPDATE sent_tasks SET status = 'Queued', next_attempt_at = $2, \
                     updated_at = $2, cycle_attempts = 0, reason = NULL \
                     WHERE id = $1 AND status = 'Failed' AND next_attempt_at IS NULL \
                     RETURNING {COLUMNS}"
                ),
                &[&id, &now],
            )
            .await
            .map_err(pg_err)?;
        let Some(task) = rows.first().map(decode).transpose()? else {
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
                     WHERE status IN ('Queued', 'Failed') AND next_attempt_at IS NOT NULL), \
                   (SELECT MIN(lease_until) FROM sent_tasks \
                     WHERE status IN ('Sending', 'Retrying') AND lease_until IS NOT NULL))",
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
