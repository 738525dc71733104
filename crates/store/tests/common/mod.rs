//! Fixtures shared by the store test binaries. Each binary uses a different
//! subset, hence the allowance for the rest.
#![allow(dead_code)]

use gpc_domain::audit::AuditRecord;
use gpc_domain::task::{BusinessIdentifier, NewTask, Provenance, ReceivedTask, TaskType};
use gpc_domain::{Asid, NhsNumber, OdsCode};
use jiff::Timestamp;
use serde_json::json;

pub const CONSUMER_SYSTEM: &str = "https://consumer.example/order-id";

pub fn ods(code: &str) -> OdsCode {
    OdsCode::parse(code).unwrap()
}

pub fn asid(digits: &str) -> Asid {
    Asid::parse(digits).unwrap()
}

/// A task as the store holds it straight after its delivery.
pub fn delivered(task: &NewTask) -> ReceivedTask {
    ReceivedTask::delivered(task.clone())
}

pub fn key(value: &str) -> BusinessIdentifier {
    BusinessIdentifier {
        system: CONSUMER_SYSTEM.to_owned(),
        value: value.to_owned(),
    }
}

/// A task addressed to `tenant`, sent by `sender_asid`, findable under `keys`.
pub fn task(tenant: &str, sender_asid: &str, keys: &[&str], received_at: Timestamp) -> NewTask {
    let id = uuid::Uuid::new_v4().to_string();
    let provider_identifier = format!("urn:uuid:{}", uuid::Uuid::new_v4());
    NewTask {
        version_id: "1".to_owned(),
        tenant: ods(tenant),
        idempotency_keys: keys.iter().map(|k| key(k)).collect(),
        provider_identifier: provider_identifier.clone(),
        patient_id: "2".to_owned(),
        nhs_number: NhsNumber::parse("9476719931").unwrap(),
        patient_name: "Mrs Minnie DAWES".to_owned(),
        source_org_id: "5".to_owned(),
        task_type: TaskType::ActionNeeded,
        text: "Please review the patient's medications — 2 items.".to_owned(),
        received_at,
        provenance: Provenance {
            sender_asid: asid(sender_asid),
            organisation_ods: ods("Y00001"),
            organisation_name: "North Lincolnshire Extended Access Hub".to_owned(),
            practitioner_sds_id: "G11111116".to_owned(),
            practitioner_name: "Mrs Melissa PARSONS".to_owned(),
            role_code: "R0260".to_owned(),
            role_display: "General Medical Practitioner".to_owned(),
            trace_id: uuid::Uuid::new_v4().to_string(),
        },
        resource: json!({
            "resourceType": "Order",
            "id": id,
            "meta": {"versionId": "1", "profile": ["http://fhir.nhs.net/StructureDefinition/gpconnect-task-order-1"]},
            "identifier": [{"system": "urn:ietf:rfc:3986", "value": provider_identifier}],
            "subject": {"reference": "Patient/2", "display": "Mrs Minnie DAWES"},
            "reasonCodeableConcept": {"coding": [{"code": "2"}], "text": "Action needed"},
            "zeta": 1, "alpha": [true, null, 2.5, "ü"]
        }),
        id,
    }
}

pub fn audit_for(task: &NewTask, status: u16) -> AuditRecord {
    AuditRecord {
        time: task.received_at,
        tenant: task.tenant.to_string(),
        trace_id: Some(task.provenance.trace_id.clone()),
        from_asid: Some(task.provenance.sender_asid.to_string()),
        to_asid: Some("200000000359".to_owned()),
        interaction: Some("urn:nhs:names:services:gpconnect:fhir:rest:create:order".to_owned()),
        method: "POST".to_owned(),
        path: format!("/{}/fhir/Order", task.tenant),
        practitioner_sds_id: Some(task.provenance.practitioner_sds_id.clone()),
        organisation_ods: Some(task.provenance.organisation_ods.to_string()),
        status,
        error_code: None,
        task_id: Some(task.id.clone()),
    }
}

/// A fixed base instant, so that ordering tests do not depend on the clock.
pub fn t0() -> Timestamp {
    "2026-11-25T09:00:00.123456789Z".parse().unwrap()
}

pub fn at(seconds: i64) -> Timestamp {
    t0() + jiff::SignedDuration::from_secs(seconds)
}
