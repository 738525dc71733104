//! Organisations from an ODS standard CSV extract (`epraccur.csv` and its
//! kin): no header, 27 columns (reference-data.md §1). Only the columns a
//! provider shows are kept: code, name, address, postcode, status and
//! telephone; the rest are checked for shape where the layout defines one.

use super::{Problems, compact_date, csv_error_line, csv_line, csv_message, csv_reader};
use crate::import::ImportError;
use gpc_domain::OdsCode;
use gpc_domain::reference::{Address, Organisation, OrganisationStatus, ReferenceData};
use std::collections::{HashMap, HashSet};

const COLUMNS: usize = 27;

/// The organisations of `text` (file `file`), each `care_setting`, merged
/// with what `existing` holds of them: an organisation already known keeps
/// its id, its Spine system and site codes, and (when it has a system) the
/// telephone its Spine registration gave; a new one gets its ODS code as id.
pub fn organisations(
    file: &str,
    text: &str,
    care_setting: &str,
    existing: &ReferenceData,
) -> Result<ReferenceData, ImportError> {
    let mut problems = Problems::new(file);
    if care_setting.trim().is_empty() {
        problems.add(
            0,
            "--care-setting",
            "say what the file holds, e.g. \"GP practice\"",
        );
    }
    let held: HashMap<&OdsCode, &Organisation> =
        existing.organisations.iter().map(|o| (&o.ods, o)).collect();
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for result in csv_reader(text).records() {
        let record = match result {
            Ok(r) => r,
            Err(e) => {
                problems.add(csv_error_line(&e), "row", csv_message(&e));
                continue;
            }
        };
        let line = csv_line(&record);
        if record.len() == 1 && record[0].trim().is_empty() {
            continue;
        }
        if record.len() != COLUMNS {
            problems.add(
                line,
                "row",
                format!(
                    "expected {COLUMNS} columns (the ODS standard extract layout), found {}",
                    record.len()
                ),
            );
            continue;
        }
        let col = |n: usize| record[n - 1].trim();
        let before = problems_count(&problems);
        let ods = OdsCode::parse(col(1));
        if ods.is_none() {
            problems.add(
                line,
                "code (column 1)",
                "not an ODS code: 3 to 10 capital letters and digits",
            );
        }
        if col(2).is_empty() {
            problems.add(line, "name (column 2)", "empty");
        }
        if col(10).is_empty() {
            problems.add(line, "postcode (column 10)", "empty");
        }
        if compact_date(col(11)).is_none() {
            problems.add(line, "open date (column 11)", "not a date as YYYYMMDD");
        }
        for (n, name) in [(12, "close date"), (16, "join date"), (17, "left date")] {
            if !col(n).is_empty() && compact_date(col(n)).is_none() {
                problems.add(
                    line,
                    &format!("{name} (column {n})"),
                    "not a date as YYYYMMDD",
                );
            }
        }
        let status = OrganisationStatus::parse(col(13));
        if status.is_none() {
            problems.add(line, "status code (column 13)", "must be A, C, D or P");
        }
        if !col(26).is_empty() && !col(26).bytes().all(|b| b.is_ascii_digit()) {
            problems.add(line, "prescribing setting (column 26)", "not a number");
        }
        let (Some(ods), Some(status)) = (ods, status) else {
            continue;
        };
        if !seen.insert(ods.clone()) {
            problems.add(
                line,
                "code (column 1)",
                "the same code is on an earlier line",
            );
            continue;
        }
        if problems_count(&problems) != before {
            continue;
        }
        let lines: Vec<String> = (5..=7)
            .map(col)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect();
        // Column 8 is the town, 9 the county, which a postal address can do without.
        let city = if col(8).is_empty() { col(9) } else { col(8) };
        let old = held.get(&ods).copied();
        let telephone = match old {
            Some(o) if o.asid.is_some() => o.telephone.clone(),
            _ => col(18).to_owned(),
        };
        out.push(Organisation {
            id: old.map_or_else(|| ods.as_str().to_owned(), |o| o.id.clone()),
            name: col(2).to_owned(),
            care_setting: care_setting.trim().to_owned(),
            asid: old.and_then(|o| o.asid.clone()),
            receives_tasks: old.is_some_and(|o| o.receives_tasks),
            telephone,
            site_codes: old.map(|o| o.site_codes.clone()).unwrap_or_default(),
            address: Some(Address {
                lines,
                city: city.to_owned(),
                postcode: col(10).to_owned(),
            }),
            status,
            interactions: old.and_then(|o| o.interactions.clone()),
            ods,
        });
    }
    if out.is_empty() && problems.is_empty() {
        problems.add(1, "file", "no organisations in the file");
    }
    problems.finish(ReferenceData {
        organisations: out,
        ..ReferenceData::default()
    })
}

fn problems_count(p: &Problems) -> usize {
    p.total
}
