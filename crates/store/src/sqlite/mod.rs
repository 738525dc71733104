//! The embedded backend: one SQLite file in WAL mode, one writer thread doing
//! group commits, and a few read-only connections for the readers.

pub(crate) mod backup;
mod checkpointer;
mod codec;
mod readers;
pub(crate) mod schema;
pub(crate) mod sessions;
mod writer;

pub use schema::SCHEMA_VERSION;

use crate::rows::audit::{audit_columns, ssp_audit_columns};
use crate::rows::task::{TaskRow, task_columns};
use crate::rows::timeline::{decode_entry, timeline_columns};
use crate::rows::updates::{decode_update, first_pending, updates_with_entries};
use crate::rows::views::inbox_query;
use crate::sessions::{PendingSignIn, WebSession};
use crate::{ChangeOutcome, CreateOutcome, Store, StoreError};
use gpc_domain::audit::{AuditFilter, AuditRecord, SspAuditFilter, SspAuditRecord};
use gpc_domain::lifecycle::{InboxView, TaskChange, TimelineEntry};
use gpc_domain::reference::{Patient, PatientKey, PatientRecord, ReferenceData};
use gpc_domain::task::{BusinessIdentifier, NewTask, ReceivedTask};
use gpc_domain::updates::OutgoingUpdate;
use gpc_domain::{Asid, NhsNumber, OdsCode};
use jiff::Timestamp;
use readers::Readers;
use rusqlite::{Connection, OpenFlags, Params, params, params_from_iter};
use sessions::{SessionAnswer, SessionOp};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use writer::{Op, Writer};

/// A plain descriptor of the database file, which the checkpointer syncs.
/// Closing any descriptor of a file drops every POSIX lock this process holds
/// on it, SQLite's included, and another process could then take the file
/// for its own. So each owner of SQLite connections to the file (the writer
/// thread, the checkpointer thread, the readers) holds a clone and lets go of
/// it only after closing its connections: the descriptor closes after the
/// last of them.
type PlainHandle = Arc<File>;

fn open_plain_handle(path: &Path) -> Result<PlainHandle, StoreError> {
    // Writable only so that syncing it is allowed everywhere; nothing is
    // written through it. Creating an empty file is what SQLite would do.
    File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map(Arc::new)
        .map_err(|e| StoreError::Busy(format!("cannot open the database file: {e}")))
}

/// The database file inside a data directory.
pub const DATABASE_FILE: &str = "gpc-tasks.db";

/// Long enough to ride out a checkpoint or another process's open; short
/// enough that a stuck lock turns into a 503 rather than a hung request.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// WAL pages (32 MiB at the default page size) before the writer checkpoints itself.
const WRITER_CHECKPOINT_PAGES: u32 = 8_000;

/// Large enough to amortise a commit, small enough not to hold up the
/// creates queued behind a bulk load for long.
const BULK_CHUNK: usize = 10_000;

pub struct SqliteStore {
    path: PathBuf,
    readers: Arc<Readers>,
    writer: Writer,
}

