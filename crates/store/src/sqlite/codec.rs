//! The SQLite side of `rows`: how a `Cell` binds (a list as JSON text, a
//! boolean as 0 or 1), how a row is read by index, and the statements in
//! SQLite's placeholders.

use super::db_err;
use crate::StoreError;
use crate::rows::audit::{self, audit_columns, ssp_audit_columns};
use crate::rows::reference::{self, TABLES};
use crate::rows::task::{TaskRow, task_columns};
use crate::rows::{Cell, RowReader, corrupt, insert_statement};
use gpc_domain::audit::{AuditRecord, SspAuditRecord};
use gpc_domain::reference::{Patient, PatientRecord, ReferenceData};
use gpc_domain::task::ReceivedTask;
use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use rusqlite::{Connection, Row, ToSql, params_from_iter};

impl ToSql for Cell<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Cell::Null => ToSqlOutput::Owned(Value::Null),
            Cell::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Cell::Owned(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Cell::Int(i) => ToSqlOutput::Owned(Value::Integer(*i)),
            Cell::Bool(b) => ToSqlOutput::Owned(Value::Integer(i64::from(*b))),
            Cell::List(items) => ToSqlOutput::Owned(Value::Text(
                serde_json::to_string(items)
                    .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?,
            )),
        })
    }
}

impl RowReader for Row<'_> {
    fn str(&self, i: usize) -> Result<&str, StoreError> {
        self.get_ref(i)
            .map_err(db_err)?
            .as_str()
            .map_err(|_| corrupt("text column"))
    }

    fn opt_str(&self, i: usize) -> Result<Option<&str>, StoreError> {
        self.get_ref(i)
            .map_err(db_err)?
            .as_str_or_null()
            .map_err(|_| corrupt("text column"))
    }

    fn int(&self, i: usize) -> Result<i64, StoreError> {
        self.get(i).map_err(db_err)
    }

    fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        self.get(i).map_err(db_err)
    }

    fn bool(&self, i: usize) -> Result<bool, StoreError> {
        self.get(i).map_err(db_err)
    }

    fn list(&self, i: usize) -> Result<Vec<String>, StoreError> {
        serde_json::from_str(self.str(i)?).map_err(|_| corrupt("list column"))
    }

    fn opt_list(&self, i: usize) -> Result<Option<Vec<String>>, StoreError> {
        self.opt_str(i)?
            .map(|json| serde_json::from_str(json).map_err(|_| corrupt("list column")))
            .transpose()
    }
}

pub(super) use crate::rows::to_ns as timestamp_to_ns;

/// SQLite's numbered placeholder.
fn placeholder(n: usize) -> String {
    format!("?{n}")
}

pub(super) const INSERT_TASK: &str = concat!(
    "INSERT INTO tasks (",
    task_columns!(),
    ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, \
     ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25)"
);

pub(super) fn insert_task(conn: &Connection, row: &TaskRow) -> rusqlite::Result<()> {
    conn.prepare_cached(INSERT_TASK)?
        .execute(params_from_iter(row.cells().iter()))?;
    Ok(())
}

/// Reads the columns of `task_columns!`, in its order.
pub(super) fn decode_task(row: &Row<'_>) -> Result<ReceivedTask, StoreError> {
    crate::rows::task::decode(row)
}

pub(super) fn insert_audit(conn: &Connection, a: &AuditRecord) -> Result<(), StoreError> {
    let cells = audit::audit_cells(a)?;
    conn.prepare_cached(concat!(
        "INSERT INTO audit (",
        audit_columns!(),
        ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
    ))
    .and_then(|mut stmt| stmt.execute(params_from_iter(cells.iter())))
    .map_err(db_err)?;
    Ok(())
}

pub(super) fn decode_audit(row: &Row<'_>) -> Result<AuditRecord, StoreError> {
    audit::decode_audit(row)
}

pub(super) fn insert_ssp_audit(conn: &Connection, a: &SspAuditRecord) -> Result<(), StoreError> {
    let cells = audit::ssp_audit_cells(a)?;
    conn.prepare_cached(concat!(
        "INSERT INTO ssp_audit (",
        ssp_audit_columns!(),
        ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
    ))
    .and_then(|mut stmt| stmt.execute(params_from_iter(cells.iter())))
    .map_err(db_err)?;
    Ok(())
}

