//! Domain values to rows and back. Everything written here must read back
//! equal, so decoding is strict: a value that does not parse is `Corrupt`.

use super::db_err;
use crate::StoreError;
use gpc_domain::audit::{AuditRecord, SspAuditRecord};
use gpc_domain::reference::{
    Address, Gender, Organisation, Patient, PatientRecord, Practitioner, ReferenceData,
    RelationshipType, SharingAgreement,
};
use gpc_domain::task::{BusinessIdentifier, NewTask, Provenance, TaskType};
use gpc_domain::{Asid, NhsNumber, OdsCode};
use jiff::Timestamp;
use jiff::civil::Date;
use rusqlite::{Connection, Row, params};

pub(super) fn timestamp_to_ns(ts: Timestamp) -> Result<i64, StoreError> {
    i64::try_from(ts.as_nanosecond())
        .map_err(|_| StoreError::Other("timestamp outside the years 1677 to 2262".into()))
}

pub(super) fn ns_to_timestamp(ns: i64) -> Result<Timestamp, StoreError> {
    Timestamp::from_nanosecond(i128::from(ns))
        .map_err(|_| StoreError::Corrupt("timestamp out of range".into()))
}

/// A task with its text columns already encoded, so that the JSON work is done
/// by the caller's thread and not by the single writer thread.
pub(super) struct EncodedTask {
    pub task: NewTask,
    pub received_ns: i64,
    pub keys_json: String,
    pub resource_json: String,
}

impl EncodedTask {
    pub fn new(task: NewTask) -> Result<Self, StoreError> {
        let resource_json = serde_json::to_string(&task.resource).map_err(json_err)?;
        Self::with_json(task, resource_json)
    }

    /// `resource_json` is `task.resource` already serialised.
    pub fn with_json(task: NewTask, resource_json: String) -> Result<Self, StoreError> {
        let keys: Vec<[&str; 2]> = task
            .idempotency_keys
            .iter()
            .map(|k| [k.system.as_str(), k.value.as_str()])
            .collect();
        let keys_json = serde_json::to_string(&keys).map_err(json_err)?;
        let received_ns = timestamp_to_ns(task.received_at)?;
        Ok(Self {
            task,
            received_ns,
            keys_json,
            resource_json,
        })
    }
}

fn json_err(e: serde_json::Error) -> StoreError {
    StoreError::Other(format!("JSON encoding: {e}"))
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("unreadable {what}"))
}

pub(super) const INSERT_TASK: &str = "INSERT INTO tasks (id, version_id, tenant, sender_asid, \
     idempotency_keys, provider_identifier, patient_id, nhs_number, patient_name, source_org_id, \
     task_type, text, received_at, sender_ods, sender_name, practitioner_sds_id, \
     practitioner_name, role_code, role_display, trace_id, resource) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, \
     ?19, ?20, ?21)";

pub(super) fn insert_task(conn: &Connection, e: &EncodedTask) -> rusqlite::Result<()> {
    let t = &e.task;
    let p = &t.provenance;
    conn.prepare_cached(INSERT_TASK)?.execute(params![
        t.id,
        t.version_id,
        t.tenant,
        p.sender_asid,
        e.keys_json,
        t.provider_identifier,
        t.patient_id,
        t.nhs_number,
        t.patient_name,
        t.source_org_id,
        t.task_type.code(),
        t.text,
        e.received_ns,
        p.organisation_ods,
        p.organisation_name,
        p.practitioner_sds_id,
        p.practitioner_name,
        p.role_code,
        p.role_display,
        p.trace_id,
        e.resource_json,
    ])?;
    Ok(())
}

