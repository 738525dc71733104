//! Reference data: organisations, patients, the records systems hold,
//! practitioners and sharing agreements. Each table keeps a `position`, so
//! that the data reads back in the order it was first written; an upsert
//! keeps the position of a row it updates and puts new rows after the rest.

use super::{Cell, RowReader, corrupt};
use crate::StoreError;
use gpc_domain::reference::{
    Address, Gender, Organisation, OrganisationStatus, Party, Patient, PatientRecord, Practitioner,
    ReferenceData, RelationshipType, SharingAgreement, SystemInteractions,
};
use gpc_domain::{Asid, Interaction};

/// One reference table: its columns (`position` first), the natural key an
/// upsert matches on, and the query that reads it back (every column but
/// `position`, in order).
pub(crate) struct Table {
    pub name: &'static str,
    pub columns: &'static [&'static str],
    pub key: &'static [&'static str],
    /// Columns an upsert never changes: a row keeps its place, and an
    /// organisation or patient found by its natural key keeps its FHIR id.
    pub keep: &'static [&'static str],
    pub select: &'static str,
}

const KEEP_PLACE: &[&str] = &["position"];
const KEEP_PLACE_AND_ID: &[&str] = &["position", "id"];

pub(crate) const ORGANISATIONS: Table = Table {
    name: "organisations",
    columns: &[
        "position",
        "id",
        "ods",
        "name",
        "care_setting",
        "asid",
        "receives_tasks",
        "telephone",
        "site_codes",
        "address_lines",
        "address_city",
        "address_postcode",
        "status",
        "sends",
        "receives",
    ],
    key: &["ods"],
    keep: KEEP_PLACE_AND_ID,
    select: "SELECT id, ods, name, care_setting, asid, receives_tasks, telephone, site_codes, \
             address_lines, address_city, address_postcode, status, sends, receives \
             FROM organisations ORDER BY position",
};

pub(crate) const PATIENTS: Table = Table {
    name: "patients",
    columns: &[
        "position",
        "id",
        "nhs_number",
        "title",
        "given",
        "family",
        "birth_date",
        "gender",
        "address_lines",
        "address_city",
        "address_postcode",
        "telephone",
        "registered_practice",
        "verification_status",
        "sensitive",
        "deceased",
    ],
    key: &["nhs_number"],
    keep: KEEP_PLACE_AND_ID,
    select: "SELECT id, nhs_number, title, given, family, birth_date, gender, address_lines, \
             address_city, address_postcode, telephone, registered_practice, \
             verification_status, sensitive, deceased FROM patients ORDER BY position",
};

/// The columns of `PATIENTS.select`, for queries of one patient.
pub(crate) const PATIENT_COLUMNS: &str = "p.id, p.nhs_number, p.title, p.given, p.family, \
     p.birth_date, p.gender, p.address_lines, p.address_city, p.address_postcode, p.telephone, \
     p.registered_practice, p.verification_status, p.sensitive, p.deceased";

/// The columns of `RECORDS.select` after `PATIENT_COLUMNS`.
pub(crate) const RECORD_COLUMNS: &str = "r.holder, r.patient_id, r.relationship, r.ended";

pub(crate) const RECORDS: Table = Table {
    name: "patient_records",
    columns: &["position", "holder", "patient_id", "relationship", "ended"],
    key: &["holder", "patient_id"],
    keep: KEEP_PLACE,
    select: "SELECT holder, patient_id, relationship, ended FROM patient_records \
             ORDER BY position",
};

pub(crate) const PRACTITIONERS: Table = Table {
    name: "practitioners",
    columns: &[
        "position",
        "id",
        "sds_user_id",
        "title",
        "given",
        "family",
        "organisation",
        "role_code",
        "role_display",
    ],
    key: &["id"],
    keep: KEEP_PLACE,
    select: "SELECT id, sds_user_id, title, given, family, organisation, role_code, \
             role_display FROM practitioners ORDER BY position",
};

pub(crate) const AGREEMENTS: Table = Table {
    name: "sharing_agreements",
    columns: &["position", "sender", "receiver", "interaction"],
    key: &["sender", "receiver", "interaction"],
    keep: KEEP_PLACE,
    select: "SELECT sender, receiver, interaction FROM sharing_agreements ORDER BY position",
};

/// Every table, in the order an upsert writes them.
pub(crate) const TABLES: [&Table; 5] = [
    &ORGANISATIONS,
    &PATIENTS,
    &RECORDS,
    &PRACTITIONERS,
    &AGREEMENTS,
];

/// The rows of `data` for each of `TABLES`, in order, each without its
/// position (the backend adds it: `Cell::Int(position)` then these).
pub(crate) fn rows(data: &ReferenceData) -> [Vec<Vec<Cell<'_>>>; 5] {
    [
        data.organisations.iter().map(organisation_cells).collect(),
        data.patients.iter().map(patient_cells).collect(),
        data.records.iter().map(record_cells).collect(),
        data.practitioners.iter().map(practitioner_cells).collect(),
        data.agreements.iter().map(agreement_cells).collect(),
    ]
}

