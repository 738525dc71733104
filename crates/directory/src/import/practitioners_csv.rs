//! Practitioners from CSV: `sds_user_id,family,given,prefix,ods,role_code,role_name`,
//! one row per role profile (reference-data.md §1).

use super::{Problems, csv_with_header};
use crate::import::ImportError;
use gpc_domain::OdsCode;
use gpc_domain::reference::{Practitioner, ReferenceData};
use std::collections::{HashMap, HashSet};

const HEADER: [&str; 7] = [
    "sds_user_id",
    "family",
    "given",
    "prefix",
    "ods",
    "role_code",
    "role_name",
];

/// The practitioners of `text`, keyed by SDS user id + ODS + role code: a
/// record already held under that key keeps its id; a new one's id is made
/// of the key, so that two imports of one file never give two ids.
pub fn practitioners(
    file: &str,
    text: &str,
    existing: &ReferenceData,
) -> Result<ReferenceData, ImportError> {
    let mut problems = Problems::new(file);
    let orgs: HashSet<&str> = existing
        .organisations
        .iter()
        .map(|o| o.ods.as_str())
        .collect();
    let held: HashMap<(&str, &str, &str), &Practitioner> = existing
        .practitioners
        .iter()
        .map(|p| {
            (
                (
                    p.sds_user_id.as_str(),
                    p.organisation.as_str(),
                    p.role_code.as_str(),
                ),
                p,
            )
        })
        .collect();
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (line, record) in csv_with_header(text, &HEADER, &mut problems) {
        let col = |n: usize| record[n].trim();
        let before = problems.total;
        let sds = col(0);
        if sds.is_empty() || sds.len() > 20 || !sds.bytes().all(|b| b.is_ascii_alphanumeric()) {
            problems.add(line, "sds_user_id", "letters and digits, at most 20");
        }
        if col(1).is_empty() {
            problems.add(line, "family", "empty");
        }
        if col(2).is_empty() {
            problems.add(line, "given", "empty");
        }
        let ods = OdsCode::parse(col(4));
        match &ods {
            None => problems.add(line, "ods", "not an ODS code"),
            Some(o) if !orgs.contains(o.as_str()) => problems.add(
                line,
                "ods",
                "no organisation has this code; import it from its ODS extract first",
            ),
            Some(_) => {}
        }
        let role = col(5);
        if role.is_empty() || role.len() > 10 || !role.bytes().all(|b| b.is_ascii_alphanumeric()) {
            problems.add(line, "role_code", "an SDS job role code, e.g. R0260");
        }
        if col(6).is_empty() {
            problems.add(line, "role_name", "empty");
        }
        let Some(ods) = ods else { continue };
        if problems.total != before {
            continue;
        }
        if !seen.insert((sds.to_owned(), ods.clone(), role.to_owned())) {
            problems.add(
                line,
                "sds_user_id",
                "this user's role at this organisation is on an earlier line",
            );
            continue;
        }
        let id = held
            .get(&(sds, ods.as_str(), role))
            .map_or_else(|| format!("{sds}-{ods}-{role}"), |p| p.id.clone());
        out.push(Practitioner {
            id,
            sds_user_id: sds.to_owned(),
            title: col(3).to_owned(),
            given: col(2).to_owned(),
            family: col(1).to_owned(),
            organisation: ods,
            role_code: role.to_owned(),
            role_display: col(6).to_owned(),
        });
    }
    if out.is_empty() && problems.is_empty() {
        problems.add(2, "file", "no practitioners in the file");
    }
    problems.finish(ReferenceData {
        practitioners: out,
        ..ReferenceData::default()
    })
}
