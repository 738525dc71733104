//! The backend for several instances on one database: PostgreSQL through a
//! small pool of `tokio-postgres` connections.
//!
//! Creates waiting at the same moment share a transaction (`group_commit`),
//! as the SQLite writer's do: each create its own transaction ran at a
//! third of SQLite's rate, bound by round trips. Idempotency rests on the
//! primary key of `task_identifiers`, which every instance shares: a second
//! insert of a key waits for the transaction holding it and, once that
//! commits, finds the first task. Audit records go through a writer thread
//! of their own, so that a request never waits for them. A committed create
//! is announced on the `gpc_received` channel (NOTIFY is delivered only on
//! commit), which `received_events` turns back into events on every instance.

pub(crate) mod audit_writer;
pub(crate) mod codec;
pub(crate) mod connection;
mod group_commit;
pub(crate) mod listener;
pub(crate) mod schema;

use crate::rows::Cell;
use crate::rows::audit::{
    audit_cells, audit_columns, decode_audit, decode_ssp_audit, ssp_audit_columns,
};
use crate::rows::task::{TaskRow, distinct_keys, task_columns};
use crate::rows::timeline::{
    Earlier, decode_earlier, decode_entry, life_cells, not_a_repeat, repeat_query, timeline_cells,
    timeline_columns, timeline_insert_columns,
};
use crate::rows::updates::{
    claim_order, claimable, decode_update, finish_cells, finish_statement, first_pending,
    new_update_cells, update_columns, update_insert_columns, updates_with_entries,
};
use crate::rows::views::inbox_query;
use crate::sessions::{PendingSignIn, WebSession};
use crate::{ChangeOutcome, CreateOutcome, Store, StoreError};
use audit_writer::{AuditWriter, Op};
use connection::{from_ns, is_retryable, pg_err, pool_err, to_ns};
use deadpool_postgres::Pool;
use gpc_domain::audit::{AuditFilter, AuditRecord, SspAuditFilter, SspAuditRecord};
use gpc_domain::lifecycle::{InboxView, TaskChange, TimelineEntry};
use gpc_domain::reference::{Patient, PatientKey, PatientRecord, ReferenceData};
use gpc_domain::task::{BusinessIdentifier, NewTask, ReceivedEvent, ReceivedTask};
use gpc_domain::updates::{OutgoingUpdate, Wire};
use gpc_domain::{Asid, NhsNumber, OdsCode};
use jiff::Timestamp;
use listener::Listener;
use std::sync::LazyLock;
use tokio::sync::broadcast;

/// The channel on which committed creates are announced.
pub const RECEIVED_CHANNEL: &str = "gpc_received";

/// The channel on which committed changes of received tasks are announced.
pub const CHANGED_CHANNEL: &str = "gpc_changed";

/// Connections per instance. A create holds one for a few round trips, so
/// this many serve far more concurrent requests; several instances times
/// this must stay under the server's `max_connections`.
const POOL_SIZE: usize = 16;

/// Whole-transaction repeats after a deadlock or serialisation failure.
const CREATE_TRIES: u32 = 5;

/// Rows per transaction in `bulk_insert`.
const BULK_CHUNK: usize = 2_000;

pub struct PostgresStore {
    pool: Pool,
    creates: group_commit::GroupCommit,
    audit: AuditWriter,
    received: Listener<ReceivedEvent>,
    changed: Listener<ReceivedEvent>,
}

impl PostgresStore {
    /// Connects to `database_url` and migrates the database to this
    /// binary's schema. Instances starting together take turns (an advisory
    /// lock), so each migration happens once. Reference data is the
    /// caller's to write (`Store::upsert_reference`).
    pub async fn connect(database_url: &str) -> Result<Self, StoreError> {
        let config = connection::parse_url(database_url)?;
        let pool = connection::pool(&config, POOL_SIZE)?;
        let version = {
            let mut client = pool.get().await.map_err(pool_err)?;
            let tx = client.transaction().await.map_err(pg_err)?;
            let version = schema::migrate(&tx, "store", schema::STORE).await?;
            tx.commit().await.map_err(pg_err)?;
            version
        };
        let audit = AuditWriter::spawn(config.clone())?;
        let received = Listener::new(config.clone(), RECEIVED_CHANNEL, parse_received);
        let changed = Listener::new(config.clone(), CHANGED_CHANNEL, parse_received);
        // The URL may hold a password: only the database name is logged.
        tracing::info!(
            database = config.get_dbname().unwrap_or_default(),
            schema_version = version,
            "store opened on PostgreSQL"
        );
        Ok(Self {
            creates: group_commit::GroupCommit::spawn(pool.clone()),
            pool,
            audit,
            received,
            changed,
        })
    }

