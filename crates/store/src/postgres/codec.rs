//! Domain values to rows and back. Everything written here must read back
//! equal, so decoding is strict: a value that does not parse is `Corrupt`.

use super::connection::{corrupt, from_ns, get, pg_err, to_ns};
use crate::StoreError;
use gpc_domain::audit::{AuditRecord, SspAuditRecord};
use gpc_domain::reference::{
    Address, Gender, Organisation, Patient, PatientRecord, Practitioner, ReferenceData,
    RelationshipType, SharingAgreement,
};
use gpc_domain::task::{BusinessIdentifier, NewTask, Provenance, TaskType};
use gpc_domain::{Asid, NhsNumber, OdsCode};
use jiff::civil::Date;
use tokio_postgres::{GenericClient, Row};

/// The task columns, in the order `decode_task` reads them. A macro so that
/// queries are literals, built once at compile time.
macro_rules! task_columns {
    () => {
        "id, version_id, tenant, sender_asid, idempotency_keys, provider_identifier, patient_id, \
         nhs_number, patient_name, source_org_id, task_type, text, received_at, sender_ods, \
         sender_name, practitioner_sds_id, practitioner_name, role_code, role_display, trace_id, \
         resource"
    };
}
pub(super) use task_columns;

/// The audit columns, in the order `decode_audit` reads them.
macro_rules! audit_columns {
    () => {
        "time, tenant, trace_id, from_asid, to_asid, interaction, method, path, \
         practitioner_sds_id, organisation_ods, status, error_code, task_id"
    };
}
pub(super) use audit_columns;

/// The SSP audit columns, in the order `decode_ssp_audit` reads them.
macro_rules! ssp_audit_columns {
    () => {
        "time, trace_id, from_asid, to_asid, interaction, method, target, status, duration_us, \
         refusal"
    };
}
pub(super) use ssp_audit_columns;

pub(super) const INSERT_TASK: &str = "INSERT INTO tasks (id, version_id, tenant, sender_asid, \
     idempotency_keys, provider_identifier, patient_id, nhs_number, patient_name, source_org_id, \
     task_type, text, received_at, sender_ods, sender_name, practitioner_sds_id, \
     practitioner_name, role_code, role_display, trace_id, resource) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, \
     $19, $20, $21)";

/// A task with its text columns encoded before a connection is taken.
pub(super) struct EncodedTask {
    pub task: NewTask,
    pub received_ns: i64,
    pub keys_json: String,
    pub resource_json: String,
    task_type: &'static str,
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
        let received_ns = to_ns(task.received_at)?;
        Ok(Self {
            task_type: task.task_type.code(),
            task,
            received_ns,
            keys_json,
            resource_json,
        })
    }

    /// The parameters of `INSERT_TASK`, in its order.
    pub fn params(&self) -> [&(dyn tokio_postgres::types::ToSql + Sync); 21] {
        let t = &self.task;
        let p = &t.provenance;
        [
            &t.id,
            &t.version_id,
            &t.tenant,
            &p.sender_asid,
            &self.keys_json,
            &t.provider_identifier,
            &t.patient_id,
            &t.nhs_number,
            &t.patient_name,
            &t.source_org_id,
            &self.task_type,
            &t.text,
            &self.received_ns,
            &p.organisation_ods,
            &p.organisation_name,
            &p.practitioner_sds_id,
            &p.practitioner_name,
            &p.role_code,
            &p.role_display,
            &p.trace_id,
            &self.resource_json,
        ]
    }
}

fn json_err(e: serde_json::Error) -> StoreError {
    StoreError::Other(format!("JSON encoding: {e}"))
}