impl SqliteStore {
    /// Opens (creating the directory and file when needed) `data_dir/gpc-tasks.db`,
    /// and migrates it to this binary's schema. Reference data is the caller's
    /// to write (`Store::upsert_reference`).
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| StoreError::Busy(format!("cannot create the data directory: {e}")))?;
        let path = data_dir.join(DATABASE_FILE);
        // Before the first connection, so that on an early return it is
        // dropped after it (see `PlainHandle`).
        let plain = open_plain_handle(&path)?;
        let mut conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(db_err)?;
        configure_writer(&conn)?;
        let version = schema::migrate(&mut conn)?;
        let checkpointer = checkpointer::Checkpointer::spawn(&path, Arc::clone(&plain))?;
        let writer = Writer::spawn(conn, checkpointer, Arc::clone(&plain))?;
        tracing::info!(path = %path.display(), schema_version = version, "store opened");
        Ok(Self {
            readers: Arc::new(Readers::new(path.clone(), plain)),
            path,
            writer,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Fast path for benchmarks: inserts many tasks in large transactions,
    /// without audit and without the idempotency look-up. A key already held
    /// keeps pointing at its first task. Each chunk of `BULK_CHUNK` commits on
    /// its own: after an error, the chunks before it stay stored.
    pub async fn bulk_insert(&self, tasks: Vec<NewTask>) -> Result<(), StoreError> {
        let mut remaining = tasks.into_iter();
        loop {
            let chunk: Vec<NewTask> = remaining.by_ref().take(BULK_CHUNK).collect();
            if chunk.is_empty() {
                return Ok(());
            }
            let encoded = encode_off_thread(chunk).await?;
            self.writer
                .call(|reply| Op::Bulk {
                    tasks: encoded,
                    reply,
                })
                .await?;
        }
    }

    async fn session_op(&self, op: SessionOp) -> Result<SessionAnswer, StoreError> {
        self.writer
            .call(|reply| Op::Session {
                op: Box::new(op),
                reply,
            })
            .await
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.readers.run(f).await
    }
}

fn configure_writer(conn: &Connection) -> Result<(), StoreError> {
    conn.busy_timeout(BUSY_TIMEOUT).map_err(db_err)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(db_err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Other(format!(
            "the data file cannot use WAL mode (got {mode})"
        )));
    }
    // FULL, not NORMAL: in WAL mode NORMAL may lose the last commits on power
    // loss, and a 201 promises the task is on disk.
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(db_err)?;
    // The checkpointer thread does most checkpoints; the writer's own, this
    // late, only finishes what it left so that the WAL can restart.
    conn.pragma_update(None, "wal_autocheckpoint", WRITER_CHECKPOINT_PAGES)
        .map_err(db_err)?;
    // Keeps a burst from leaving a huge WAL file behind once checkpointed.
    conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)
        .map_err(db_err)?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(())
}

/// JSON encoding is CPU work; done on a blocking thread so that a large bulk
/// load does not stall the async workers.
async fn encode_off_thread(tasks: Vec<NewTask>) -> Result<Vec<TaskRow>, StoreError> {
    tokio::task::spawn_blocking(move || tasks.into_iter().map(TaskRow::new).collect())
        .await
        .map_err(|e| StoreError::Other(format!("encoding task failed: {e}")))?
}

/// Maps SQLite failures to what the caller can do about them.
pub(crate) fn db_err(e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode as C;
    if let rusqlite::Error::SqliteFailure(f, _) = &e {
        match f.code {
            C::DatabaseBusy
            | C::DatabaseLocked
            | C::SystemIoFailure
            | C::DiskFull
            | C::CannotOpen
            | C::FileLockingProtocolFailed
            | C::OutOfMemory
            | C::ReadOnly
            | C::PermissionDenied => return StoreError::Busy(e.to_string()),
            C::DatabaseCorrupt | C::NotADatabase => return StoreError::Corrupt(e.to_string()),
            _ => {}
        }
    }
    StoreError::Other(e.to_string())
}

