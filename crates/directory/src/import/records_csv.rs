//! Patient records from CSV: `holder_ods,nhs_number,registration,ended`
//! (reference-data.md §1): which organisation's system holds which patient.

use super::{Problems, csv_with_header, iso_date};
use crate::import::ImportError;
use gpc_domain::reference::{PatientRecord, ReferenceData, RelationshipType};
use gpc_domain::{NhsNumber, OdsCode};
use std::collections::{HashMap, HashSet};

const HEADER: [&str; 4] = ["holder_ods", "nhs_number", "registration", "ended"];

/// `registration` as written in the file.
fn relationship(text: &str) -> Option<RelationshipType> {
    match text {
        "registered" => Some(RelationshipType::Registered),
        "extended-access" | "extended access" => Some(RelationshipType::ExtendedAccess),
        "referral" => Some(RelationshipType::Referral),
        _ => None,
    }
}

/// The records of `text`; each holder must be an organisation and each
/// patient already imported (`import patients`).
pub fn records(
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
    let patient_ids: HashMap<NhsNumber, &str> = existing
        .patients
        .iter()
        .map(|p| (p.nhs_number, p.id.as_str()))
        .collect();
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (line, record) in csv_with_header(text, &HEADER, &mut problems) {
        let col = |n: usize| record[n].trim();
        let before = problems.total;
        let holder = OdsCode::parse(col(0));
        match &holder {
            None => problems.add(line, "holder_ods", "not an ODS code"),
            Some(o) if !orgs.contains(o.as_str()) => problems.add(
                line,
                "holder_ods",
                "no organisation has this code; import it from its ODS extract first",
            ),
            Some(_) => {}
        }
        let patient = match NhsNumber::parse(col(1)) {
            Err(e) => {
                problems.add(line, "nhs_number", e.to_string());
                None
            }
            Ok(nhs) => match patient_ids.get(&nhs) {
                None => {
                    problems.add(
                        line,
                        "nhs_number",
                        "no patient has this NHS number; import the patients first",
                    );
                    None
                }
                Some(id) => Some((nhs, *id)),
            },
        };
        let kind = relationship(col(2));
        if kind.is_none() {
            problems.add(
                line,
                "registration",
                "must be registered, extended-access or referral",
            );
        }
        let ended = match col(3) {
            "" => None,
            text => {
                let date = iso_date(text);
                if date.is_none() {
                    problems.add(line, "ended", "not a date as YYYY-MM-DD");
                }
                date
            }
        };
        let (Some(holder), Some((nhs, id)), Some(kind)) = (holder, patient, kind) else {
            continue;
        };
        if problems.total != before {
            continue;
        }
        if !seen.insert((holder.clone(), nhs)) {
            problems.add(
                line,
                "nhs_number",
                "this holder's record of this patient is on an earlier line",
            );
            continue;
        }
        out.push(PatientRecord {
            holder,
            patient_id: id.to_owned(),
            relationship: kind,
            ended,
        });
    }
    if out.is_empty() && problems.is_empty() {
        problems.add(2, "file", "no records in the file");
    }
    problems.finish(ReferenceData {
        records: out,
        ..ReferenceData::default()
    })
}
