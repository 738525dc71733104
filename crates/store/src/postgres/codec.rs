//! The PostgreSQL side of `rows`: how a `Cell` binds (a list as `TEXT[]`, an
//! integer at the width of its column), how a row is read by index, and the
//! statements in PostgreSQL's placeholders.

use super::connection::{corrupt, get, pg_err};
use crate::StoreError;
use crate::rows::reference::{self, TABLES};
use crate::rows::task::task_columns;
use crate::rows::{Cell, RowReader, insert_statement};
use gpc_domain::reference::{Patient, PatientRecord, ReferenceData};
use gpc_domain::task::ReceivedTask;
use std::error::Error;
use std::sync::LazyLock;
use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};
use tokio_postgres::{GenericClient, Row};

type BoxError = Box<dyn Error + Sync + Send>;

impl ToSql for Cell<'_> {
    fn to_sql(&self, ty: &Type, out: &mut bytes::BytesMut) -> Result<IsNull, BoxError> {
        match self {
            Cell::Null => Ok(IsNull::Yes),
            Cell::Text(s) => s.to_sql(ty, out),
            Cell::Owned(s) => s.as_str().to_sql(ty, out),
            Cell::Int(i) => match *ty {
                Type::INT2 => i16::try_from(*i)?.to_sql(ty, out),
                Type::INT4 => i32::try_from(*i)?.to_sql(ty, out),
                _ => i.to_sql(ty, out),
            },
            Cell::Bool(b) => b.to_sql(ty, out),
            Cell::List(items) => items.to_sql(ty, out),
        }
    }

    fn accepts(ty: &Type) -> bool {
        matches!(
            *ty,
            Type::TEXT
                | Type::VARCHAR
                | Type::INT2
                | Type::INT4
                | Type::INT8
                | Type::BOOL
                | Type::TEXT_ARRAY
        )
    }

    to_sql_checked!();
}

impl RowReader for Row {
    fn str(&self, i: usize) -> Result<&str, StoreError> {
        get(self, i)
    }

    fn opt_str(&self, i: usize) -> Result<Option<&str>, StoreError> {
        get(self, i)
    }

    fn int(&self, i: usize) -> Result<i64, StoreError> {
        self.opt_int(i)?.ok_or_else(|| corrupt("integer column"))
    }

    fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        let ty = self.columns().get(i).map(|c| c.type_().clone());
        Ok(match ty {
            Some(Type::INT2) => get::<Option<i16>>(self, i)?.map(i64::from),
            Some(Type::INT4) => get::<Option<i32>>(self, i)?.map(i64::from),
            _ => get::<Option<i64>>(self, i)?,
        })
    }

    fn bool(&self, i: usize) -> Result<bool, StoreError> {
        get(self, i)
    }

    fn list(&self, i: usize) -> Result<Vec<String>, StoreError> {
        get(self, i)
    }

    fn opt_list(&self, i: usize) -> Result<Option<Vec<String>>, StoreError> {
        get(self, i)
    }
}

/// PostgreSQL's numbered placeholder.
fn placeholder(n: usize) -> String {
    format!("${n}")
}

pub(super) const INSERT_TASK: &str = concat!(
    "INSERT INTO tasks (",
    task_columns!(),
    ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
     $18, $19, $20, $21, $22, $23, $24, $25)"
);