    /// Like `received_events`, and waits until the `LISTEN` is in place, so
    /// that every create committed after this returns is seen.
    pub async fn received_events_ready(
        &self,
    ) -> Result<broadcast::Receiver<ReceivedEvent>, StoreError> {
        self.received.subscribe_ready().await
    }

    /// Like `changed_events`, and waits until the `LISTEN` is in place.
    pub async fn changed_events_ready(
        &self,
    ) -> Result<broadcast::Receiver<ReceivedEvent>, StoreError> {
        self.changed.subscribe_ready().await
    }

    /// Fast path for benchmarks: inserts many tasks in large transactions,
    /// without audit, without notifications and without the idempotency
    /// look-up. A key already held keeps pointing at its first task. Each
    /// chunk commits on its own: after an error, the chunks before it stay.
    pub async fn bulk_insert(&self, tasks: Vec<NewTask>) -> Result<(), StoreError> {
        let mut remaining = tasks.into_iter();
        loop {
            let chunk: Vec<TaskRow> = remaining
                .by_ref()
                .take(BULK_CHUNK)
                .map(TaskRow::new)
                .collect::<Result<_, _>>()?;
            if chunk.is_empty() {
                return Ok(());
            }
            let mut client = self.pool.get().await.map_err(pool_err)?;
            let tx = client.transaction().await.map_err(pg_err)?;
            let insert = tx
                .prepare_cached(codec::INSERT_TASK)
                .await
                .map_err(pg_err)?;
            let insert_key = tx.prepare_cached(INSERT_KEY).await.map_err(pg_err)?;
            for e in &chunk {
                tx.execute(&insert, &codec::params(&e.cells()))
                    .await
                    .map_err(pg_err)?;
                for key in distinct_keys(&e.task) {
                    tx.execute(&insert_key, &codec::params(&key_params(&e.task, key)))
                        .await
                        .map_err(pg_err)?;
                }
            }
            tx.commit().await.map_err(pg_err)?;
        }
    }
}

/// One create in a transaction of its own, tried again after a
/// deadlock or a serialisation failure.
async fn create_alone(
    pool: &Pool,
    task: &TaskRow,
    audit: &AuditRecord,
) -> Result<CreateOutcome, StoreError> {
    let mut tries = 0;
    loop {
        tries += 1;
        match try_create(pool, task, audit).await {
            Ok(Some(outcome)) => return Ok(outcome),
            // A key was held but no task holds it: tasks are never
            // deleted, so only a corrupt store answers so every time.
            Ok(None) if tries >= CREATE_TRIES => {
                return Err(StoreError::Corrupt(
                    "an identifier points to a missing task".into(),
                ));
            }
            Ok(None) => {}
            Err(Failure::Retry(e)) if tries < CREATE_TRIES => {
                tracing::debug!(error = %pg_err(e), tries, "create repeated");
            }
            Err(Failure::Retry(e)) => return Err(pg_err(e)),
            Err(Failure::Final(e)) => return Err(e),
        }
    }
}

/// One try of `create_task`; `None` when it must be tried again.
async fn try_create(
    pool: &Pool,
    task: &TaskRow,
    audit: &AuditRecord,
) -> Result<Option<CreateOutcome>, Failure> {
    let t = &task.task.task;
    let mut client = pool.get().await.map_err(|e| Failure::Final(pool_err(e)))?;
    let tx = client.transaction().await?;
    let insert_key = tx.prepare_cached(INSERT_KEY).await?;
    // Keys go in a fixed order, so that two creates sharing two keys
    // wait for each other instead of deadlocking.
    let mut keys = distinct_keys(t);
    keys.sort_by(|a, b| (&a.system, &a.value).cmp(&(&b.system, &b.value)));
    for key in keys {
        // A key inserted by a transaction still open makes this wait for
        // it; then 0 rows if it committed, 1 if it rolled back.
        if tx
            .execute(&insert_key, &codec::params(&key_params(t, key)))
            .await?
            == 0
        {
            tx.rollback().await?;
            let holder = first_holder(&client, t).await?;
            return Ok(holder.map(CreateOutcome::Existing));
        }
    }
    let insert_task = tx.prepare_cached(codec::INSERT_TASK).await?;
    let insert_audit = tx.prepare_cached(INSERT_AUDIT).await?;
    let payload = received_payload(&t.tenant, &t.id);
    let task_cells = task.cells();
    let task_params = codec::params(&task_cells);
    let audit_cells = audit_cells(audit).map_err(Failure::Final)?;
    let audit_params = codec::params(&audit_cells);
    let notify_params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] =
        [&RECEIVED_CHANNEL, &payload];
    // Sent together: one round trip for the three.
    tokio::try_join!(
        tx.execute(&insert_task, &task_params),
        tx.execute(&insert_audit, &audit_params),
        tx.execute("SELECT pg_notify($1, $2)", &notify_params),
    )?;
    tx.commit().await?;
    Ok(Some(CreateOutcome::Created(task.task.clone())))
}

