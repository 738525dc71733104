//! Patients from NDJSON: one FHIR R4 `Patient` per line, in the shape PDS
//! returns (reference-data.md §1).

use super::{Problems, iso_date};
use crate::import::ImportError;
use gpc_domain::reference::{Address, Gender, Patient, ReferenceData};
use gpc_domain::{NhsNumber, OdsCode};
use serde_json::Value;
use std::collections::{HashMap, HashSet};

const NHS_NUMBER: &str = "https://fhir.nhs.uk/Id/nhs-number";
const ODS_CODE: &str = "https://fhir.nhs.uk/Id/ods-organization-code";
const VERIFICATION: &str =
    "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus";

/// The patients of `text`, keyed by NHS number: one already held keeps its
/// id; a new one gets a random id (the store keeps the first id a number
/// was given, so two imports at once cannot give one patient two ids, and
/// the id does not reveal the NHS number in a URL).
pub fn patients(
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
    let held: HashMap<NhsNumber, &str> = existing
        .patients
        .iter()
        .map(|p| (p.nhs_number, p.id.as_str()))
        .collect();
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let value: Value = match serde_json::from_str(raw) {
            Ok(v) => v,
            Err(e) => {
                problems.add(line, "json", format!("not JSON (column {})", e.column()));
                continue;
            }
        };
        let before = problems.total;
        let patient = read_patient(&value, line, &orgs, &mut problems);
        let Some(mut patient) = patient else { continue };
        if problems.total != before {
            continue;
        }
        if !seen.insert(patient.nhs_number) {
            problems.add(line, "identifier", "this NHS number is on an earlier line");
            continue;
        }
        patient.id = held
            .get(&patient.nhs_number)
            .map_or_else(|| uuid::Uuid::new_v4().to_string(), |id| (*id).to_owned());
        out.push(patient);
    }
    if out.is_empty() && problems.is_empty() {
        problems.add(1, "file", "no patients in the file");
    }
    problems.finish(ReferenceData {
        patients: out,
        ..ReferenceData::default()
    })
}