/// `cells` as the parameter list `execute` takes.
pub(crate) fn params<'a>(cells: &'a [Cell<'a>]) -> Vec<&'a (dyn ToSql + Sync)> {
    cells.iter().map(|c| c as &(dyn ToSql + Sync)).collect()
}

/// Reads the columns of `task_columns!`, in its order.
pub(super) fn decode_task(row: &Row) -> Result<ReceivedTask, StoreError> {
    crate::rows::task::decode(row)
}

pub(super) fn decode_tasks(rows: &[Row]) -> Result<Vec<ReceivedTask>, StoreError> {
    rows.iter().map(decode_task).collect()
}

/// A key for `pg_advisory_xact_lock`, so that concurrent upserts of
/// reference data (instances seeding a new database together) take turns:
/// each computes the positions of its new rows from what is there.
/// ("gpc_refd" in ASCII.)
const REFERENCE_LOCK: i64 = 0x6770_635f_7265_6664;

/// Writes `data` into the reference tables, updating rows whose key is
/// already there; runs inside the caller's transaction.
pub(super) async fn upsert_reference(
    client: &impl GenericClient,
    data: &ReferenceData,
) -> Result<(), StoreError> {
    client
        .execute("SELECT pg_advisory_xact_lock($1)", &[&REFERENCE_LOCK])
        .await
        .map_err(pg_err)?;
    for (table, rows) in TABLES.iter().zip(reference::rows(data)) {
        let sql = insert_statement(
            table.name,
            table.columns,
            Some((table.key, table.keep)),
            placeholder,
        );
        let next: i32 = client
            .query_one(
                &format!("SELECT COALESCE(MAX(position), -1) + 1 FROM {}", table.name),
                &[],
            )
            .await
            .map_err(pg_err)?
            .get(0);
        let stmt = client.prepare(&sql).await.map_err(pg_err)?;
        for (position, mut cells) in (i64::from(next)..).zip(rows) {
            cells.insert(0, Cell::Int(position));
            client
                .execute(&stmt, &params(&cells))
                .await
                .map_err(pg_err)?;
        }
    }
    // Every instance polls this to reload (server `reference_follow`).
    client
        .execute(reference::BUMP_VERSION, &[])
        .await
        .map_err(pg_err)?;
    Ok(())
}

/// Runs `sql` and decodes every row, in order.
async fn read_all<T>(
    client: &impl GenericClient,
    sql: &str,
    decode: impl Fn(&Row) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let rows = client.query(sql, &[]).await.map_err(pg_err)?;
    rows.iter().map(decode).collect()
}

/// What a server keeps in memory (see the SQLite side's `read_reference_index`).
pub(super) async fn read_reference_index(
    client: &impl GenericClient,
) -> Result<ReferenceData, StoreError> {
    Ok(ReferenceData {
        organisations: read_all(client, reference::ORGANISATIONS.select, |r| {
            reference::decode_organisation(r)
        })
        .await?,
        practitioners: read_all(client, reference::PRACTITIONERS.select, |r| {
            reference::decode_practitioner(r)
        })
        .await?,
        agreements: read_all(client, reference::AGREEMENTS.select, |r| {
            reference::decode_agreement(r)
        })
        .await?,
        ..ReferenceData::default()
    })
}

pub(super) async fn reference_version(client: &impl GenericClient) -> Result<i64, StoreError> {
    let row = client
        .query_one(reference::READ_VERSION, &[])
        .await
        .map_err(pg_err)?;
    get(&row, 0)
}

pub(super) async fn reference_counts(client: &impl GenericClient) -> Result<[u64; 5], StoreError> {
    let row = client
        .query_one(reference::COUNTS, &[])
        .await
        .map_err(pg_err)?;
    let mut counts = [0u64; 5];
    for (i, c) in counts.iter_mut().enumerate() {
        let n: i64 = get(&row, i)?;
        *c = n.unsigned_abs();
    }
    Ok(counts)
}

// Prepared once per connection: every create and PDS retrieval reads a
// patient, and an unprepared query is parsed and planned each time (the
// parser was the largest part of PostgreSQL's profile under creates).
static PATIENT_SQL: LazyLock<String> = LazyLock::new(|| reference::patient_sql(placeholder));
static RECORD_BY_NHS_SQL: LazyLock<String> =
    LazyLock::new(|| reference::patient_record_sql(true, placeholder));
static RECORD_BY_ID_SQL: LazyLock<String> =
    LazyLock::new(|| reference::patient_record_sql(false, placeholder));

pub(super) async fn patient(
    client: &deadpool_postgres::Client,
    nhs: &str,
) -> Result<Option<Patient>, StoreError> {
    let statement = client.prepare_cached(&PATIENT_SQL).await.map_err(pg_err)?;
    let rows = client.query(&statement, &[&nhs]).await.map_err(pg_err)?;
    rows.first().map(reference::decode_patient).transpose()
}

pub(super) async fn patient_record(
    client: &deadpool_postgres::Client,
    holder: &str,
    key: &str,
    by_nhs: bool,
) -> Result<Option<(Patient, PatientRecord)>, StoreError> {
    let sql: &str = if by_nhs {
        &RECORD_BY_NHS_SQL
    } else {
        &RECORD_BY_ID_SQL
    };
    let statement = client.prepare_cached(sql).await.map_err(pg_err)?;
    let rows = client
        .query(&statement, &[&holder, &key])
        .await
        .map_err(pg_err)?;
    rows.first()
        .map(reference::decode_patient_record)
        .transpose()
}

/// Everything: the index and the patients with their records.
pub(super) async fn read_reference(
    client: &impl GenericClient,
) -> Result<ReferenceData, StoreError> {
    Ok(ReferenceData {
        patients: read_all(client, reference::PATIENTS.select, |r| {
            reference::decode_patient(r)
        })
        .await?,
        records: read_all(client, reference::RECORDS.select, |r| {
            reference::decode_record(r)
        })
        .await?,
        ..read_reference_index(client).await?
    })
}
