//! Audit records off the request path: queued without waiting, written by a
//! thread of its own in batches (one INSERT per table per batch). A thread
//! with its own runtime and connection, rather than a task, so that dropping
//! the store can wait for the queue to be written, as the SQLite writer does,
//! whichever runtime the store was made in.

use super::connection::{pg_err, to_ns};
use crate::StoreError;
use crate::rows::audit::{audit_columns, ssp_audit_columns};
use gpc_domain::audit::{AuditRecord, SspAuditRecord};
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::{Client, Config, NoTls};

/// Enough to amortise a commit, small enough to keep one INSERT's arrays modest.
const MAX_BATCH: usize = 1024;

/// Tries per batch before its records are given up, with a pause between.
const TRIES: u32 = 3;
const RETRY_PAUSE: Duration = Duration::from_millis(500);

pub(super) enum Op {
    Audit(AuditRecord),
    Ssp(SspAuditRecord),
    Flush(oneshot::Sender<Result<(), StoreError>>),
}

/// Dropping it lets the thread write what is queued and stop.
pub(super) struct AuditWriter {
    tx: Option<mpsc::UnboundedSender<Op>>,
    thread: Option<JoinHandle<()>>,
}

impl AuditWriter {
    pub fn spawn(config: Config) -> Result<Self, StoreError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StoreError::Other(format!("cannot start the audit writer: {e}")))?;
        let thread = std::thread::Builder::new()
            .name("gpc-audit-writer".into())
            .spawn(move || runtime.block_on(run(config, rx)))
            .map_err(|e| StoreError::Other(format!("cannot start the audit writer: {e}")))?;
        Ok(Self {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    pub fn send(&self, op: Op) -> Result<(), StoreError> {
        match &self.tx {
            Some(tx) => tx.send(op).map_err(|_| stopped()),
            None => Err(stopped()),
        }
    }

    /// Waits until every record queued before this call is committed.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.send(Op::Flush(reply))?;
        answer.await.map_err(|_| stopped())?
    }
}

impl Drop for AuditWriter {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("audit writer thread panicked");
        }
    }
}

fn stopped() -> StoreError {
    StoreError::Busy("the audit writer has stopped".into())
}

async fn run(config: Config, mut rx: mpsc::UnboundedReceiver<Op>) {
    let mut client: Option<Client> = None;
    // `recv` keeps returning queued ops after the sender is dropped and ends
    // only once the queue is empty, so shutdown writes everything queued.
    while let Some(first) = rx.recv().await {
        let mut audits = Vec::new();
        let mut ssp = Vec::new();
        let mut flushes = Vec::new();
        let mut next = Some(first);
        let mut taken = 0;
        while let Some(op) = next.take() {
            match op {
                Op::Audit(r) => audits.push(r),
                Op::Ssp(r) => ssp.push(r),
                Op::Flush(reply) => flushes.push(reply),
            }
            taken += 1;
            if taken < MAX_BATCH {
                next = rx.try_recv().ok();
            }
        }
        let mut result = Ok(());
        if !audits.is_empty() || !ssp.is_empty() {
            for attempt in 1..=TRIES {
                result = write(&config, &mut client, &audits, &ssp).await;
                match &result {
                    Ok(()) => break,
                    Err(e) => {
                        // The connection may be the cause: the next try makes a new one.
                        client = None;
                        tracing::warn!(error = %e, attempt, "audit batch not written");
                        if attempt < TRIES {
                            tokio::time::sleep(RETRY_PAUSE).await;
                        }
                    }
                }
            }
            if result.is_err() {
                tracing::error!(count = audits.len() + ssp.len(), "audit records lost");
            }
        }
        for reply in flushes {
            let _ = reply.send(result.clone());
        }
    }
    tracing::debug!("audit writer stopped");
}