pub(crate) fn query_tasks(
    conn: &Connection,
    sql: &str,
    params: impl Params,
) -> Result<Vec<ReceivedTask>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(db_err)?;
    let mut rows = stmt.query(params).map_err(db_err)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(db_err)? {
        out.push(codec::decode_task(row)?);
    }
    Ok(out)
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    async fn reference_data(&self) -> Result<ReferenceData, StoreError> {
        self.read(codec::read_reference).await
    }

    async fn reference_index(&self) -> Result<ReferenceData, StoreError> {
        self.read(codec::read_reference_index).await
    }

    async fn reference_version(&self) -> Result<i64, StoreError> {
        self.read(codec::reference_version).await
    }

    async fn reference_counts(&self) -> Result<[u64; 5], StoreError> {
        self.read(codec::reference_counts).await
    }

    async fn patient(&self, nhs: &NhsNumber) -> Result<Option<Patient>, StoreError> {
        let nhs = nhs.as_digits();
        self.read(move |c| codec::patient(c, &nhs)).await
    }

    async fn patient_record(
        &self,
        holder: &OdsCode,
        key: PatientKey<'_>,
    ) -> Result<Option<(Patient, PatientRecord)>, StoreError> {
        let holder = holder.as_str().to_owned();
        let (key, by_nhs) = match key {
            PatientKey::Id(id) => (id.to_owned(), false),
            PatientKey::Nhs(nhs) => (nhs.as_digits(), true),
        };
        self.read(move |c| codec::patient_record(c, &holder, &key, by_nhs))
            .await
    }

    async fn upsert_reference(&self, data: &ReferenceData) -> Result<(), StoreError> {
        let data = data.clone();
        self.writer
            .call(|reply| Op::Reference {
                data: Box::new(data),
                reply,
            })
            .await
    }

    async fn create_serialised(
        &self,
        task: NewTask,
        resource_json: String,
        audit: AuditRecord,
    ) -> Result<CreateOutcome, StoreError> {
        let task = Box::new(TaskRow::with_json(task, resource_json)?);
        self.writer
            .call(|reply| Op::Create { task, audit, reply })
            .await
    }

    async fn find_by_identifier(
        &self,
        tenant: &OdsCode,
        sender_asid: &Asid,
        key: &BusinessIdentifier,
    ) -> Result<Option<ReceivedTask>, StoreError> {
        let args = [
            tenant.as_str(),
            sender_asid.as_str(),
            &key.system,
            &key.value,
        ]
        .map(str::to_owned);
        self.read(move |c| {
            let sql = concat!(
                "SELECT ",
                task_columns!(),
                " FROM tasks WHERE id = (SELECT task_id FROM task_identifiers \
                 WHERE tenant = ?1 AND sender_asid = ?2 AND system = ?3 AND value = ?4)"
            );
            query_tasks(c, sql, params![args[0], args[1], args[2], args[3]]).map(|mut v| v.pop())
        })
        .await
    }

    async fn get_task(
        &self,
        tenant: &OdsCode,
        id: &str,
    ) -> Result<Option<ReceivedTask>, StoreError> {
        let (tenant, id) = (tenant.as_str().to_owned(), id.to_owned());
        self.read(move |c| {
            let sql = concat!(
                "SELECT ",
                task_columns!(),
                " FROM tasks WHERE id = ?1 AND tenant = ?2"
            );
            query_tasks(c, sql, params![id, tenant]).map(|mut v| v.pop())
        })
        .await
    }

    async fn inbox_view(
        &self,
        tenant: &OdsCode,
        view: &InboxView,
        limit: usize,
        before: Option<(Timestamp, String)>,
    ) -> Result<Vec<ReceivedTask>, StoreError> {
        let tenant = tenant.as_str().to_owned();
        let view = view.clone();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let before = match before {
            Some((ts, id)) => Some((codec::timestamp_to_ns(ts)?, id)),
            None => None,
        };
        self.read(move |c| {
            let page_start = before.as_ref().map(|(ns, id)| (*ns, id.as_str()));
            let (sql, cells) = inbox_query(&tenant, &view, limit, page_start, |n| format!("?{n}"));
            query_tasks(c, &sql, params_from_iter(cells.iter()))
        })
        .await
    }

    async fn change_task(
        &self,
        tenant: &OdsCode,
        id: &str,
        change: TaskChange,
    ) -> Result<Option<ChangeOutcome>, StoreError> {
        let (tenant, id, change) = (tenant.clone(), id.to_owned(), Box::new(change));
        self.writer
            .call(|reply| Op::Change {
                tenant,
                id,
                change,
                reply,
            })
            .await
    }

    async fn claim_updates(
        &self,
        owner: &str,
        now: Timestamp,
        lease_until: Timestamp,
        limit: usize,
    ) -> Result<Vec<OutgoingUpdate>, StoreError> {
        let owner = owner.to_owned();
        self.writer
            .call(|reply| Op::ClaimUpdates {
                owner,
                now,
                lease_until,
                limit,
                reply,
            })
            .await
    }

    async fn finish_update(
        &self,
        owner: &str,
        update: &OutgoingUpdate,
    ) -> Result<bool, StoreError> {
        let (owner, update) = (owner.to_owned(), Box::new(update.clone()));
        self.writer
            .call(|reply| Op::FinishUpdate {
                owner,
                update,
                reply,
            })
            .await
    }

    async fn next_update_due(&self) -> Result<Option<Timestamp>, StoreError> {
        self.read(|c| {
            // A leased update is due again only when its lease runs out.
            let next: Option<i64> = c
                .prepare_cached(concat!(
                    "SELECT MIN(MAX(u.next_attempt_at, COALESCE(u.lease_until, u.next_attempt_at))) \
                     FROM task_updates u WHERE u.status = 'pending' AND ",
                    first_pending!()
                ))
                .and_then(|mut s| s.query_row([], |r| r.get(0)))
                .map_err(db_err)?;
            next.map(crate::rows::from_ns).transpose()
        })
        .await
    }

    async fn task_updates(
        &self,
        tenant: &OdsCode,
        id: &str,
    ) -> Result<Vec<OutgoingUpdate>, StoreError> {
        let (tenant, id) = (tenant.as_str().to_owned(), id.to_owned());
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached(concat!(
                    updates_with_entries!(),
                    " WHERE u.tenant = ?1 AND u.task_id = ?2 ORDER BY u.version"
                ))
                .map_err(db_err)?;
            let mut rows = stmt.query(params![tenant, id]).map_err(db_err)?;
            let mut out = Vec::new();
            while let Some(row) = rows.next().map_err(db_err)? {
                out.push(decode_update(row)?);
            }
            Ok(out)
        })
        .await
    }

    async fn timeline(&self, tenant: &OdsCode, id: &str) -> Result<Vec<TimelineEntry>, StoreError> {
        let (tenant, id) = (tenant.as_str().to_owned(), id.to_owned());
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached(concat!(
                    "SELECT ",
                    timeline_columns!(),
                    " FROM task_timeline WHERE task_id = ?1 AND tenant = ?2 ORDER BY version"
                ))
                .map_err(db_err)?;
            let mut rows = stmt.query(params![id, tenant]).map_err(db_err)?;
            let mut out = Vec::new();
            while let Some(row) = rows.next().map_err(db_err)? {
                out.push(decode_entry(row)?);
            }
            Ok(out)
        })
        .await
    }

    async fn count_tasks(&self, tenant: &OdsCode) -> Result<u64, StoreError> {
        let tenant = tenant.as_str().to_owned();
        self.read(move |c| {
            c.prepare_cached("SELECT COUNT(*) FROM tasks WHERE tenant = ?1")
                .and_then(|mut s| s.query_row([tenant], |r| r.get::<_, i64>(0)))
                .map(|n| n.unsigned_abs())
                .map_err(db_err)
        })
        .await
    }

    async fn waiting_updates(&self) -> Result<Option<u64>, StoreError> {
        self.read(|c| {
            c.prepare_cached("SELECT COUNT(*) FROM task_updates WHERE status = 'pending'")
                .and_then(|mut s| s.query_row([], |r| r.get::<_, i64>(0)))
                .map(|n| Some(n.unsigned_abs()))
                .map_err(db_err)
        })
        .await
    }

    async fn start_session(&self, session: &WebSession) -> Result<(), StoreError> {
        self.session_op(SessionOp::Start(session.clone())).await?;
        Ok(())
    }

    async fn resume_session(
        &self,
        key: &str,
        now: Timestamp,
        idle: Duration,
    ) -> Result<Option<WebSession>, StoreError> {
        let op = SessionOp::Resume {
            key: key.to_owned(),
            now,
            idle_until: crate::sessions::later(now, idle),
        };
        match self.session_op(op).await? {
            SessionAnswer::Session(s) => Ok(s),
            _ => Err(StoreError::Other(
                "a session op answered out of kind".into(),
            )),
        }
    }

    async fn end_session(&self, key: &str) -> Result<bool, StoreError> {
        match self.session_op(SessionOp::End(key.to_owned())).await? {
            SessionAnswer::Done(ended) => Ok(ended),
            _ => Err(StoreError::Other(
                "a session op answered out of kind".into(),
            )),
        }
    }

    async fn save_sign_in(&self, sign_in: &PendingSignIn) -> Result<(), StoreError> {
        self.session_op(SessionOp::SaveSignIn(sign_in.clone()))
            .await?;
        Ok(())
    }

    async fn take_sign_in(
        &self,
        key: &str,
        now: Timestamp,
    ) -> Result<Option<PendingSignIn>, StoreError> {
        let op = SessionOp::TakeSignIn {
            key: key.to_owned(),
            now,
        };
        match self.session_op(op).await? {
            SessionAnswer::SignIn(s) => Ok(s),
            _ => Err(StoreError::Other(
                "a session op answered out of kind".into(),
            )),
        }
    }

    fn record_audit(&self, record: AuditRecord) {
        if self.writer.send(Op::Audit(record)).is_err() {
            tracing::warn!("audit record dropped: the store writer has stopped");
        }
    }

    async fn audit(&self, filter: AuditFilter) -> Result<Vec<AuditRecord>, StoreError> {
        let since = filter.since.map(codec::timestamp_to_ns).transpose()?;
        // SQLite reads a negative LIMIT as none.
        let limit = match filter.limit {
            0 => -1,
            n => i64::try_from(n).unwrap_or(i64::MAX),
        };
        let tenant = filter.tenant;
        self.read(move |c| {
            // One literal per filter shape, so that each uses its index; the
            // `?n IS NULL` terms only keep the three parameters bindable in all.
            let sql = match (&tenant, since) {
                (None, None) => concat!(
                    "SELECT ",
                    audit_columns!(),
                    " FROM audit WHERE ?1 IS NULL AND ?2 IS NULL \
                     ORDER BY time DESC, seq DESC LIMIT ?3"
                ),
                (Some(_), None) => concat!(
                    "SELECT ",
                    audit_columns!(),
                    " FROM audit WHERE tenant = ?1 AND ?2 IS NULL \
                     ORDER BY time DESC, seq DESC LIMIT ?3"
                ),
                (None, Some(_)) => concat!(
                    "SELECT ",
                    audit_columns!(),
                    " FROM audit WHERE ?1 IS NULL AND time >= ?2 \
                     ORDER BY time DESC, seq DESC LIMIT ?3"
                ),
                (Some(_), Some(_)) => concat!(
                    "SELECT ",
                    audit_columns!(),
                    " FROM audit WHERE tenant = ?1 AND time >= ?2 \
                     ORDER BY time DESC, seq DESC LIMIT ?3"
                ),
            };
            let mut stmt = c.prepare_cached(sql).map_err(db_err)?;
            let mut rows = stmt.query(params![tenant, since, limit]).map_err(db_err)?;
            let mut out = Vec::new();
            while let Some(row) = rows.next().map_err(db_err)? {
                out.push(codec::decode_audit(row)?);
            }
            Ok(out)
        })
        .await
    }

    fn record_ssp_audit(&self, record: SspAuditRecord) {
        if self.writer.send(Op::SspAudit(record)).is_err() {
            tracing::warn!("SSP audit record dropped: the store writer has stopped");
        }
    }

    async fn ssp_audit(&self, filter: SspAuditFilter) -> Result<Vec<SspAuditRecord>, StoreError> {
        let since = filter.since.map(codec::timestamp_to_ns).transpose()?;
        let limit = match filter.limit {
            0 => -1,
            n => i64::try_from(n).unwrap_or(i64::MAX),
        };
        self.read(move |c| {
            let sql = match since {
                None => concat!(
                    "SELECT ",
                    ssp_audit_columns!(),
                    " FROM ssp_audit WHERE ?1 IS NULL ORDER BY time DESC, seq DESC LIMIT ?2"
                ),
                Some(_) => concat!(
                    "SELECT ",
                    ssp_audit_columns!(),
                    " FROM ssp_audit WHERE time >= ?1 ORDER BY time DESC, seq DESC LIMIT ?2"
                ),
            };
            let mut stmt = c.prepare_cached(sql).map_err(db_err)?;
            let mut rows = stmt.query(params![since, limit]).map_err(db_err)?;
            let mut out = Vec::new();
            while let Some(row) = rows.next().map_err(db_err)? {
                out.push(codec::decode_ssp_audit(row)?);
            }
            Ok(out)
        })
        .await
    }

    async fn flush(&self) -> Result<(), StoreError> {
        self.writer.call(Op::Flush).await
    }
}