/// Reads the columns of `task_columns!`, in its order.
pub(super) fn decode_task(row: &Row<'_>) -> Result<NewTask, StoreError> {
    let text = |i: usize| row.get::<_, String>(i).map_err(db_err);
    let keys: Vec<(String, String)> =
        serde_json::from_str(&text(4)?).map_err(|_| corrupt("task identifiers"))?;
    let task_type = TaskType::from_code(&text(10)?).ok_or_else(|| corrupt("task type"))?;
    let received_at = ns_to_timestamp(row.get(12).map_err(db_err)?)?;
    let resource = serde_json::from_str(&text(20)?).map_err(|_| corrupt("task resource"))?;
    Ok(NewTask {
        id: text(0)?,
        version_id: text(1)?,
        tenant: text(2)?,
        idempotency_keys: keys
            .into_iter()
            .map(|(system, value)| BusinessIdentifier { system, value })
            .collect(),
        provider_identifier: text(5)?,
        patient_id: text(6)?,
        nhs_number: text(7)?,
        patient_name: text(8)?,
        source_org_id: text(9)?,
        task_type,
        text: text(11)?,
        received_at,
        provenance: Provenance {
            sender_asid: text(3)?,
            organisation_ods: text(13)?,
            organisation_name: text(14)?,
            practitioner_sds_id: text(15)?,
            practitioner_name: text(16)?,
            role_code: text(17)?,
            role_display: text(18)?,
            trace_id: text(19)?,
        },
        resource,
    })
}

pub(super) fn insert_audit(conn: &Connection, a: &AuditRecord) -> Result<(), StoreError> {
    let time = timestamp_to_ns(a.time)?;
    conn.prepare_cached(
        "INSERT INTO audit (time, tenant, trace_id, from_asid, to_asid, interaction, method, \
         path, practitioner_sds_id, organisation_ods, status, error_code, task_id) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            time,
            a.tenant,
            a.trace_id,
            a.from_asid,
            a.to_asid,
            a.interaction,
            a.method,
            a.path,
            a.practitioner_sds_id,
            a.organisation_ods,
            a.status,
            a.error_code,
            a.task_id,
        ])
    })
    .map_err(db_err)?;
    Ok(())
}

/// Reads the columns of `audit_columns!`, in its order.
pub(super) fn decode_audit(row: &Row<'_>) -> Result<AuditRecord, StoreError> {
    let get = |i: usize| row.get::<_, Option<String>>(i).map_err(db_err);
    let required = |i: usize| row.get::<_, String>(i).map_err(db_err);
    Ok(AuditRecord {
        time: ns_to_timestamp(row.get(0).map_err(db_err)?)?,
        tenant: required(1)?,
        trace_id: get(2)?,
        from_asid: get(3)?,
        to_asid: get(4)?,
        interaction: get(5)?,
        method: required(6)?,
        path: required(7)?,
        practitioner_sds_id: get(8)?,
        organisation_ods: get(9)?,
        status: row.get(10).map_err(db_err)?,
        error_code: get(11)?,
        task_id: get(12)?,
    })
}

pub(super) fn insert_ssp_audit(conn: &Connection, a: &SspAuditRecord) -> Result<(), StoreError> {
    let time = timestamp_to_ns(a.time)?;
    let duration = i64::try_from(a.duration_us).unwrap_or(i64::MAX);
    conn.prepare_cached(
        "INSERT INTO ssp_audit (time, trace_id, from_asid, to_asid, interaction, method, target, \
         status, duration_us, refusal) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            time,
            a.trace_id,
            a.from_asid,
            a.to_asid,
            a.interaction,
            a.method,
            a.target,
            a.status,
            duration,
            a.refusal,
        ])
    })
    .map_err(db_err)?;
    Ok(())
}

/// Reads the columns of `ssp_audit_columns!`, in its order.
pub(super) fn decode_ssp_audit(row: &Row<'_>) -> Result<SspAuditRecord, StoreError> {
    let get = |i: usize| row.get::<_, Option<String>>(i).map_err(db_err);
    let duration: i64 = row.get(8).map_err(db_err)?;
    Ok(SspAuditRecord {
        time: ns_to_timestamp(row.get(0).map_err(db_err)?)?,
        trace_id: get(1)?,
        from_asid: get(2)?,
        to_asid: get(3)?,
        interaction: get(4)?,
        method: row.get(5).map_err(db_err)?,
        target: row.get(6).map_err(db_err)?,
        status: row.get(7).map_err(db_err)?,
        duration_us: u64::try_from(duration).map_err(|_| corrupt("SSP audit duration"))?,
        refusal: get(9)?,
    })
}

// ---- Reference data ----

// Serializing strings to JSON has no failure case.
#[allow(clippy::expect_used)]
fn strings_json(items: &[String]) -> String {
    serde_json::to_string(items).expect("a list of strings always encodes")
}