fn organisation_cells(o: &Organisation) -> Vec<Cell<'_>> {
    let a = o.address.as_ref();
    vec![
        Cell::Text(&o.id),
        Cell::Text(o.ods.as_str()),
        Cell::Text(&o.name),
        Cell::Text(&o.care_setting),
        Cell::opt_text(o.asid.as_ref().map(Asid::as_str)),
        Cell::Bool(o.receives_tasks),
        Cell::Text(&o.telephone),
        Cell::List(&o.site_codes),
        Cell::opt_list(a.map(|a| a.lines.as_slice())),
        Cell::opt_text(a.map(|a| a.city.as_str())),
        Cell::opt_text(a.map(|a| a.postcode.as_str())),
        Cell::Text(o.status.code()),
        o.interactions
            .as_ref()
            .map_or(Cell::Null, |i| Cell::Owned(interaction_list(&i.sends))),
        o.interactions
            .as_ref()
            .map_or(Cell::Null, |i| Cell::Owned(interaction_list(&i.receives))),
    ]
}

/// Interaction ids hold no spaces, so a space-separated list is plain on both backends.
fn interaction_list(list: &[Interaction]) -> String {
    list.iter().map(|i| i.id()).collect::<Vec<_>>().join(" ")
}

fn parse_interactions(text: &str) -> Result<Vec<Interaction>, StoreError> {
    text.split_whitespace()
        .map(|id| Interaction::from_id(id).ok_or_else(|| corrupt("interaction id")))
        .collect()
}

fn patient_cells(p: &Patient) -> Vec<Cell<'_>> {
    vec![
        Cell::Text(&p.id),
        Cell::Owned(p.nhs_number.as_digits()),
        Cell::Text(&p.title),
        Cell::Text(&p.given),
        Cell::Text(&p.family),
        Cell::Owned(p.birth_date.to_string()),
        Cell::Text(p.gender.as_fhir()),
        Cell::List(&p.address.lines),
        Cell::Text(&p.address.city),
        Cell::Text(&p.address.postcode),
        Cell::opt_text(p.telephone.as_deref()),
        Cell::Text(p.registered_practice.as_str()),
        Cell::Text(&p.verification_status),
        Cell::Bool(p.sensitive),
        p.deceased
            .map_or(Cell::Null, |d| Cell::Owned(d.to_string())),
    ]
}

fn record_cells(r: &PatientRecord) -> Vec<Cell<'_>> {
    vec![
        Cell::Text(r.holder.as_str()),
        Cell::Text(&r.patient_id),
        Cell::Text(r.relationship.as_str()),
        r.ended.map_or(Cell::Null, |d| Cell::Owned(d.to_string())),
    ]
}

fn practitioner_cells(p: &Practitioner) -> Vec<Cell<'_>> {
    vec![
        Cell::Text(&p.id),
        Cell::Text(&p.sds_user_id),
        Cell::Text(&p.title),
        Cell::Text(&p.given),
        Cell::Text(&p.family),
        Cell::Text(p.organisation.as_str()),
        Cell::Text(&p.role_code),
        Cell::Text(&p.role_display),
    ]
}

fn agreement_cells(a: &SharingAgreement) -> Vec<Cell<'_>> {
    vec![
        Cell::Text(a.sender.as_str()),
        Cell::Text(a.receiver.as_str()),
        Cell::Text(&a.interaction),
    ]
}

pub(crate) fn decode_organisation(r: &impl RowReader) -> Result<Organisation, StoreError> {
    let address = match r.opt_list(8)? {
        None => None,
        Some(lines) => Some(Address {
            lines,
            city: r
                .opt_string(9)?
                .ok_or_else(|| corrupt("organisation address"))?,
            postcode: r
                .opt_string(10)?
                .ok_or_else(|| corrupt("organisation address"))?,
        }),
    };
    Ok(Organisation {
        id: r.string(0)?,
        ods: r.ods(1)?,
        name: r.string(2)?,
        care_setting: r.string(3)?,
        asid: r.opt_asid(4)?,
        receives_tasks: r.bool(5)?,
        telephone: r.string(6)?,
        site_codes: r.list(7)?,
        address,
        status: OrganisationStatus::parse(r.str(11)?)
            .ok_or_else(|| corrupt("organisation status"))?,
        interactions: match (r.opt_str(12)?, r.opt_str(13)?) {
            (Some(sends), Some(receives)) => Some(SystemInteractions {
                sends: parse_interactions(sends)?,
                receives: parse_interactions(receives)?,
            }),
            _ => None,
        },
    })
}

fn parse_gender(code: &str) -> Result<Gender, StoreError> {
    [Gender::Male, Gender::Female, Gender::Other, Gender::Unknown]
        .into_iter()
        .find(|g| g.as_fhir() == code)
        .ok_or_else(|| corrupt("gender"))
}

