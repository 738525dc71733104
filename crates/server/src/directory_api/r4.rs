//! FHIR R4 resources in the shape the national directory APIs write them.

use axum::http::Uri;
use gpc_directory::r4::{
    CONFIDENTIALITY, NHS_NUMBER, ODS_ORGANIZATION_CODE, RESTRICTED, SERVICE_INTERACTION_ID,
    SPINE_ASID, UNRESTRICTED,
};
use gpc_directory::{DirectoryOrganisation, SdsEndpoint, TracedPatient};
use gpc_domain::reference::Address;
use gpc_domain::{Asid, OdsCode};
use serde_json::{Map, Value, json};

/// A PDS Patient. Address, telecom and GP are left out of a restricted
/// record here as well as in the directory: this is the last place they
/// could leak from.
pub fn patient(p: &TracedPatient) -> Value {
    let nhs = p.nhs_number.as_digits();
    let (security, display) = if p.restricted {
        (RESTRICTED, "restricted")
    } else {
        (UNRESTRICTED, "unrestricted")
    };
    let mut name = Map::new();
    name.insert("use".into(), json!("official"));
    name.insert("family".into(), json!(p.family));
    let given: Vec<&str> = p.given.split_whitespace().collect();
    if !given.is_empty() {
        name.insert("given".into(), json!(given));
    }
    if !p.title.is_empty() {
        name.insert("prefix".into(), json!([p.title]));
    }
    let mut r = json!({
        "resourceType": "Patient",
        "id": nhs,
        "meta": {
            "versionId": "1",
            "security": [{"system": CONFIDENTIALITY, "code": security, "display": display}]
        },
        "identifier": [{"system": NHS_NUMBER, "value": nhs}],
        "name": [name],
        "gender": p.gender.as_fhir(),
        "birthDate": p.birth_date.to_string(),
    });
    if let Some(died) = p.deceased {
        r["deceasedDateTime"] = json!(died.to_string());
    }
    if p.restricted {
        return r;
    }
    if let Some(a) = &p.address {
        r["address"] = json!([address(a, "home")]);
    }
    if let Some(phone) = &p.telephone {
        r["telecom"] = json!([{"system": "phone", "value": phone, "use": "home"}]);
    }
    if let Some(gp) = &p.registered_practice {
        r["generalPractitioner"] =
            json!([{"type": "Organization", "identifier": ods_identifier(gp)}]);
    }
    r
}

/// An SDS Endpoint: the provider root of `e.ods` for `interaction`.
pub fn endpoint(e: &SdsEndpoint, interaction: &str) -> Value {
    json!({
        "resourceType": "Endpoint",
        "id": fhir_id(&format!("{}-{}", e.ods, short_interaction(interaction))),
        "identifier": [{"system": SERVICE_INTERACTION_ID, "value": interaction}],
        "status": "active",
        "connectionType": {
            "system": "http://terminology.hl7.org/CodeSystem/endpoint-connection-type",
            "code": "hl7-fhir-rest",
            "display": "HL7 FHIR"
        },
        "managingOrganization": {"identifier": ods_identifier(&e.ods)},
        "payloadType": [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/endpoint-payload-type",
            "code": "any",
            "display": "Any"
        }]}],
        "address": e.address,
    })
}

/// An SDS Device: the accredited system (ASID) `ods` uses for `interaction`.
/// Its id is the ASID, since one system serves many interactions.
pub fn device(ods: &OdsCode, asid: &Asid, interaction: &str) -> Value {
    json!({
        "resourceType": "Device",
        "id": asid.as_str(),
        "identifier": [
            {"system": SPINE_ASID, "value": asid.as_str()},
            {"system": SERVICE_INTERACTION_ID, "value": interaction}
        ],
        "owner": {"identifier": ods_identifier(ods)},
    })
}

/// An organisation. The care setting has no national code list in this
/// system, so it is carried as the type's text rather than an invented coding.
pub fn organization(o: &DirectoryOrganisation) -> Value {
    let mut r = json!({
        "resourceType": "Organization",
        "id": o.ods.as_str(),
        "identifier": [ods_identifier(&o.ods)],
        "active": true,
        "type": [{"text": o.care_setting}],
        "name": o.name,
    });
    if !o.telephone.is_empty() {
        r["telecom"] = json!([{"system": "phone", "value": o.telephone, "use": "work"}]);
    }
    if let Some(a) = &o.address {
        r["address"] = json!([address(a, "work")]);
    }
    r
}

/// A searchset Bundle of `resources`, each addressed under `base`; `uri` is
/// the request as seen inside the API's mount, for the self link.
pub fn searchset(base: &str, uri: &Uri, resources: Vec<Value>) -> Value {
    let self_link = match uri.query() {
        Some(q) => format!("{base}{}?{q}", uri.path()),
        None => format!("{base}{}", uri.path()),
    };
    let entries: Vec<Value> = resources
        .into_iter()
        .map(|r| {
            let full_url = format!(
                "{base}/{}/{}",
                r["resourceType"].as_str().unwrap_or_default(),
                r["id"].as_str().unwrap_or_default()
            );
            json!({"fullUrl": full_url, "resource": r, "search": {"mode": "match"}})
        })
        .collect();
    json!({
        "resourceType": "Bundle",
        "id": uuid::Uuid::new_v4().to_string(),
        "type": "searchset",
        "total": entries.len(),
        "link": [{"relation": "self", "url": self_link}],
        "entry": entries,
    })
}

fn ods_identifier(ods: &OdsCode) -> Value {
    json!({"system": ODS_ORGANIZATION_CODE, "value": ods.as_str()})
}

fn address(a: &Address, usage: &str) -> Value {
    json!({"use": usage, "line": a.lines, "city": a.city, "postalCode": a.postcode})
}

/// `urn:nhs:names:services:gpconnect:fhir:rest:create:order` → `gpconnect-fhir-rest-create-order`.
fn short_interaction(interaction: &str) -> String {
    interaction
        .strip_prefix("urn:nhs:names:services:")
        .unwrap_or(interaction)
        .replace(':', "-")
}

/// FHIR ids are at most 64 of `[A-Za-z0-9-.]`.
fn fhir_id(raw: &str) -> String {
    raw.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect()
}