async fn write(
    config: &Config,
    client: &mut Option<Client>,
    audits: &[AuditRecord],
    ssp: &[SspAuditRecord],
) -> Result<(), StoreError> {
    let client = match client {
        Some(c) if !c.is_closed() => c,
        slot => {
            let (c, connection) = config.connect(NoTls).await.map_err(pg_err)?;
            tokio::spawn(async move {
                if let Err(e) = connection.await {
                    tracing::warn!(error = %e, "audit writer connection closed");
                }
            });
            slot.insert(c)
        }
    };
    let tx = client.transaction().await.map_err(pg_err)?;
    if !audits.is_empty() {
        insert_audits(&tx, audits).await?;
    }
    if !ssp.is_empty() {
        insert_ssp(&tx, ssp).await?;
    }
    tx.commit().await.map_err(pg_err)
}

/// One statement for the whole batch: the records travel as one array per
/// column and are inserted in their queue order, which is the `seq` order.
async fn insert_audits(
    tx: &tokio_postgres::Transaction<'_>,
    records: &[AuditRecord],
) -> Result<(), StoreError> {
    let time = records
        .iter()
        .map(|r| to_ns(r.time))
        .collect::<Result<Vec<_>, _>>()?;
    let col = |f: fn(&AuditRecord) -> &str| records.iter().map(f).collect::<Vec<_>>();
    let opt = |f: fn(&AuditRecord) -> Option<&str>| records.iter().map(f).collect::<Vec<_>>();
    let status: Vec<i32> = records.iter().map(|r| i32::from(r.status)).collect();
    tx.execute(
        concat!(
            "INSERT INTO audit (",
            audit_columns!(),
            ") SELECT ",
            audit_columns!(),
            " FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], \
             $6::text[], $7::text[], $8::text[], $9::text[], $10::text[], $11::int[], \
             $12::text[], $13::text[]) WITH ORDINALITY AS r(",
            audit_columns!(),
            ", n) ORDER BY n"
        ),
        &[
            &time,
            &col(|r| &r.tenant),
            &opt(|r| r.trace_id.as_deref()),
            &opt(|r| r.from_asid.as_deref()),
            &opt(|r| r.to_asid.as_deref()),
            &opt(|r| r.interaction.as_deref()),
            &col(|r| &r.method),
            &col(|r| &r.path),
            &opt(|r| r.practitioner_sds_id.as_deref()),
            &opt(|r| r.organisation_ods.as_deref()),
            &status,
            &opt(|r| r.error_code.as_deref()),
            &opt(|r| r.task_id.as_deref()),
        ],
    )
    .await
    .map_err(pg_err)?;
    Ok(())
}

async fn insert_ssp(
    tx: &tokio_postgres::Transaction<'_>,
    records: &[SspAuditRecord],
) -> Result<(), StoreError> {
    let time = records
        .iter()
        .map(|r| to_ns(r.time))
        .collect::<Result<Vec<_>, _>>()?;
    let col = |f: fn(&SspAuditRecord) -> &str| records.iter().map(f).collect::<Vec<_>>();
    let opt = |f: fn(&SspAuditRecord) -> Option<&str>| records.iter().map(f).collect::<Vec<_>>();
    let status: Vec<i32> = records.iter().map(|r| i32::from(r.status)).collect();
    let duration: Vec<i64> = records
        .iter()
        .map(|r| i64::try_from(r.duration_us).unwrap_or(i64::MAX))
        .collect();
    tx.execute(
        concat!(
            "INSERT INTO ssp_audit (",
            ssp_audit_columns!(),
            ") SELECT ",
            ssp_audit_columns!(),
            " FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], \
             $6::text[], $7::text[], $8::int[], $9::bigint[], $10::text[]) WITH ORDINALITY AS r(",
            ssp_audit_columns!(),
            ", n) ORDER BY n"
        ),
        &[
            &time,
            &opt(|r| r.trace_id.as_deref()),
            &opt(|r| r.from_asid.as_deref()),
            &opt(|r| r.to_asid.as_deref()),
            &opt(|r| r.interaction.as_deref()),
            &col(|r| &r.method),
            &col(|r| &r.target),
            &status,
            &duration,
            &opt(|r| r.refusal.as_deref()),
        ],
    )
    .await
    .map_err(pg_err)?;
    Ok(())
}