pub(super) fn decode_ssp_audit(row: &Row<'_>) -> Result<SspAuditRecord, StoreError> {
    audit::decode_ssp_audit(row)
}

/// Writes `data` into the reference tables, updating rows whose key is
/// already there; runs inside the caller's transaction.
pub(super) fn upsert_reference(conn: &Connection, data: &ReferenceData) -> Result<(), StoreError> {
    for (table, rows) in TABLES.iter().zip(reference::rows(data)) {
        let sql = insert_statement(
            table.name,
            table.columns,
            Some((table.key, table.keep)),
            placeholder,
        );
        let next: i64 = conn
            .query_row(
                &format!("SELECT COALESCE(MAX(position), -1) + 1 FROM {}", table.name),
                [],
                |r| r.get(0),
            )
            .map_err(db_err)?;
        let mut stmt = conn.prepare(&sql).map_err(db_err)?;
        for (position, cells) in (next..).zip(rows) {
            let position = Cell::Int(position);
            stmt.execute(params_from_iter(std::iter::once(&position).chain(&cells)))
                .map_err(db_err)?;
        }
    }
    // Running servers poll this to reload (server `reference_follow`).
    conn.execute(reference::BUMP_VERSION, []).map_err(db_err)?;
    Ok(())
}

/// Runs `sql` and decodes every row, in order.
fn read_all<T>(
    conn: &Connection,
    sql: &str,
    decode: impl Fn(&Row<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut stmt = conn.prepare_cached(sql).map_err(db_err)?;
    let mut rows = stmt.query([]).map_err(db_err)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(db_err)? {
        out.push(decode(row)?);
    }
    Ok(out)
}

/// What a server keeps in memory: organisations, practitioners and
/// agreements; patients and records are read one at a time
/// (`patient_record`), so that a million of them cost no memory.
pub(super) fn read_reference_index(conn: &Connection) -> Result<ReferenceData, StoreError> {
    Ok(ReferenceData {
        organisations: read_all(conn, reference::ORGANISATIONS.select, |r| {
            reference::decode_organisation(r)
        })?,
        practitioners: read_all(conn, reference::PRACTITIONERS.select, |r| {
            reference::decode_practitioner(r)
        })?,
        agreements: read_all(conn, reference::AGREEMENTS.select, |r| {
            reference::decode_agreement(r)
        })?,
        ..ReferenceData::default()
    })
}

pub(super) fn reference_version(conn: &Connection) -> Result<i64, StoreError> {
    conn.prepare_cached(reference::READ_VERSION)
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .map_err(db_err)
}

pub(super) fn reference_counts(conn: &Connection) -> Result<[u64; 5], StoreError> {
    let counts: [i64; 5] = conn
        .query_row(reference::COUNTS, [], |r| {
            Ok([r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?])
        })
        .map_err(db_err)?;
    Ok(counts.map(|c| c.unsigned_abs()))
}

pub(super) fn patient(conn: &Connection, nhs: &str) -> Result<Option<Patient>, StoreError> {
    let mut stmt = conn
        .prepare_cached(&reference::patient_sql(placeholder))
        .map_err(db_err)?;
    let mut rows = stmt.query([nhs]).map_err(db_err)?;
    rows.next()
        .map_err(db_err)?
        .map(reference::decode_patient)
        .transpose()
}

pub(super) fn patient_record(
    conn: &Connection,
    holder: &str,
    key: &str,
    by_nhs: bool,
) -> Result<Option<(Patient, PatientRecord)>, StoreError> {
    let mut stmt = conn
        .prepare_cached(&reference::patient_record_sql(by_nhs, placeholder))
        .map_err(db_err)?;
    let mut rows = stmt.query([holder, key]).map_err(db_err)?;
    rows.next()
        .map_err(db_err)?
        .map(reference::decode_patient_record)
        .transpose()
}

/// Everything: the index and the patients with their records.
pub(super) fn read_reference(conn: &Connection) -> Result<ReferenceData, StoreError> {
    Ok(ReferenceData {
        patients: read_all(conn, reference::PATIENTS.select, |r| {
            reference::decode_patient(r)
        })?,
        records: read_all(conn, reference::RECORDS.select, |r| {
            reference::decode_record(r)
        })?,
        ..read_reference_index(conn)?
    })
}
