//! The unsecured JWT a consumer sends with every request (spec §3.3): a new
//! one per request, naming the user, their organisation and this system.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gpc_domain::jwt::{AUDIENCE, LIFETIME_SECONDS, Scope};
use gpc_domain::systems::{NHS_NUMBER, ODS_ORGANIZATION_CODE, SDS_JOB_ROLE, SDS_USER_ID};
use serde_json::{Value, json};

/// Who is asking: the user and the organisation they act for.
#[derive(Debug, Clone)]
pub struct Requester {
    /// The consumer system's URL (`iss`).
    pub system_url: String,
    pub user_id: String,
    pub user_sds_id: String,
    pub title: String,
    pub given: String,
    pub family: String,
    pub role_code: String,
    pub role_display: String,
    pub org_ods: String,
    pub org_name: String,
}

/// The record a request is about.
pub enum Record<'a> {
    Patient(&'a str),
    Organization(&'a str),
}

pub fn token(requester: &Requester, scope: Scope, record: Record<'_>, now: i64) -> String {
    let record = match record {
        Record::Patient(nhs) => {
            json!({"resourceType": "Patient", "identifier": [{"system": NHS_NUMBER, "value": nhs}]})
        }
        Record::Organization(ods) => json!({
            "resourceType": "Organization",
            "identifier": [{"system": ODS_ORGANIZATION_CODE, "value": ods}]
        }),
    };
    // A CIS2 user has no title, and FHIR allows no empty strings.
    let mut name = json!({"family": [requester.family], "given": [requester.given]});
    if !requester.title.is_empty() {
        name["prefix"] = json!([requester.title]);
    }
    let claims = json!({
        "iss": requester.system_url,
        "sub": requester.user_id,
        "aud": AUDIENCE,
        "exp": now + LIFETIME_SECONDS,
        "iat": now,
        "reason_for_request": "directcare",
        "requested_record": record,
        "requested_scope": scope.as_str(),
        "requesting_device": {
            "resourceType": "Device",
            "id": "gpc-tasks",
            "identifier": [{"system": "https://gpc-tasks.invalid/Id/device", "value": "gpc-tasks"}],
            "model": "gpc-tasks consumer",
            "version": env!("CARGO_PKG_VERSION")
        },
        "requesting_organization": {
            "resourceType": "Organization",
            "identifier": [{"system": ODS_ORGANIZATION_CODE, "value": requester.org_ods}],
            "name": requester.org_name
        },
        "requesting_practitioner": {
            "resourceType": "Practitioner",
            "id": requester.user_id,
            "identifier": [{"system": SDS_USER_ID, "value": requester.user_sds_id}],
            "name": name,
            "practitionerRole": [{"role": {"coding": [{
                "system": SDS_JOB_ROLE,
                "code": requester.role_code,
                "display": requester.role_display
            }]}}]
        }
    });
    encode(&claims)
}

fn encode(claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{payload}.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_provider_accepts_what_the_consumer_builds() {
        let requester = Requester {
            system_url: "http://127.0.0.1:8080/".into(),
            user_id: "3".into(),
            user_sds_id: "G11111116".into(),
            title: "Mrs".into(),
            given: "Melissa".into(),
            family: "PARSONS".into(),
            role_code: "R0260".into(),
            role_display: "General Medical Practitioner".into(),
            org_ods: "Y00001".into(),
            org_name: "North Lincolnshire Extended Access Hub".into(),
        };
        let now = jiff::Timestamp::now().as_second();
        let jwt = token(
            &requester,
            Scope::OrganizationWrite,
            Record::Organization("GPC001"),
            now,
        );
        let claims = gpc_domain::jwt::decode(
            &gpc_domain::jwt::ClaimCache::new(),
            Some(&format!("Bearer {jwt}")),
            now,
        )
        .unwrap();
        assert_eq!(claims.practitioner_sds_id, "G11111116");
        assert_eq!(claims.organisation_ods, "Y00001");
        assert_eq!(claims.practitioner_name, "Mrs Melissa PARSONS");
        claims
            .check_for(gpc_domain::Interaction::CreateTask, "GPC001", None)
            .unwrap();
    }
}
