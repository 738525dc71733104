//! Reference data: organisations, patients, the records systems hold,
//! practitioners and sharing agreements. Each table keeps a `position`, so
//! that the data reads back in the order it was first written; an upsert
//! keeps the position of a row it updates and puts new rows after the rest.

use super::{Cell, RowReader, corrupt};
use crate::StoreError;
use gpc_domain::Asid;
use gpc_domain::reference::{
    Address, Gender, Organisation, Patient, PatientRecord, Practitioner, ReferenceData,
    RelationshipType, SharingAgreement,
};

/// One reference table: its columns (`position` first), the natural key an
/// upsert matches on, and the query that reads it back (every column but
/// `position`, in order).
pub(crate) struct Table {
    pub name: &'static str,
    pub columns: &'static [&'static str],
    pub key: &'static [&'static str],
    pub select: &'static str,
}

/// Columns an upsert never changes: a row keeps its place.
pub(crate) const KEEP: &[&str] = &["position"];

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
    ],
    key: &["ods"],
    select: "SELECT id, ods, name, care_setting, asid, receives_tasks, telephone, site_codes, \
             address_lines, address_city, address_postcode FROM organisations ORDER BY position",
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
    key: &["id"],
    select: "SELECT id, nhs_number, title, given, family, birth_date, gender, address_lines, \
             address_city, address_postcode, telephone, registered_practice, \
             verification_status, sensitive, deceased FROM patients ORDER BY position",
};

pub(crate) const RECORDS: Table = Table {
    name: "patient_records",
    columns: &["position", "holder", "patient_id", "relationship", "ended"],
    key: &["holder", "patient_id"],
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
    select: "SELECT id, sds_user_id, title, given, family, organisation, role_code, \
             role_display FROM practitioners ORDER BY position",
};

pub(crate) const AGREEMENTS: Table = Table {
    name: "sharing_agreements",
    columns: &["position", "sender", "receiver", "interaction"],
    key: &["sender", "receiver", "interaction"],
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
    ]
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
        sender: r.ods(0)?,
        receiver: r.ods(1)?,
        interaction: r.string(2)?,
    })
}