pub(crate) fn decode_patient(r: &impl RowReader) -> Result<Patient, StoreError> {
    Ok(Patient {
        id: r.string(0)?,
        nhs_number: r.nhs_number(1)?,
        title: r.string(2)?,
        given: r.string(3)?,
        family: r.string(4)?,
        birth_date: r.date(5)?,
        gender: parse_gender(r.str(6)?)?,
        address: Address {
            lines: r.list(7)?,
            city: r.string(8)?,
            postcode: r.string(9)?,
        },
        telephone: r.opt_string(10)?,
        registered_practice: r.ods(11)?,
        verification_status: r.string(12)?,
        sensitive: r.bool(13)?,
        deceased: r.opt_date(14)?,
    })
}

pub(crate) fn decode_record(r: &impl RowReader) -> Result<PatientRecord, StoreError> {
    Ok(PatientRecord {
        holder: r.ods(0)?,
        patient_id: r.string(1)?,
        relationship: RelationshipType::parse(r.str(2)?).ok_or_else(|| corrupt("relationship"))?,
        ended: r.opt_date(3)?,
    })
}

pub(crate) fn decode_practitioner(r: &impl RowReader) -> Result<Practitioner, StoreError> {
    Ok(Practitioner {
        id: r.string(0)?,
        sds_user_id: r.string(1)?,
        title: r.string(2)?,
        given: r.string(3)?,
        family: r.string(4)?,
        organisation: r.ods(5)?,
        role_code: r.string(6)?,
        role_display: r.string(7)?,
    })
}

pub(crate) fn decode_agreement(r: &impl RowReader) -> Result<SharingAgreement, StoreError> {
    Ok(SharingAgreement {
        sender: Party::parse(r.str(0)?).ok_or_else(|| corrupt("agreement party"))?,
        receiver: Party::parse(r.str(1)?).ok_or_else(|| corrupt("agreement party"))?,
        interaction: r.string(2)?,
    })
}

/// Reads the columns of a row from `offset` on, so that one decoder serves
/// a table's own select and a join that puts another table first.
pub(crate) struct Offset<'r, R>(pub &'r R, pub usize);

impl<R: RowReader> RowReader for Offset<'_, R> {
    fn str(&self, i: usize) -> Result<&str, StoreError> {
        self.0.str(i + self.1)
    }
    fn opt_str(&self, i: usize) -> Result<Option<&str>, StoreError> {
        self.0.opt_str(i + self.1)
    }
    fn int(&self, i: usize) -> Result<i64, StoreError> {
        self.0.int(i + self.1)
    }
    fn opt_int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        self.0.opt_int(i + self.1)
    }
    fn bool(&self, i: usize) -> Result<bool, StoreError> {
        self.0.bool(i + self.1)
    }
    fn list(&self, i: usize) -> Result<Vec<String>, StoreError> {
        self.0.list(i + self.1)
    }
    fn opt_list(&self, i: usize) -> Result<Option<Vec<String>>, StoreError> {
        self.0.opt_list(i + self.1)
    }
}

/// Patient columns (15) then record columns (4), as `patient_record_sql` selects them.
pub(crate) fn decode_patient_record(
    r: &impl RowReader,
) -> Result<(Patient, PatientRecord), StoreError> {
    Ok((decode_patient(r)?, decode_record(&Offset(r, 15))?))
}

/// The record `holder` (placeholder 1) keeps of a patient, found by id or
/// by NHS number (placeholder 2): each one indexed look-up.
pub(crate) fn patient_record_sql(by_nhs: bool, placeholder: fn(usize) -> String) -> String {
    let (one, two) = (placeholder(1), placeholder(2));
    let which = match by_nhs {
        true => format!("p.nhs_number = {two}"),
        false => format!("p.id = {two}"),
    };
    format!(
        "SELECT {PATIENT_COLUMNS}, {RECORD_COLUMNS} FROM patients p \
         JOIN patient_records r ON r.patient_id = p.id AND r.holder = {one} WHERE {which}"
    )
}

/// One patient by NHS number (placeholder 1).
pub(crate) fn patient_sql(placeholder: fn(usize) -> String) -> String {
    format!(
        "SELECT {PATIENT_COLUMNS} FROM patients p WHERE p.nhs_number = {}",
        placeholder(1)
    )
}

pub(crate) const BUMP_VERSION: &str =
    "UPDATE reference_version SET version = version + 1 WHERE id = 1";
pub(crate) const READ_VERSION: &str = "SELECT version FROM reference_version WHERE id = 1";

/// Rows per table, for `region show`.
pub(crate) const COUNTS: &str = "SELECT (SELECT COUNT(*) FROM organisations), \
     (SELECT COUNT(*) FROM patients), (SELECT COUNT(*) FROM patient_records), \
     (SELECT COUNT(*) FROM practitioners), (SELECT COUNT(*) FROM sharing_agreements)";