/// Why one try of a create failed: whether trying again may help.
enum Failure {
    Retry(tokio_postgres::Error),
    Final(StoreError),
}

impl From<tokio_postgres::Error> for Failure {
    fn from(e: tokio_postgres::Error) -> Self {
        if is_retryable(&e) {
            Failure::Retry(e)
        } else {
            Failure::Final(pg_err(e))
        }
    }
}

/// The stored task holding the first of `t`'s keys that is held, in the
/// order the keys came, as the SQLite backend answers.
async fn first_holder(
    client: &tokio_postgres::Client,
    t: &NewTask,
) -> Result<Option<ReceivedTask>, Failure> {
    let sender = t.provenance.sender_asid.as_str();
    for key in &t.idempotency_keys {
        let rows = client
            .query(
                FIND_BY_IDENTIFIER,
                &[&t.tenant.as_str(), &sender, &key.system, &key.value],
            )
            .await?;
        if let Some(row) = rows.first() {
            return codec::decode_task(row).map(Some).map_err(Failure::Final);
        }
    }
    Ok(None)
}

/// 0 rows when the key is held: the caller then reads its holder.
const INSERT_KEY: &str = "INSERT INTO task_identifiers (tenant, sender_asid, system, value, \
     task_id) VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING";

const INSERT_AUDIT: &str = concat!(
    "INSERT INTO audit (",
    audit_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
);

const FIND_BY_IDENTIFIER: &str = concat!(
    "SELECT ",
    task_columns!(),
    " FROM tasks WHERE id = (SELECT task_id FROM task_identifiers \
     WHERE tenant = $1 AND sender_asid = $2 AND system = $3 AND value = $4)"
);

fn key_params<'a>(t: &'a NewTask, key: &'a BusinessIdentifier) -> [Cell<'a>; 5] {
    [
        Cell::Text(t.tenant.as_str()),
        Cell::Text(t.provenance.sender_asid.as_str()),
        Cell::Text(&key.system),
        Cell::Text(&key.value),
        Cell::Text(&t.id),
    ]
}

/// Ids only: a notification is visible to every session of the database.
fn received_payload(tenant: &OdsCode, task_id: &str) -> String {
    serde_json::json!([tenant.as_str(), task_id]).to_string()
}

/// The change this tenant made for an arriving update with `identifier`, if any.
async fn earlier_change(
    tx: &deadpool_postgres::Transaction<'_>,
    tenant: &OdsCode,
    identifier: &str,
) -> Result<Option<Earlier>, StoreError> {
    let rows = tx
        .query(repeat_query!("$1", "$2"), &[&tenant.as_str(), &identifier])
        .await
        .map_err(pg_err)?;
    rows.first().map(decode_earlier).transpose()
}

/// The answer to a repeat: the task the first arrival changed, as it is now.
async fn repeat(
    tx: &deadpool_postgres::Transaction<'_>,
    tenant: &OdsCode,
    current: ReceivedTask,
    earlier: Earlier,
) -> Result<ChangeOutcome, StoreError> {
    let body = earlier.body.ok_or_else(not_a_repeat)?;
    let task = if earlier.task_id == current.id {
        current
    } else {
        let rows = tx
            .query(
                concat!(
                    "SELECT ",
                    task_columns!(),
                    " FROM tasks WHERE id = $1 AND tenant = $2"
                ),
                &[&earlier.task_id, &tenant.as_str()],
            )
            .await
            .map_err(pg_err)?;
        rows.first()
            .map(codec::decode_task)
            .transpose()?
            .ok_or_else(|| StoreError::Corrupt("a timeline row of a missing task".into()))?
    };
    Ok(ChangeOutcome::Repeat {
        task,
        entry: earlier.entry,
        body,
    })
}

/// Chooses the due updates and leases them in one statement. The rows are
/// locked as they are chosen and skipped when another claim holds them, so
/// concurrent claims on any instances never share an update; a lower
/// version locked by another claim is still pending, so the versions above
/// it are not claimable either (`first_pending!`).
const CLAIM_UPDATES: &str = concat!(
    "WITH due AS (SELECT u.identifier AS due_id FROM task_updates u WHERE ",
    claimable!("$1"),
    " ORDER BY ",
    claim_order!(),
    " LIMIT $2 FOR UPDATE OF u SKIP LOCKED) \
     UPDATE task_updates u SET lease_owner = $3, lease_until = $4 \
       FROM due, task_timeline l \
      WHERE u.identifier = due.due_id \
        AND l.tenant = u.tenant AND l.task_id = u.task_id AND l.version = u.version \
     RETURNING ",
    update_columns!()
);

