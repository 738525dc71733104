//! Rows, written once for both backends: the column lists, the values a row
//! holds in column order, and the conversions to and from domain types. A
//! backend adds only its SQL (dialect, placeholders) and the two small
//! adapters below: `Cell` as one of its parameters, and `RowReader` over one
//! of its rows. A new column is then one edit here and a migration per
//! backend.
//!
//! Decoding is strict: everything written here must read back equal, so a
//! value that does not parse is `Corrupt`.

pub(crate) mod audit;
pub(crate) mod reference;
pub(crate) mod sent;
pub(crate) mod task;
pub(crate) mod timeline;
pub(crate) mod updates;
pub(crate) mod views;

use crate::StoreError;
use gpc_domain::{Asid, NhsNumber, OdsCode};
use jiff::Timestamp;
use jiff::civil::Date;

/// One parameter of a statement, in the plain types both databases share.
/// Each backend says how it binds one (SQLite stores a list as JSON text,
/// PostgreSQL as `TEXT[]`; an integer goes to whichever integer width the
/// column has).
#[derive(Debug)]
pub(crate) enum Cell<'a> {
    Null,
    Text(&'a str),
    Owned(String),
    Int(i64),
    Bool(bool),
    List(&'a [String]),
}

impl<'a> Cell<'a> {
    pub fn opt_text(value: Option<&'a str>) -> Self {
        value.map_or(Cell::Null, Cell::Text)
    }

    pub fn opt_int(value: Option<i64>) -> Self {
        value.map_or(Cell::Null, Cell::Int)
    }

    pub fn opt_list(value: Option<&'a [String]>) -> Self {
        value.map_or(Cell::Null, Cell::List)
    }
}

/// One row of a query, read by column index in the order of the column list
/// it selected. Errors are the backend's, already mapped.
pub(crate) trait RowReader {
    fn str(&self, i: usize) -> Result<&str, StoreError>;
    fn opt_str(&self, i: usize) -> Result<Option<&str>, StoreError>;
    fn int(&self, i: usize) -> Result<i64, StoreError>;
    fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError>;
    fn bool(&self, i: usize) -> Result<bool, StoreError>;
    fn list(&self, i: usize) -> Result<Vec<String>, StoreError>;
    fn opt_list(&self, i: usize) -> Result<Option<Vec<String>>, StoreError>;

    fn string(&self, i: usize) -> Result<String, StoreError> {
        self.str(i).map(str::to_owned)
    }

    fn opt_string(&self, i: usize) -> Result<Option<String>, StoreError> {
        Ok(self.opt_str(i)?.map(str::to_owned))
    }

    fn timestamp(&self, i: usize) -> Result<Timestamp, StoreError> {
        from_ns(self.int(i)?)
    }

    fn opt_timestamp(&self, i: usize) -> Result<Option<Timestamp>, StoreError> {
        self.opt_int(i)?.map(from_ns).transpose()
    }

    fn ods(&self, i: usize) -> Result<OdsCode, StoreError> {
        OdsCode::parse(self.str(i)?).ok_or_else(|| corrupt("ODS code"))
    }

    fn asid(&self, i: usize) -> Result<Asid, StoreError> {
        Asid::parse(self.str(i)?).ok_or_else(|| corrupt("ASID"))
    }

    /// An optional ASID kept as text that is empty when there is none.
    fn asid_or_empty(&self, i: usize) -> Result<Option<Asid>, StoreError> {
        match self.str(i)? {
            "" => Ok(None),
            text => Asid::parse(text).map(Some).ok_or_else(|| corrupt("ASID")),
        }
    }

    fn opt_asid(&self, i: usize) -> Result<Option<Asid>, StoreError> {
        self.opt_str(i)?
            .map(|a| Asid::parse(a).ok_or_else(|| corrupt("ASID")))
            .transpose()
    }

    fn nhs_number(&self, i: usize) -> Result<NhsNumber, StoreError> {
        NhsNumber::parse(self.str(i)?).map_err(|_| corrupt("NHS number"))
    }

    fn date(&self, i: usize) -> Result<Date, StoreError> {
        self.str(i)?.parse().map_err(|_| corrupt("date"))
    }

    fn opt_date(&self, i: usize) -> Result<Option<Date>, StoreError> {
        self.opt_str(i)?
            .map(|d| d.parse().map_err(|_| corrupt("date")))
            .transpose()
    }

    fn u32(&self, i: usize, what: &str) -> Result<u32, StoreError> {
        u32::try_from(self.int(i)?).map_err(|_| corrupt(what))
    }
}

/// Timestamps are stored as nanoseconds since the Unix epoch in a 64-bit
/// integer on both backends: exact, and ordered as the instants are.
pub(crate) fn to_ns(ts: Timestamp) -> Result<i64, StoreError> {
    i64::try_from(ts.as_nanosecond())
        .map_err(|_| StoreError::Other("timestamp outside the years 1677 to 2262".into()))
}

pub(crate) fn from_ns(ns: i64) -> Result<Timestamp, StoreError> {
    Timestamp::from_nanosecond(i128::from(ns))
        .map_err(|_| StoreError::Corrupt("timestamp out of range".into()))
}

pub(crate) fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("unreadable {what}"))
}

pub(crate) fn json_err(e: serde_json::Error) -> StoreError {
    StoreError::Other(format!("JSON encoding: {e}"))
}

/// `INSERT` of `columns` into `table` with one placeholder per column
/// (`placeholder(n)`, 1-based, is the backend's), or, with `key`, an upsert
/// that updates every column but `key` and `keep` when a row with that key
/// exists. Built at run time: reference data is written rarely.
pub(crate) fn insert_statement(
    table: &str,
    columns: &[&str],
    key: Option<(&[&str], &[&str])>,
    placeholder: fn(usize) -> String,
) -> String {
    let values: Vec<String> = (1..=columns.len()).map(placeholder).collect();
    let mut sql = format!(
        "INSERT INTO {table} ({}) VALUES ({})",
        columns.join(", "),
        values.join(", ")
    );
    if let Some((key, keep)) = key {
        let updates: Vec<String> = columns
            .iter()
            .filter(|c| !key.contains(c) && !keep.contains(c))
            .map(|c| format!("{c} = excluded.{c}"))
            .collect();
        // A row that is all key (an agreement) has nothing to update.
        let action = match updates.is_empty() {
            true => "NOTHING".to_owned(),
            false => format!("UPDATE SET {}", updates.join(", ")),
        };
        sql.push_str(&format!(" ON CONFLICT ({}) DO {action}", key.join(", ")));
    }
    sql
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upsert_updates_all_but_its_key_and_kept_columns() {
        let sql = insert_statement(
            "t",
            &["position", "k", "a", "b"],
            Some((&["k"], &["position"])),
            |n| format!("${n}"),
        );
        assert_eq!(
            sql,
            "INSERT INTO t (position, k, a, b) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (k) DO UPDATE SET a = excluded.a, b = excluded.b"
        );
        let all_key = insert_statement(
            "t",
            &["position", "k"],
            Some((&["k"], &["position"])),
            |n| format!("?{n}"),
        );
        assert_eq!(
            all_key,
            "INSERT INTO t (position, k) VALUES (?1, ?2) ON CONFLICT (k) DO NOTHING"
        );
    }

    #[test]
    fn timestamps_round_trip_to_the_nanosecond() {
        let t: Timestamp = "2026-11-25T09:00:00.123456789Z".parse().unwrap();
        assert_eq!(from_ns(to_ns(t).unwrap()).unwrap(), t);
    }
}
