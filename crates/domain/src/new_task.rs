//! Building the task a provider stores from an Order it has validated
//! (spec §4.2), the JWT's provenance (§3) and fresh ids. Plain domain code,
//! so that every entry point that stores a task (the `POST /Order` handler
//! today, a task update or another view later) builds it the same way.

use crate::ProviderError;
use crate::ids::{Asid, OdsCode};
use crate::jwt::AuditClaims;
use crate::order_rules::ValidOrder;
use crate::reference::Organisation;
use crate::systems::{PROFILE_ORDER, URN};
use crate::task::{BusinessIdentifier, NewTask, Provenance};
use jiff::Timestamp;
use serde_json::{Map, Value, json};

/// The ids a new task is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FreshIds {
    /// The resource id.
    pub id: String,
    /// The provider's own business identifier, `urn:uuid:…`.
    pub provider_identifier: String,
}

impl FreshIds {
    pub fn generate() -> Self {
        Self {
            // Time-ordered (v7, still 74 random bits): a new task's id lands
            // at the end of the primary-key index instead of on a random page
            // of it, so a commit rewrites one index page rather than one per
            // task.
            id: uuid::Uuid::now_v7().to_string(),
            provider_identifier: format!("urn:uuid:{}", uuid::Uuid::new_v4()),
        }
    }
}

/// Who sent the request, as the provider saw it.
pub struct Sender<'a> {
    pub claims: &'a AuditClaims,
    /// `Ssp-From`.
    pub asid: Asid,
    pub trace_id: &'a str,
}

/// The version every task has on delivery.
pub const FIRST_VERSION: &str = "1";

/// The task to store for `order`, sent by `sender` to `tenant` at `now`.
/// `extra_keys` are further idempotency keys (an `If-None-Exist`
/// identifier) besides the Order's own identifiers.
pub fn task_from_order(
    order: ValidOrder<'_>,
    tenant: &Organisation,
    sender: Sender<'_>,
    extra_keys: Vec<BusinessIdentifier>,
    ids: FreshIds,
    now: Timestamp,
) -> Result<NewTask, ProviderError> {
    let claims = sender.claims;
    // Through the SSP this is the sender's own code (checked against
    // `Ssp-From`); sent directly, the claim is all there is.
    let organisation_ods = OdsCode::parse(&claims.organisation_ods).ok_or_else(|| {
        ProviderError::BadRequest(
            "the JWT's requesting_organization has no valid ODS code identifier".into(),
        )
    })?;
    let mut idempotency_keys = order.identifiers;
    idempotency_keys.extend(extra_keys);
    let resource = stored_resource(
        order.resource,
        &ids.id,
        FIRST_VERSION,
        now,
        &ids.provider_identifier,
    );
    Ok(NewTask {
        id: ids.id,
        version_id: FIRST_VERSION.to_owned(),
        tenant: tenant.ods.clone(),
        idempotency_keys,
        provider_identifier: ids.provider_identifier,
        patient_id: order.patient.id.clone(),
        nhs_number: order.patient.nhs_number,
        patient_name: order.patient.display_name(),
        source_org_id: order.source.id.clone(),
        task_type: order.task_type,
        text: order.text,
        received_at: now,
        provenance: Provenance {
            sender_asid: sender.asid,
            organisation_ods,
            organisation_name: claims.organisation_name.clone(),
            practitioner_sds_id: claims.practitioner_sds_id.clone(),
            practitioner_name: claims.practitioner_name.clone(),
            role_code: claims.role_code.clone(),
            role_display: claims.role_display.clone(),
            trace_id: sender.trace_id.to_owned(),
        },
        resource,
    })
}

/// The Order as stored: server id and meta first, then what was submitted,
/// with the provider's own business identifier added.
fn stored_resource(
    submitted: Map<String, Value>,
    id: &str,
    version: &str,
    now: Timestamp,
    provider_identifier: &str,
) -> Value {
    let mut out = Map::with_capacity(submitted.len() + 2);
    out.insert("resourceType".into(), json!("Order"));
    out.insert("id".into(), json!(id));
    let mut meta = match submitted.get("meta") {
        Some(Value::Object(m)) => m.clone(),
        _ => Map::new(),
    };
    meta.insert("versionId".into(), json!(version));
    meta.insert("lastUpdated".into(), json!(now.to_string()));
    if !meta.contains_key("profile") {
        meta.insert("profile".into(), json!([PROFILE_ORDER]));
    }
    out.insert("meta".into(), Value::Object(meta));
    let mut identifier_added = false;
    for (key, value) in submitted {
        match key.as_str() {
            "resourceType" | "id" | "meta" => {}
            "identifier" => {
                let mut ids = match value {
                    Value::Array(a) => a,
                    _ => Vec::new(),
                };
                ids.push(json!({"system": URN, "value": provider_identifier}));
                out.insert(key, Value::Array(ids));
                identifier_added = true;
            }
            _ => {
                out.insert(key, value);
            }
        }
    }
    if !identifier_added {
        out.insert(
            "identifier".into(),
            json!([{"system": URN, "value": provider_identifier}]),
        );
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stored_order_leads_with_its_id_and_meta_and_gains_the_provider_identifier() {
        let mut submitted = Map::new();
        submitted.insert("resourceType".into(), json!("Order"));
        submitted.insert("zeta".into(), json!(1));
        submitted.insert(
            "identifier".into(),
            json!([{"system": "https://consumer.example", "value": "a"}]),
        );
        submitted.insert("meta".into(), json!({"profile": ["p"]}));
        let now: Timestamp = "2026-12-02T10:00:00Z".parse().unwrap();
        let stored = stored_resource(submitted, "id-1", "1", now, "urn:uuid:x");
        let keys: Vec<&str> = stored
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, ["resourceType", "id", "meta", "zeta", "identifier"]);
        assert_eq!(
            stored["meta"],
            json!({"profile": ["p"], "versionId": "1", "lastUpdated": "2026-12-02T10:00:00Z"})
        );
        assert_eq!(
            stored["identifier"][1],
            json!({"system": URN, "value": "urn:uuid:x"})
        );
    }

    #[test]
    fn an_order_without_identifiers_or_profile_gets_both() {
        let now: Timestamp = "2026-12-02T10:00:00Z".parse().unwrap();
        let stored = stored_resource(Map::new(), "id-1", "1", now, "urn:uuid:x");
        assert_eq!(stored["meta"]["profile"], json!([PROFILE_ORDER]));
        assert_eq!(
            stored["identifier"],
            json!([{"system": URN, "value": "urn:uuid:x"}])
        );
    }

    #[test]
    fn fresh_ids_are_time_ordered_uuids() {
        let a = FreshIds::generate();
        let b = FreshIds::generate();
        assert_ne!(a, b);
        let parsed = uuid::Uuid::parse_str(&a.id).unwrap();
        assert_eq!(parsed.get_version_num(), 7);
        assert!(a.provider_identifier.starts_with("urn:uuid:"));
    }
}