/// Records an attempt and, when it was this worker's to record, tells the
/// task's open pages on every instance whether the sender heard: one
/// statement, so the NOTIFY goes with the change's commit and costs no
/// transaction of its own. The payload is `received_payload`'s shape.
static FINISH_UPDATE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH finished AS ({} RETURNING tenant, task_id) \
         SELECT pg_notify('{CHANGED_CHANNEL}', json_build_array(tenant, task_id)::text) \
           FROM finished",
        finish_statement(|n| format!("${n}"))
    )
});

/// A notification names one task, `[tenant, id]`, or those of a batch,
/// `[[tenant, id], ...]` (`received_batch_payloads`).
fn parse_received(payload: &str) -> Option<Vec<ReceivedEvent>> {
    let event = |(tenant, task_id): (String, String)| {
        Some(ReceivedEvent {
            tenant: OdsCode::parse(&tenant)?,
            task_id,
        })
    };
    if let Ok(one) = serde_json::from_str::<(String, String)>(payload) {
        return Some(vec![event(one)?]);
    }
    let many: Vec<(String, String)> = serde_json::from_str(payload).ok()?;
    many.into_iter().map(event).collect()
}

/// The payloads announcing the tasks `(tenant, id)` of one batch: as few
/// as fit under PostgreSQL's 8,000-byte limit of a payload.
fn received_batch_payloads<'a>(tasks: impl Iterator<Item = (&'a OdsCode, &'a str)>) -> Vec<String> {
    const MAX_PAYLOAD: usize = 7_000;
    let mut payloads = Vec::new();
    let mut current: Vec<serde_json::Value> = Vec::new();
    let mut size = 2;
    for (tenant, id) in tasks {
        let entry = serde_json::json!([tenant.as_str(), id]);
        let len = entry.to_string().len() + 1;
        if !current.is_empty() && size + len > MAX_PAYLOAD {
            payloads.push(serde_json::Value::Array(std::mem::take(&mut current)).to_string());
            size = 2;
        }
        size += len;
        current.push(entry);
    }
    if !current.is_empty() {
        payloads.push(serde_json::Value::Array(current).to_string());
    }
    payloads
}

#[async_trait::async_trait]
impl Store for PostgresStore {
    async fn reference_data(&self) -> Result<ReferenceData, StoreError> {
        let client = self.pool.get().await.map_err(pool_err)?;
        codec::read_reference(&**client).await
    }

    async fn reference_index(&self) -> Result<ReferenceData, StoreError> {
        let client = self.pool.get().await.map_err(pool_err)?;
        codec::read_reference_index(&**client).await
    }

    async fn reference_version(&self) -> Result<i64, StoreError> {
        let client = self.pool.get().await.map_err(pool_err)?;
        codec::reference_version(&**client).await
    }

    async fn reference_counts(&self) -> Result<[u64; 5], StoreError> {
        let client = self.pool.get().await.map_err(pool_err)?;
        codec::reference_counts(&**client).await
    }

    async fn patient(&self, nhs: &NhsNumber) -> Result<Option<Patient>, StoreError> {
        let client = self.pool.get().await.map_err(pool_err)?;
        codec::patient(&client, &nhs.as_digits()).await
    }

    async fn patient_record(
        &self,
        holder: &OdsCode,
        key: PatientKey<'_>,
    ) -> Result<Option<(Patient, PatientRecord)>, StoreError> {
        let client = self.pool.get().await.map_err(pool_err)?;
        let (key, by_nhs) = match key {
            PatientKey::Id(id) => (id.to_owned(), false),
            PatientKey::Nhs(nhs) => (nhs.as_digits(), true),
        };
        codec::patient_record(&client, holder.as_str(), &key, by_nhs).await
    }

    async fn upsert_reference(&self, data: &ReferenceData) -> Result<(), StoreError> {
        let mut client = self.pool.get().await.map_err(pool_err)?;
        let tx = client.transaction().await.map_err(pg_err)?;
        codec::upsert_reference(&*tx, data).await?;
        tx.commit().await.map_err(pg_err)
    }

    async fn create_serialised(
        &self,
        task: NewTask,
        resource_json: String,
        audit: AuditRecord,
    ) -> Result<CreateOutcome, StoreError> {
        let task = TaskRow::with_json(task, resource_json)?;
        let (reply, answer) = tokio::sync::oneshot::channel();
        if let Err(job) = self
            .creates
            .send(Box::new(group_commit::Job { task, audit, reply }))
        {
            return create_alone(&self.pool, &job.task, &job.audit).await;
        }
        answer
            .await
            .map_err(|_| StoreError::Busy("the create was dropped unanswered".into()))?
    }