/// Reads the columns of `task_columns!`, in its order.
pub(super) fn decode_task(row: &Row) -> Result<NewTask, StoreError> {
    let text = |i: usize| get::<String>(row, i);
    let keys: Vec<(String, String)> =
        serde_json::from_str(get::<&str>(row, 4)?).map_err(|_| corrupt("task identifiers"))?;
    let task_type = TaskType::from_code(get(row, 10)?).ok_or_else(|| corrupt("task type"))?;
    let resource =
        serde_json::from_str(get::<&str>(row, 20)?).map_err(|_| corrupt("task resource"))?;
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
        received_at: from_ns(get(row, 12)?)?,
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

pub(super) fn decode_tasks(rows: &[Row]) -> Result<Vec<NewTask>, StoreError> {
    rows.iter().map(decode_task).collect()
}

/// Reads the columns of `audit_columns!`, in its order.
pub(super) fn decode_audit(row: &Row) -> Result<AuditRecord, StoreError> {
    let status: i32 = get(row, 10)?;
    Ok(AuditRecord {
        time: from_ns(get(row, 0)?)?,
        tenant: get(row, 1)?,
        trace_id: get(row, 2)?,
        from_asid: get(row, 3)?,
        to_asid: get(row, 4)?,
        interaction: get(row, 5)?,
        method: get(row, 6)?,
        path: get(row, 7)?,
        practitioner_sds_id: get(row, 8)?,
        organisation_ods: get(row, 9)?,
        status: u16::try_from(status).map_err(|_| corrupt("audit status"))?,
        error_code: get(row, 11)?,
        task_id: get(row, 12)?,
    })
}

/// Reads the columns of `ssp_audit_columns!`, in its order.
pub(super) fn decode_ssp_audit(row: &Row) -> Result<SspAuditRecord, StoreError> {
    let status: i32 = get(row, 7)?;
    let duration: i64 = get(row, 8)?;
    Ok(SspAuditRecord {
        time: from_ns(get(row, 0)?)?,
        trace_id: get(row, 1)?,
        from_asid: get(row, 2)?,
        to_asid: get(row, 3)?,
        interaction: get(row, 4)?,
        method: get(row, 5)?,
        target: get(row, 6)?,
        status: u16::try_from(status).map_err(|_| corrupt("SSP audit status"))?,
        duration_us: u64::try_from(duration).map_err(|_| corrupt("SSP audit duration"))?,
        refusal: get(row, 9)?,
    })
}

// ---- Reference data ----

fn parse_ods(code: &str) -> Result<OdsCode, StoreError> {
    OdsCode::parse(code).ok_or_else(|| corrupt("ODS code"))
}

fn parse_date(iso: &str) -> Result<Date, StoreError> {
    iso.parse().map_err(|_| corrupt("date"))
}

fn parse_optional_date(iso: Option<&str>) -> Result<Option<Date>, StoreError> {
    iso.map(parse_date).transpose()
}

fn parse_gender(code: &str) -> Result<Gender, StoreError> {
    [Gender::Male, Gender::Female, Gender::Other, Gender::Unknown]
        .into_iter()
        .find(|g| g.as_fhir() == code)
        .ok_or_else(|| corrupt("gender"))
}

// An index into reference rows held in memory, of which there cannot be 2^31.
#[allow(clippy::expect_used)]
fn position(i: usize) -> i32 {
    i32::try_from(i).expect("fewer than 2^31 reference rows")
}

/// True when the store has no reference data yet, i.e. it is new.
pub(super) async fn reference_is_empty(client: &impl GenericClient) -> Result<bool, StoreError> {
    let any: bool = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM organisations) OR EXISTS (SELECT 1 FROM patients) \
             OR EXISTS (SELECT 1 FROM patient_records) OR EXISTS (SELECT 1 FROM practitioners)",
            &[],
        )
        .await
        .map_err(pg_err)?
        .get(0);
    Ok(!any)
}

