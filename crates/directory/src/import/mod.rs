//! Loading a real region (reference-data.md): each source format parsed and
//! checked whole, every problem kept with its file, line and field, and the
//! good rows turned into the reference data to upsert, with the ids of the
//! rows already held kept (a re-import never renumbers).
//!
//! Nothing here touches the store: the caller reads what it holds, hands it
//! in, and writes the [`Plan`] in one transaction when there is no problem.

mod diff;
mod ods_csv;
mod patients_ndjson;
mod practitioners_csv;
mod records_csv;
mod spine_toml;

pub use diff::{Plan, TableChange, plan};
pub use ods_csv::organisations;
pub use patients_ndjson::patients;
pub use practitioners_csv::practitioners;
pub use records_csv::records;
pub use spine_toml::spine;

use std::fmt;

/// Most problems printed; the rest are counted (reference-data.md §2).
pub const MAX_SHOWN: usize = 50;

/// One problem: where it is and what is wrong. Messages name fields and
/// shapes, never a row's values, as they may hold patient data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub line: usize,
    pub field: String,
    pub message: String,
}

/// Every problem of one file; the import writes nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportError {
    pub file: String,
    /// The first [`MAX_SHOWN`] problems.
    pub problems: Vec<Problem>,
    /// How many there were in all.
    pub total: usize,
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.problems {
            writeln!(f, "{}:{}: {}: {}", self.file, p.line, p.field, p.message)?;
        }
        if self.total > self.problems.len() {
            writeln!(
                f,
                "{}: {} more problems not shown",
                self.file,
                self.total - self.problems.len()
            )?;
        }
        write!(
            f,
            "{}: {} problem{}; nothing was imported",
            self.file,
            self.total,
            if self.total == 1 { "" } else { "s" }
        )
    }
}

impl std::error::Error for ImportError {}

/// Collects problems while a file is read.
pub(crate) struct Problems {
    file: String,
    shown: Vec<Problem>,
    total: usize,
}

impl Problems {
    pub fn new(file: &str) -> Self {
        Self {
            file: file.to_owned(),
            shown: Vec::new(),
            total: 0,
        }
    }

    pub fn add(&mut self, line: usize, field: &str, message: impl Into<String>) {
        self.total += 1;
        if self.shown.len() < MAX_SHOWN {
            self.shown.push(Problem {
                line,
                field: field.to_owned(),
                message: message.into(),
            });
        }
    }

    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// `value` when nothing was wrong.
    pub fn finish<T>(self, value: T) -> Result<T, ImportError> {
        if self.total == 0 {
            Ok(value)
        } else {
            Err(ImportError {
                file: self.file,
                problems: self.shown,
                total: self.total,
            })
        }
    }
}

/// A CSV reader over `text` (no header handling: the callers check it).
pub(crate) fn csv_reader(text: &str) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes())
}

/// The line a CSV record starts on (1-based).
pub(crate) fn csv_line(record: &csv::StringRecord) -> usize {
    record.position().map_or(0, |p| p.line() as usize)
}

/// A CSV file with the header `expected`: its records after the header, each
/// with its line; a broken line is a problem.
pub(crate) fn csv_with_header(
    text: &str,
    expected: &[&str],
    problems: &mut Problems,
) -> Vec<(usize, csv::StringRecord)> {
    let mut reader = csv_reader(text);
    let mut records = Vec::new();
    let mut first = true;
    for result in reader.records() {
        match result {
            Ok(record) => {
                let line = csv_line(&record);
                if first {
                    first = false;
                    let found: Vec<&str> = record.iter().map(str::trim).collect();
                    if found != expected {
                        problems.add(
                            line,
                            "header",
                            format!("the header must be {}", expected.join(",")),
                        );
                        return Vec::new();
                    }
                    continue;
                }
                if record.len() == 1 && record[0].trim().is_empty() {
                    continue;
                }
                if record.len() != expected.len() {
                    problems.add(
                        line,
                        "row",
                        format!(
                            "expected {} columns, found {}",
                            expected.len(),
                            record.len()
                        ),
                    );
                    continue;
                }
                records.push((line, record));
            }
            Err(e) => problems.add(csv_error_line(&e), "row", csv_message(&e)),
        }
    }
    if first {
        problems.add(
            1,
            "header",
            format!("the header must be {}", expected.join(",")),
        );
    }
    records
}

pub(crate) fn csv_error_line(e: &csv::Error) -> usize {
    e.position().map_or(0, |p| p.line() as usize)
}

/// The kind of a CSV error, without the bytes it was about.
pub(crate) fn csv_message(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::Utf8 { .. } => "not UTF-8 text".to_owned(),
        csv::ErrorKind::Io(_) => "the file could not be read".to_owned(),
        _ => "not a well-formed CSV line".to_owned(),
    }
}

/// `YYYYMMDD` (ODS) as a date.
pub(crate) fn compact_date(text: &str) -> Option<jiff::civil::Date> {
    if text.len() != 8 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (y, m, d) = (&text[0..4], &text[4..6], &text[6..8]);
    jiff::civil::Date::new(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?).ok()
}

/// `YYYY-MM-DD` as a date.
pub(crate) fn iso_date(text: &str) -> Option<jiff::civil::Date> {
    if text.len() != 10 {
        return None;
    }
    text.parse().ok()
}