    async fn find_by_identifier(
        &self,
        tenant: &OdsCode,
        sender_asid: &Asid,
        key: &BusinessIdentifier,
    ) -> Result<Option<ReceivedTask>, StoreError> {
        let (tenant, sender_asid) = (tenant.as_str(), sender_asid.as_str());
        let client = self.pool.get().await.map_err(pool_err)?;
        let stmt = client
            .prepare_cached(FIND_BY_IDENTIFIER)
            .await
            .map_err(pg_err)?;
        let rows = client
            .query(&stmt, &[&tenant, &sender_asid, &key.system, &key.value])
            .await
            .map_err(pg_err)?;
        rows.first().map(codec::decode_task).transpose()
    }

    async fn get_task(
        &self,
        tenant: &OdsCode,
        id: &str,
    ) -> Result<Option<ReceivedTask>, StoreError> {
        let tenant = tenant.as_str();
        let client = self.pool.get().await.map_err(pool_err)?;
        let stmt = client
            .prepare_cached(concat!(
                "SELECT ",
                task_columns!(),
                " FROM tasks WHERE id = $1 AND tenant = $2"
            ))
            .await
            .map_err(pg_err)?;
        let rows = client.query(&stmt, &[&id, &tenant]).await.map_err(pg_err)?;
        rows.first().map(codec::decode_task).transpose()
    }