pub(super) async fn insert_reference(
    client: &impl GenericClient,
    data: &ReferenceData,
) -> Result<(), StoreError> {
    let stmt = client
        .prepare(
            "INSERT INTO organisations (position, id, ods, name, care_setting, asid, \
             receives_tasks, telephone, site_codes, address_lines, address_city, \
             address_postcode) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .await
        .map_err(pg_err)?;
    for (i, o) in data.organisations.iter().enumerate() {
        let a = o.address.as_ref();
        client
            .execute(
                &stmt,
                &[
                    &position(i),
                    &o.id,
                    &o.ods.as_str(),
                    &o.name,
                    &o.care_setting,
                    &o.asid.as_ref().map(Asid::as_str),
                    &o.receives_tasks,
                    &o.telephone,
                    &o.site_codes,
                    &a.map(|a| &a.lines),
                    &a.map(|a| &a.city),
                    &a.map(|a| &a.postcode),
                ],
            )
            .await
            .map_err(pg_err)?;
    }
    let stmt = client
        .prepare(
            "INSERT INTO patients (position, id, nhs_number, title, given, family, birth_date, \
             gender, address_lines, address_city, address_postcode, telephone, \
             registered_practice, verification_status, sensitive, deceased) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
        )
        .await
        .map_err(pg_err)?;
    for (i, p) in data.patients.iter().enumerate() {
        client
            .execute(
                &stmt,
                &[
                    &position(i),
                    &p.id,
                    &p.nhs_number.as_digits(),
                    &p.title,
                    &p.given,
                    &p.family,
                    &p.birth_date.to_string(),
                    &p.gender.as_fhir(),
                    &p.address.lines,
                    &p.address.city,
                    &p.address.postcode,
                    &p.telephone,
                    &p.registered_practice.as_str(),
                    &p.verification_status,
                    &p.sensitive,
                    &p.deceased.map(|d| d.to_string()),
                ],
            )
            .await
            .map_err(pg_err)?;
    }
    let stmt = client
        .prepare(
            "INSERT INTO patient_records (position, holder, patient_id, relationship, ended) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .await
        .map_err(pg_err)?;
    for (i, r) in data.records.iter().enumerate() {
        client
            .execute(
                &stmt,
                &[
                    &position(i),
                    &r.holder.as_str(),
                    &r.patient_id,
                    &r.relationship.as_str(),
                    &r.ended.map(|d| d.to_string()),
                ],
            )
            .await
            .map_err(pg_err)?;
    }
    let stmt = client
        .prepare(
            "INSERT INTO practitioners (position, id, sds_user_id, title, given, family, \
             organisation, role_code, role_display) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .await
        .map_err(pg_err)?;
    for (i, p) in data.practitioners.iter().enumerate() {
        client
            .execute(
                &stmt,
                &[
                    &position(i),
                    &p.id,
                    &p.sds_user_id,
                    &p.title,
                    &p.given,
                    &p.family,
                    &p.organisation.as_str(),
                    &p.role_code,
                    &p.role_display,
                ],
            )
            .await
            .map_err(pg_err)?;
    }
    let stmt = client
        .prepare(
            "INSERT INTO sharing_agreements (position, sender, receiver, interaction) \
             VALUES ($1, $2, $3, $4)",
        )
        .await
        .map_err(pg_err)?;
    for (i, a) in data.agreements.iter().enumerate() {
        client
            .execute(
                &stmt,
                &[
                    &position(i),
                    &a.sender.as_str(),
                    &a.receiver.as_str(),
                    &a.interaction,
                ],
            )
            .await
            .map_err(pg_err)?;
    }
    Ok(())
}

async fn read_all<T>(
    client: &impl GenericClient,
    sql: &str,
    decode: impl Fn(&Row) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let rows = client.query(sql, &[]).await.map_err(pg_err)?;
    rows.iter().map(decode).collect()
}

pub(super) async fn read_reference(
    client: &impl GenericClient,
) -> Result<ReferenceData, StoreError> {
    let organisations = read_all(
        client,
        "SELECT id, ods, name, care_setting, asid, receives_tasks, telephone, site_codes, \
         address_lines, address_city, address_postcode FROM organisations ORDER BY position",
        |r| {
            let address = match get::<Option<Vec<String>>>(r, 8)? {
                None => None,
                Some(lines) => Some(Address {
                    lines,
                    city: get(r, 9)?,
                    postcode: get(r, 10)?,
                }),
            };
            let asid = match get::<Option<&str>>(r, 4)? {
                None => None,
                Some(a) => Some(Asid::parse(a).ok_or_else(|| corrupt("ASID"))?),
            };
            Ok(Organisation {
                id: get(r, 0)?,
                ods: parse_ods(get(r, 1)?)?,
                name: get(r, 2)?,
                care_setting: get(r, 3)?,
                asid,
                receives_tasks: get(r, 5)?,
                telephone: get(r, 6)?,
                site_codes: get(r, 7)?,
                address,
            })
        },
    );
    let patients = read_all(
        client,
        "SELECT id, nhs_number, title, given, family, birth_date, gender, address_lines, \
         address_city, address_postcode, telephone, registered_practice, verification_status, \
         sensitive, deceased FROM patients ORDER BY position",
        |r| {
            Ok(Patient {
                id: get(r, 0)?,
                nhs_number: NhsNumber::parse(get(r, 1)?).map_err(|_| corrupt("NHS number"))?,
                title: get(r, 2)?,
                given: get(r, 3)?,
                family: get(r, 4)?,
                birth_date: parse_date(get(r, 5)?)?,
                gender: parse_gender(get(r, 6)?)?,
                address: Address {
                    lines: get(r, 7)?,
                    city: get(r, 8)?,
                    postcode: get(r, 9)?,
                },
                telephone: get(r, 10)?,
                registered_practice: parse_ods(get(r, 11)?)?,
                verification_status: get(r, 12)?,
                sensitive: get(r, 13)?,
                deceased: parse_optional_date(get(r, 14)?)?,
            })
        },
    );
    let records = read_all(
        client,
        "SELECT holder, patient_id, relationship, ended FROM patient_records ORDER BY position",
        |r| {
            Ok(PatientRecord {
                holder: parse_ods(get(r, 0)?)?,
                patient_id: get(r, 1)?,
                relationship: RelationshipType::parse(get(r, 2)?)
                    .ok_or_else(|| corrupt("relationship"))?,
                ended: parse_optional_date(get(r, 3)?)?,
            })
        },
    );
    let practitioners = read_all(
        client,
        "SELECT id, sds_user_id, title, given, family, organisation, role_code, role_display \
         FROM practitioners ORDER BY position",
        |r| {
            Ok(Practitioner {
                id: get(r, 0)?,
                sds_user_id: get(r, 1)?,
                title: get(r, 2)?,
                given: get(r, 3)?,
                family: get(r, 4)?,
                organisation: parse_ods(get(r, 5)?)?,
                role_code: get(r, 6)?,
                role_display: get(r, 7)?,
            })
        },
    );
    let agreements = read_all(
        client,
        "SELECT sender, receiver, interaction FROM sharing_agreements ORDER BY position",
        |r| {
            Ok(SharingAgreement {
                sender: parse_ods(get(r, 0)?)?,
                receiver: parse_ods(get(r, 1)?)?,
                interaction: get(r, 2)?,
            })
        },
    );
    // Sent together on one connection: five round trips become one.
    let (organisations, patients, records, practitioners, agreements) =
        tokio::try_join!(organisations, patients, records, practitioners, agreements)?;
    Ok(ReferenceData {
        organisations,
        patients,
        records,
        practitioners,
        agreements,
    })
}