fn read_patient(
    v: &Value,
    line: usize,
    orgs: &HashSet<&str>,
    problems: &mut Problems,
) -> Option<Patient> {
    if v.get("resourceType").and_then(Value::as_str) != Some("Patient") {
        problems.add(line, "resourceType", "must be Patient");
        return None;
    }
    let nhs_identifier = v
        .get("identifier")
        .and_then(Value::as_array)
        .and_then(|ids| {
            ids.iter()
                .find(|i| i.get("system").and_then(Value::as_str) == Some(NHS_NUMBER))
        });
    let nhs = match nhs_identifier
        .and_then(|i| i.get("value"))
        .and_then(Value::as_str)
    {
        None => {
            problems.add(
                line,
                "identifier",
                format!("no identifier of system {NHS_NUMBER}"),
            );
            None
        }
        Some(text) => match NhsNumber::parse(text) {
            Ok(n) => Some(n),
            Err(e) => {
                problems.add(line, "identifier.value", e.to_string());
                None
            }
        },
    };
    let verification = nhs_identifier
        .and_then(|i| i.get("extension"))
        .and_then(Value::as_array)
        .and_then(|exts| {
            exts.iter()
                .find(|e| e.get("url").and_then(Value::as_str) == Some(VERIFICATION))
        })
        .and_then(|e| e.pointer("/valueCodeableConcept/coding/0/code"))
        .and_then(Value::as_str);
    let verification_status = match verification {
        Some(code) if code.len() == 2 && code.bytes().all(|b| b.is_ascii_digit()) => {
            code.to_owned()
        }
        Some(_) => {
            problems.add(
                line,
                "identifier.extension",
                "the verification status is a two-digit code, e.g. 01",
            );
            String::new()
        }
        None => {
            problems.add(
                line,
                "identifier.extension",
                "no NHS number verification status",
            );
            String::new()
        }
    };
    let names = v.get("name").and_then(Value::as_array);
    let name = names.and_then(|n| {
        n.iter()
            .find(|n| n.get("use").and_then(Value::as_str) == Some("usual"))
            .or_else(|| n.first())
    });
    let family = name
        .and_then(|n| n.get("family"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let given = name
        .and_then(|n| n.pointer("/given/0"))
        .and_then(Value::as_str)
        .unwrap_or("");
    let title = name
        .and_then(|n| n.pointer("/prefix/0"))
        .and_then(Value::as_str)
        .unwrap_or("");
    if family.trim().is_empty() {
        problems.add(line, "name.family", "empty or missing");
    }
    if given.trim().is_empty() {
        problems.add(line, "name.given", "empty or missing");
    }
    let gender = match v.get("gender").and_then(Value::as_str) {
        Some("male") => Some(Gender::Male),
        Some("female") => Some(Gender::Female),
        Some("other") => Some(Gender::Other),
        Some("unknown") => Some(Gender::Unknown),
        _ => {
            problems.add(line, "gender", "must be male, female, other or unknown");
            None
        }
    };
    let birth_date = v
        .get("birthDate")
        .and_then(Value::as_str)
        .and_then(iso_date);
    if birth_date.is_none() {
        problems.add(line, "birthDate", "missing or not a date as YYYY-MM-DD");
    }
    let deceased = match v.get("deceasedDateTime") {
        None => None,
        Some(d) => {
            let date = d.as_str().and_then(|d| d.get(..10)).and_then(iso_date);
            if date.is_none() {
                problems.add(line, "deceasedDateTime", "not a date or date-time");
            }
            date
        }
    };
    let practice = v
        .get("generalPractitioner")
        .and_then(Value::as_array)
        .and_then(|gps| {
            gps.iter().find(|gp| {
                gp.pointer("/identifier/system").and_then(Value::as_str) == Some(ODS_CODE)
            })
        })
        .and_then(|gp| gp.pointer("/identifier/value"))
        .and_then(Value::as_str);
    let registered_practice = match practice.map(|p| (p, OdsCode::parse(p))) {
        None => {
            problems.add(
                line,
                "generalPractitioner",
                format!("no identifier of system {ODS_CODE}"),
            );
            None
        }
        Some((_, None)) => {
            problems.add(line, "generalPractitioner", "not an ODS code");
            None
        }
        Some((code, Some(ods))) if !orgs.contains(code.trim()) => {
            problems.add(
                line,
                "generalPractitioner",
                "no organisation has this code; import it from its ODS extract first",
            );
            let _ = ods;
            None
        }
        Some((_, Some(ods))) => Some(ods),
    };
    let address = v.pointer("/address/0");
    let text_of = |a: Option<&Value>, key: &str| {
        a.and_then(|a| a.get(key))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let lines = address
        .and_then(|a| a.get("line"))
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let telephone = v
        .get("telecom")
        .and_then(Value::as_array)
        .and_then(|t| {
            t.iter()
                .find(|t| t.get("system").and_then(Value::as_str) == Some("phone"))
        })
        .and_then(|t| t.get("value"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let sensitive = v
        .pointer("/meta/security")
        .and_then(Value::as_array)
        .is_some_and(|s| {
            s.iter()
                .any(|c| c.get("code").and_then(Value::as_str) == Some("R"))
        });
    Some(Patient {
        id: String::new(),
        nhs_number: nhs?,
        title: title.trim().to_owned(),
        given: given.trim().to_owned(),
        family: family.trim().to_owned(),
        birth_date: birth_date?,
        gender: gender?,
        address: Address {
            lines,
            city: text_of(address, "city"),
            postcode: text_of(address, "postalCode"),
        },
        // A restricted record shows no telephone, so none is kept.
        telephone: telephone.filter(|_| !sensitive),
        registered_practice: registered_practice?,
        verification_status,
        sensitive,
        deceased,
    })
}