    async fn inbox_view(
        &self,
        tenant: &OdsCode,
        view: &InboxView,
        limit: usize,
        before: Option<(Timestamp, String)>,
    ) -> Result<Vec<ReceivedTask>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let before = match &before {
            Some((ts, id)) => Some((to_ns(*ts)?, id.as_str())),
            None => None,
        };
        let (sql, cells) = inbox_query(tenant.as_str(), view, limit, before, |n| format!("${n}"));
        let client = self.pool.get().await.map_err(pool_err)?;
        let stmt = client.prepare_cached(&sql).await.map_err(pg_err)?;
        let rows = client
            .query(&stmt, &codec::params(&cells))
            .await
            .map_err(pg_err)?;
        codec::decode_tasks(&rows)
    }

    async fn change_task(
        &self,
        tenant: &OdsCode,
        id: &str,
        change: TaskChange,
    ) -> Result<Option<ChangeOutcome>, StoreError> {
        let mut client = self.pool.get().await.map_err(pool_err)?;
        let tx = client.transaction().await.map_err(pg_err)?;
        // The row lock makes a second change (this instance's or another's)
        // wait here, then read what the first one left.
        let rows = tx
            .query(
                concat!(
                    "SELECT ",
                    task_columns!(),
                    " FROM tasks WHERE id = $1 AND tenant = $2 FOR UPDATE"
                ),
                &[&id, &tenant.as_str()],
            )
            .await
            .map_err(pg_err)?;
        let Some(current) = rows.first().map(codec::decode_task).transpose()? else {
            return Ok(None);
        };
        // Under the task's lock, so that a repeat arriving at once waits for
        // the first and then finds it; and before the rules, so that a
        // repeat of a cancellation that made the task final gets its first
        // answer, not a refusal.
        if let Wire::Incoming(received) = &change.wire
            && let Some(earlier) = earlier_change(&tx, tenant, &received.identifier).await?
        {
            return repeat(&tx, tenant, current, earlier).await.map(Some);
        }
        let (life, entry) = match change.apply_to(&current.life) {
            Ok(applied) => applied,
            Err(refusal) => {
                return Ok(Some(ChangeOutcome::Refused {
                    refusal,
                    task: current,
                }));
            }
        };
        let life_params = life_cells(id, &life, current.life.version);
        let updated = tx
            .execute(
                "UPDATE tasks SET state = $1, version = $2, owner_sds_id = $3, owner_name = $4 \
                 WHERE id = $5 AND version = $6",
                &codec::params(&life_params),
            )
            .await
            .map_err(pg_err)?;
        if updated != 1 {
            return Err(StoreError::Corrupt(
                "a locked task changed in its own transaction".into(),
            ));
        }
        let entry_params = timeline_cells(&current, &entry, &change.wire)?;
        tx.execute(
            concat!(
                "INSERT INTO task_timeline (",
                timeline_insert_columns!(),
                ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
            ),
            &codec::params(&entry_params),
        )
        .await
        .map_err(pg_err)?;
        if change.notifies_sender() {
            let update_params =
                new_update_cells(&current, &entry, change.wire.identifier(), change.at)?;
            tx.execute(
                concat!(
                    "INSERT INTO task_updates (",
                    update_insert_columns!(),
                    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
                ),
                &codec::params(&update_params),
            )
            .await
            .map_err(pg_err)?;
        }
        // Delivered only on commit, so a change rolled back announces nothing.
        tx.execute(
            "SELECT pg_notify($1, $2)",
            &[&CHANGED_CHANNEL, &received_payload(tenant, id)],
        )
        .await
        .map_err(pg_err)?;
        tx.commit().await.map_err(pg_err)?;
        crate::metrics::record_transition(current.life.state, life.state);
        let task = ReceivedTask {
            task: current.task,
            life,
        };
        Ok(Some(ChangeOutcome::Changed { task, entry }))
    }

    async fn claim_updates(
        &self,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: usize,
    ) -> Result<Vec<OutgoingUpdate>, StoreError> {
        let (now, until) = (to_ns(now)?, to_ns(lease_until)?);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let client = self.pool.get().await.map_err(pool_err)?;
        let stmt = client.prepare_cached(CLAIM_UPDATES).await.map_err(pg_err)?;
        let rows = client
            .query(&stmt, &[&now, &limit, &owner, &until])
            .await
            .map_err(pg_err)?;
        let mut claimed = rows
            .iter()
            .map(decode_update)
            .collect::<Result<Vec<_>, _>>()?;
        // RETURNING keeps no order: the claim order is restored here.
        claimed.sort_by(|a, b| {
            (a.created_at, a.entry.version, &a.identifier).cmp(&(
                b.created_at,
                b.entry.version,
                &b.identifier,
            ))
        });
        Ok(claimed)
    }

    async fn finish_update(
        &self,
        owner: &str,
        update: &OutgoingUpdate,
    ) -> Result<bool, StoreError> {
        let cells = finish_cells(owner, update)?;
        let client = self.pool.get().await.map_err(pool_err)?;
        let stmt = client
            .prepare_cached(&FINISH_UPDATE)
            .await
            .map_err(pg_err)?;
        let finished = client
            .query(&stmt, &codec::params(&cells))
            .await
            .map_err(pg_err)?;
        Ok(finished.len() == 1)
    }

    async fn waiting_updates(&self) -> Result<Option<u64>, StoreError> {
        let client = self.pool.get().await.map_err(pool_err)?;
        let row = client
            .query_one(
                "SELECT COUNT(*) FROM task_updates WHERE status = 'pending'",
                &[],
            )
            .await
            .map_err(pg_err)?;
        let count: i64 = row.get(0);
        Ok(Some(u64::try_from(count).unwrap_or(0)))
    }

    async fn next_update_due(&self) -> Result<Option<Timestamp>, StoreError> {
        let client = self.pool.get().await.map_err(pool_err)?;
        // A leased update is due again only when its lease runs out
        // (GREATEST ignores a NULL lease).
        let next: Option<i64> = client
            .query_one(
                concat!(
                    "SELECT MIN(GREATEST(u.next_attempt_at, u.lease_until)) FROM task_updates u \
                     WHERE u.status = 'pending' AND ",
                    first_pending!()
                ),
                &[],
            )
            .await
            .map_err(pg_err)?
            .get(0);
        next.map(connection::from_ns).transpose()
    }

    async fn task_updates(
        &self,
        tenant: &OdsCode,
        id: &str,
    ) -> Result<Vec<OutgoingUpdate>, StoreError> {
        let client = self.pool.get().await.map_err(pool_err)?;
        let rows = client
            .query(
                concat!(
                    updates_with_entries!(),
                    " WHERE u.tenant = $1 AND u.task_id = $2 ORDER BY u.version"
                ),
                &[&tenant.as_str(), &id],
            )
            .await
            .map_err(pg_err)?;
        rows.iter().map(decode_update).collect()
    }

    async fn timeline(&self, tenant: &OdsCode, id: &str) -> Result<Vec<TimelineEntry>, StoreError> {
        let client = self.pool.get().await.map_err(pool_err)?;
        let rows = client
            .query(
                concat!(
                    "SELECT ",
                    timeline_columns!(),
                    " FROM task_timeline WHERE task_id = $1 AND tenant = $2 ORDER BY version"
                ),
                &[&id, &tenant.as_str()],
            )
            .await
            .map_err(pg_err)?;
        rows.iter().map(decode_entry).collect()
    }

    async fn start_session(&self, session: &WebSession) -> Result<(), StoreError> {
        let now = to_ns(session.created_at)?;
        let (idle_until, expires_at) = (to_ns(session.idle_until)?, to_ns(session.expires_at)?);
        let mut client = self.pool.get().await.map_err(pool_err)?;
        let tx = client.transaction().await.map_err(pg_err)?;
        tx.execute(
            "DELETE FROM web_sessions WHERE idle_until <= $1 OR expires_at <= $1",
            &[&now],
        )
        .await
        .map_err(pg_err)?;
        tx.execute(
            "DELETE FROM pending_sign_ins WHERE expires_at <= $1",
            &[&now],
        )
        .await
        .map_err(pg_err)?;
        tx.execute(
            "INSERT INTO web_sessions (key, \"user\", created_at, idle_until, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
            &[&session.key, &session.user, &now, &idle_until, &expires_at],
        )
        .await
        .map_err(pg_err)?;
        tx.commit().await.map_err(pg_err)
    }

    async fn resume_session(
        &self,
        key: &str,
        now: Timestamp,
        idle: std::time::Duration,
    ) -> Result<Option<WebSession>, StoreError> {
        let idle_until = to_ns(crate::sessions::later(now, idle))?;
        let now = to_ns(now)?;
        let client = self.pool.get().await.map_err(pool_err)?;
        let row = client
            .query_opt(
                "UPDATE web_sessions SET idle_until = LEAST($3, expires_at) \
                 WHERE key = $1 AND idle_until > $2 AND expires_at > $2 \
                 RETURNING \"user\", created_at, idle_until, expires_at",
                &[&key, &now, &idle_until],
            )
            .await
            .map_err(pg_err)?;
        let Some(row) = row else {
            // Ended or unknown: an ended one is of no more use to anyone.
            client
                .execute("DELETE FROM web_sessions WHERE key = $1", &[&key])
                .await
                .map_err(pg_err)?;
            return Ok(None);
        };
        Ok(Some(WebSession {
            key: key.to_owned(),
            user: row.get(0),
            created_at: from_ns(row.get(1))?,
            idle_until: from_ns(row.get(2))?,
            expires_at: from_ns(row.get(3))?,
        }))
    }

    async fn end_session(&self, key: &str) -> Result<bool, StoreError> {
        let client = self.pool.get().await.map_err(pool_err)?;
        let n = client
            .execute("DELETE FROM web_sessions WHERE key = $1", &[&key])
            .await
            .map_err(pg_err)?;
        Ok(n > 0)
    }

    async fn save_sign_in(&self, sign_in: &PendingSignIn) -> Result<(), StoreError> {
        let expires_at = to_ns(sign_in.expires_at)?;
        let client = self.pool.get().await.map_err(pool_err)?;
        client
            .execute(
                "INSERT INTO pending_sign_ins (key, body, expires_at) VALUES ($1, $2, $3)",
                &[&sign_in.key, &sign_in.body, &expires_at],
            )
            .await
            .map_err(pg_err)?;
        Ok(())
    }

    async fn take_sign_in(
        &self,
        key: &str,
        now: Timestamp,
    ) -> Result<Option<PendingSignIn>, StoreError> {
        let now = to_ns(now)?;
        let client = self.pool.get().await.map_err(pool_err)?;
        let row = client
            .query_opt(
                "DELETE FROM pending_sign_ins WHERE key = $1 RETURNING body, expires_at",
                &[&key],
            )
            .await
            .map_err(pg_err)?;
        row.filter(|r| r.get::<_, i64>(1) > now)
            .map(|r| {
                Ok(PendingSignIn {
                    key: key.to_owned(),
                    body: r.get(0),
                    expires_at: from_ns(r.get(1))?,
                })
            })
            .transpose()
    }

    async fn count_tasks(&self, tenant: &OdsCode) -> Result<u64, StoreError> {
        let tenant = tenant.as_str();
        let client = self.pool.get().await.map_err(pool_err)?;
        let stmt = client
            .prepare_cached("SELECT COUNT(*) FROM tasks WHERE tenant = $1")
            .await
            .map_err(pg_err)?;
        let n: i64 = client
            .query_one(&stmt, &[&tenant])
            .await
            .map_err(pg_err)?
            .get(0);
        Ok(n.unsigned_abs())
    }

    fn record_audit(&self, record: AuditRecord) {
        if self.audit.send(Op::Audit(record)).is_err() {
            tracing::warn!("audit record dropped: the audit writer has stopped");
        }
    }

    async fn audit(&self, filter: AuditFilter) -> Result<Vec<AuditRecord>, StoreError> {
        let since = filter.since.map(to_ns).transpose()?;
        // LIMIT NULL is no limit.
        let limit = match filter.limit {
            0 => None,
            n => Some(i64::try_from(n).unwrap_or(i64::MAX)),
        };
        let tenant = filter.tenant;
        // One literal per filter shape, so that each uses its index; the
        // `IS NULL` terms only keep the three parameters bindable in all.
        let sql = match (&tenant, since) {
            (None, None) => concat!(
                "SELECT ",
                audit_columns!(),
                " FROM audit WHERE $1::text IS NULL AND $2::bigint IS NULL \
                 ORDER BY time DESC, seq DESC LIMIT $3"
            ),
            (Some(_), None) => concat!(
                "SELECT ",
                audit_columns!(),
                " FROM audit WHERE tenant = $1 AND $2::bigint IS NULL \
                 ORDER BY time DESC, seq DESC LIMIT $3"
            ),
            (None, Some(_)) => concat!(
                "SELECT ",
                audit_columns!(),
                " FROM audit WHERE $1::text IS NULL AND time >= $2 \
                 ORDER BY time DESC, seq DESC LIMIT $3"
            ),
            (Some(_), Some(_)) => concat!(
                "SELECT ",
                audit_columns!(),
                " FROM audit WHERE tenant = $1 AND time >= $2 \
                 ORDER BY time DESC, seq DESC LIMIT $3"
            ),
        };
        let client = self.pool.get().await.map_err(pool_err)?;
        let stmt = client.prepare_cached(sql).await.map_err(pg_err)?;
        let rows = client
            .query(&stmt, &[&tenant, &since, &limit])
            .await
            .map_err(pg_err)?;
        rows.iter().map(decode_audit).collect()
    }

    fn record_ssp_audit(&self, record: SspAuditRecord) {
        if self.audit.send(Op::Ssp(record)).is_err() {
            tracing::warn!("SSP audit record dropped: the audit writer has stopped");
        }
    }

    async fn ssp_audit(&self, filter: SspAuditFilter) -> Result<Vec<SspAuditRecord>, StoreError> {
        let since = filter.since.map(to_ns).transpose()?;
        let limit = match filter.limit {
            0 => None,
            n => Some(i64::try_from(n).unwrap_or(i64::MAX)),
        };
        let sql = match since {
            None => concat!(
                "SELECT ",
                ssp_audit_columns!(),
                " FROM ssp_audit WHERE $1::bigint IS NULL ORDER BY time DESC, seq DESC LIMIT $2"
            ),
            Some(_) => concat!(
                "SELECT ",
                ssp_audit_columns!(),
                " FROM ssp_audit WHERE time >= $1 ORDER BY time DESC, seq DESC LIMIT $2"
            ),
        };
        let client = self.pool.get().await.map_err(pool_err)?;
        let stmt = client.prepare_cached(sql).await.map_err(pg_err)?;
        let rows = client
            .query(&stmt, &[&since, &limit])
            .await
            .map_err(pg_err)?;
        rows.iter().map(decode_ssp_audit).collect()
    }

    async fn flush(&self) -> Result<(), StoreError> {
        self.audit.flush().await
    }

    async fn notify_received(&self, tenant: &OdsCode, task_id: &str) {
        let payload = received_payload(tenant, task_id);
        let sent = match self.pool.get().await {
            Ok(client) => client
                .execute("SELECT pg_notify($1, $2)", &[&RECEIVED_CHANNEL, &payload])
                .await
                .map(drop)
                .map_err(pg_err),
            Err(e) => Err(pool_err(e)),
        };
        if let Err(e) = sent {
            tracing::warn!(error = %e, "received-task notification not sent");
        }
    }

    fn received_events(&self) -> Option<broadcast::Receiver<ReceivedEvent>> {
        Some(self.received.subscribe())
    }

    fn changed_events(&self) -> Option<broadcast::Receiver<ReceivedEvent>> {
        Some(self.changed.subscribe())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_is_announced_in_payloads_under_the_limit_and_read_back_whole() {
        let tenant = OdsCode::parse("GPC001").unwrap();
        let ids: Vec<String> = (0..500)
            .map(|i| format!("0190d5a4-7b1c-7e2a-9c3d-{i:012}"))
            .collect();
        let payloads = received_batch_payloads(ids.iter().map(|id| (&tenant, id.as_str())));
        assert!(payloads.len() > 1, "500 tasks do not fit one payload");
        assert!(payloads.iter().all(|p| p.len() < 8_000));
        let read: Vec<String> = payloads
            .iter()
            .flat_map(|p| parse_received(p).expect("a readable payload"))
            .map(|e| {
                assert_eq!(e.tenant, tenant);
                e.task_id
            })
            .collect();
        assert_eq!(read, ids);
        // One task, as a change announces it.
        let one = parse_received(&received_payload(&tenant, "x")).unwrap();
        assert_eq!(one.len(), 1);
        assert!(parse_received("[[\"not an ODS code!\", \"x\"]]").is_none());
    }
}