fn strings_from_json(json: &str, what: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(json).map_err(|_| corrupt(what))
}

fn parse_ods(code: &str) -> Result<OdsCode, StoreError> {
    OdsCode::parse(code).ok_or_else(|| corrupt("ODS code"))
}

fn parse_date(iso: &str) -> Result<Date, StoreError> {
    iso.parse().map_err(|_| corrupt("date"))
}

fn parse_gender(code: &str) -> Result<Gender, StoreError> {
    [Gender::Male, Gender::Female, Gender::Other, Gender::Unknown]
        .into_iter()
        .find(|g| g.as_fhir() == code)
        .ok_or_else(|| corrupt("gender"))
}

/// True when the store has no reference data yet, i.e. it is new.
pub(super) fn reference_is_empty(conn: &Connection) -> Result<bool, StoreError> {
    let any: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM organisations) OR EXISTS (SELECT 1 FROM patients) \
             OR EXISTS (SELECT 1 FROM patient_records) OR EXISTS (SELECT 1 FROM practitioners)",
            [],
            |r| r.get(0),
        )
        .map_err(db_err)?;
    Ok(!any)
}

pub(super) fn insert_reference(conn: &Connection, data: &ReferenceData) -> rusqlite::Result<()> {
    let mut stmt = conn.prepare(
        "INSERT INTO organisations (position, id, ods, name, care_setting, asid, receives_tasks, \
         telephone, site_codes, address_lines, address_city, address_postcode) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?;
    for (i, o) in data.organisations.iter().enumerate() {
        let a = o.address.as_ref();
        stmt.execute(params![
            i,
            o.id,
            o.ods.as_str(),
            o.name,
            o.care_setting,
            o.asid.as_ref().map(Asid::as_str),
            o.receives_tasks,
            o.telephone,
            strings_json(&o.site_codes),
            a.map(|a| strings_json(&a.lines)),
            a.map(|a| &a.city),
            a.map(|a| &a.postcode),
        ])?;
    }
    let mut stmt = conn.prepare(
        "INSERT INTO patients (position, id, nhs_number, title, given, family, birth_date, \
         gender, address_lines, address_city, address_postcode, telephone, registered_practice, \
         verification_status, sensitive, deceased) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
    )?;
    for (i, p) in data.patients.iter().enumerate() {
        stmt.execute(params![
            i,
            p.id,
            p.nhs_number.as_digits(),
            p.title,
            p.given,
            p.family,
            p.birth_date.to_string(),
            p.gender.as_fhir(),
            strings_json(&p.address.lines),
            p.address.city,
            p.address.postcode,
            p.telephone,
            p.registered_practice.as_str(),
            p.verification_status,
            p.sensitive,
            p.deceased.map(|d| d.to_string()),
        ])?;
    }
    let mut stmt = conn.prepare(
        "INSERT INTO patient_records (position, holder, patient_id, relationship, ended) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for (i, r) in data.records.iter().enumerate() {
        stmt.execute(params![
            i,
            r.holder.as_str(),
            r.patient_id,
            r.relationship.as_str(),
            r.ended.map(|d| d.to_string()),
        ])?;
    }
    let mut stmt = conn.prepare(
        "INSERT INTO practitioners (position, id, sds_user_id, title, given, family, \
         organisation, role_code, role_display) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    for (i, p) in data.practitioners.iter().enumerate() {
        stmt.execute(params![
            i,
            p.id,
            p.sds_user_id,
            p.title,
            p.given,
            p.family,
            p.organisation.as_str(),
            p.role_code,
            p.role_display,
        ])?;
    }
    let mut stmt = conn.prepare(
        "INSERT INTO sharing_agreements (position, sender, receiver, interaction) \
         VALUES (?1, ?2, ?3, ?4)",
    )?;
    for (i, a) in data.agreements.iter().enumerate() {
        stmt.execute(params![
            i,
            a.sender.as_str(),
            a.receiver.as_str(),
            a.interaction
        ])?;
    }
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

pub(super) fn read_reference(conn: &Connection) -> Result<ReferenceData, StoreError> {
    let organisations = read_all(
        conn,
        "SELECT id, ods, name, care_setting, asid, receives_tasks, telephone, site_codes, \
         address_lines, address_city, address_postcode FROM organisations ORDER BY position",
        |r| {
            let address = match r.get::<_, Option<String>>(8).map_err(db_err)? {
                None => None,
                Some(lines) => Some(Address {
                    lines: strings_from_json(&lines, "organisation address")?,
                    city: r.get(9).map_err(db_err)?,
                    postcode: r.get(10).map_err(db_err)?,
                }),
            };
            let asid = match r.get::<_, Option<String>>(4).map_err(db_err)? {
                None => None,
                Some(a) => Some(Asid::parse(&a).ok_or_else(|| corrupt("ASID"))?),
            };
            Ok(Organisation {
                id: r.get(0).map_err(db_err)?,
                ods: parse_ods(&r.get::<_, String>(1).map_err(db_err)?)?,
                name: r.get(2).map_err(db_err)?,
                care_setting: r.get(3).map_err(db_err)?,
                asid,
                receives_tasks: r.get(5).map_err(db_err)?,
                telephone: r.get(6).map_err(db_err)?,
                site_codes: strings_from_json(&r.get::<_, String>(7).map_err(db_err)?, "sites")?,
                address,
            })
        },
    )?;
    let patients = read_all(
        conn,
        "SELECT id, nhs_number, title, given, family, birth_date, gender, address_lines, \
         address_city, address_postcode, telephone, registered_practice, verification_status, \
         sensitive, deceased FROM patients ORDER BY position",
        |r| {
            let s = |i: usize| r.get::<_, String>(i).map_err(db_err);
            let deceased = match r.get::<_, Option<String>>(14).map_err(db_err)? {
                None => None,
                Some(d) => Some(parse_date(&d)?),
            };
            Ok(Patient {
                id: s(0)?,
                nhs_number: NhsNumber::parse(&s(1)?).map_err(|_| corrupt("NHS number"))?,
                title: s(2)?,
                given: s(3)?,
                family: s(4)?,
                birth_date: parse_date(&s(5)?)?,
                gender: parse_gender(&s(6)?)?,
                address: Address {
                    lines: strings_from_json(&s(7)?, "patient address")?,
                    city: s(8)?,
                    postcode: s(9)?,
                },
                telephone: r.get(10).map_err(db_err)?,
                registered_practice: parse_ods(&s(11)?)?,
                verification_status: s(12)?,
                sensitive: r.get(13).map_err(db_err)?,
                deceased,
            })
        },
    )?;
    let records = read_all(
        conn,
        "SELECT holder, patient_id, relationship, ended FROM patient_records ORDER BY position",
        |r| {
            let relationship: String = r.get(2).map_err(db_err)?;
            let ended = match r.get::<_, Option<String>>(3).map_err(db_err)? {
                None => None,
                Some(d) => Some(parse_date(&d)?),
            };
            Ok(PatientRecord {
                holder: parse_ods(&r.get::<_, String>(0).map_err(db_err)?)?,
                patient_id: r.get(1).map_err(db_err)?,
                relationship: RelationshipType::parse(&relationship)
                    .ok_or_else(|| corrupt("relationship"))?,
                ended,
            })
        },
    )?;
    let practitioners = read_all(
        conn,
        "SELECT id, sds_user_id, title, given, family, organisation, role_code, role_display \
         FROM practitioners ORDER BY position",
        |r| {
            let s = |i: usize| r.get::<_, String>(i).map_err(db_err);
            Ok(Practitioner {
                id: s(0)?,
                sds_user_id: s(1)?,
                title: s(2)?,
                given: s(3)?,
                family: s(4)?,
                organisation: parse_ods(&s(5)?)?,
                role_code: s(6)?,
                role_display: s(7)?,
            })
        },
    )?;
    let agreements = read_all(
        conn,
        "SELECT sender, receiver, interaction FROM sharing_agreements ORDER BY position",
        |r| {
            let s = |i: usize| r.get::<_, String>(i).map_err(db_err);
            Ok(SharingAgreement {
                sender: parse_ods(&s(0)?)?,
                receiver: parse_ods(&s(1)?)?,
                interaction: s(2)?,
            })
        },
    )?;
    Ok(ReferenceData {
        organisations,
        patients,
        records,
        practitioners,
        agreements,
    })
}
