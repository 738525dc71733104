//! FHIR DSTU2 resources built from reference data, as the provider serves them.

use axum::body::Bytes;
use gpc_domain::Interaction;
use gpc_domain::reference::{Address, Organisation, Patient, Practitioner};
use gpc_domain::region::Region;
use gpc_domain::systems::*;
use gpc_fhir::Format;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::RwLock;

/// Reference data does not change while serving, so every record is version 1.
pub const REFERENCE_VERSION: &str = "1";
const REFERENCE_LAST_UPDATED: &str = "2026-01-01T00:00:00+00:00";

fn meta(profile: &str) -> Value {
    json!({"versionId": REFERENCE_VERSION, "lastUpdated": REFERENCE_LAST_UPDATED, "profile": [profile]})
}

fn address(a: &Address) -> Value {
    json!({"use": "home", "line": a.lines, "city": a.city, "postalCode": a.postcode})
}

fn verification_display(code: &str) -> &'static str {
    match code {
        "01" => "Number present and verified",
        "02" => "Number present but not traced",
        "03" => "Trace required",
        "04" => "Trace attempted - No match or multiple match found",
        "05" => "Trace needs to be resolved - (NHS number or patient detail conflict)",
        "06" => "Trace in progress",
        "07" => "Number not present and trace not required",
        "08" => "Trace postponed (baby under six weeks old)",
        _ => "Unknown",
    }
}

pub fn patient(p: &Patient, region: &Region) -> Value {
    let mut resource = serde_json::Map::new();
    resource.insert("resourceType".into(), json!("Patient"));
    resource.insert("id".into(), json!(p.id));
    resource.insert("meta".into(), meta(PROFILE_PATIENT));
    resource.insert(
        "identifier".into(),
        json!([{
            "extension": [{
                "url": NHS_NUMBER_VERIFICATION_EXTENSION,
                "valueCodeableConcept": {"coding": [{
                    "system": NHS_NUMBER_VERIFICATION_VALUESET,
                    "code": p.verification_status,
                    "display": verification_display(&p.verification_status)
                }]}
            }],
            "system": NHS_NUMBER,
            "value": p.nhs_number.as_digits()
        }]),
    );
    resource.insert(
        "name".into(),
        json!([{"use": "official", "family": [p.family], "given": [p.given], "prefix": [p.title]}]),
    );
    if !p.sensitive
        && let Some(phone) = &p.telephone
    {
        resource.insert(
            "telecom".into(),
            json!([{"system": "phone", "value": phone, "use": "home"}]),
        );
    }
    resource.insert("gender".into(), json!(p.gender.as_fhir()));
    resource.insert("birthDate".into(), json!(p.birth_date.to_string()));
    if let Some(died) = p.deceased {
        resource.insert("deceasedDateTime".into(), json!(died.to_string()));
    }
    if !p.sensitive {
        resource.insert("address".into(), json!([address(&p.address)]));
    }
    if let Some(gp) = region.usual_gp(&p.registered_practice) {
        resource.insert(
            "careProvider".into(),
            json!([{"reference": format!("Practitioner/{}", gp.id), "display": gp.display_name()}]),
        );
    }
    if let Some(practice) = region.organisation_by_ods(p.registered_practice.as_str()) {
        resource.insert(
            "managingOrganization".into(),
            json!({"reference": format!("Organization/{}", practice.id), "display": practice.name}),
        );
    }
    Value::Object(resource)
}

pub fn organization(o: &Organisation) -> Value {
    let mut identifiers = vec![json!({"system": ODS_ORGANIZATION_CODE, "value": o.ods.as_str()})];
    identifiers.extend(
        o.site_codes
            .iter()
            .map(|s| json!({"system": ODS_SITE_CODE, "value": s})),
    );
    let mut resource = json!({
        "resourceType": "Organization",
        "id": o.id,
        "meta": meta(PROFILE_ORGANIZATION),
        "identifier": identifiers,
        "type": {"text": o.care_setting},
        "name": o.name,
        "telecom": [{"system": "phone", "value": o.telephone, "use": "work"}],
    });
    if let Some(a) = &o.address {
        resource["address"] =
            json!([{"use": "work", "line": a.lines, "city": a.city, "postalCode": a.postcode}]);
    }
    resource
}

pub fn practitioner(p: &Practitioner, region: &Region) -> Value {
    let mut role = json!({
        "role": {"coding": [{"system": SDS_JOB_ROLE, "code": p.role_code, "display": p.role_display}]}
    });
    if let Some(org) = region.organisation_by_ods(p.organisation.as_str()) {
        role["managingOrganization"] =
            json!({"reference": format!("Organization/{}", org.id), "display": org.name});
    }
    json!({
        "resourceType": "Practitioner",
        "id": p.id,
        "meta": meta(PROFILE_PRACTITIONER),
        "identifier": [
            {"system": SDS_USER_ID, "value": p.sds_user_id},
            {"system": SDS_ROLE_PROFILE_ID, "value": format!("{}{}", p.organisation, p.id)}
        ],
        "name": {"family": [p.family], "given": [p.given], "prefix": [p.title]},
        "practitionerRole": [role],
    })
}

/// A `searchset` Bundle of resources served under `root`.
pub fn searchset(root: &str, resources: Vec<Value>) -> Value {
    let entries: Vec<Value> = resources
        .into_iter()
        .map(|r| {
            let url = format!(
                "{root}/{}/{}",
                r["resourceType"].as_str().unwrap_or_default(),
                r["id"].as_str().unwrap_or_default()
            );
            json!({"fullUrl": url, "resource": r})
        })
        .collect();
    let mut bundle = json!({
        "resourceType": "Bundle",
        "id": uuid::Uuid::new_v4().to_string(),
        "meta": {"lastUpdated": jiff::Timestamp::now().to_string()},
        "type": "searchset",
        "total": entries.len(),
    });
    if !entries.is_empty() {
        bundle["entry"] = Value::Array(entries);
    }
    bundle
}

/// The rendered Conformance bodies of [`conformance_body`], by provider root,
/// each in JSON and XML. One cache belongs to each application state (the
/// server's `AppState`), never to the process, so that servers started side
/// by side (as tests do) each keep the bodies of their own roots.
#[derive(Debug, Default)]
pub struct ConformanceCache {
    rendered: RwLock<HashMap<String, Rendered>>,
}

/// The bodies of one root, for an organisation that does or does not
/// receive tasks: new reference data may change that, and the other
/// statement is rendered then.
#[derive(Debug, Default)]
struct Rendered {
    receives_tasks: bool,
    bodies: [Option<Bytes>; 2],
}

impl ConformanceCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// How many provider roots this cache keeps bodies of.
    pub fn kept(&self) -> usize {
        self.rendered
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }
}

/// The Conformance of `org`'s provider root in `format`, rendered once per
/// root and format (and kept in `cache`): it changes with nothing but
/// whether the organisation receives tasks, and building and serialising it
/// per request was a third of the work of a `GET /metadata`.
pub fn conformance_body(
    cache: &ConformanceCache,
    root: &str,
    org: &Organisation,
    format: Format,
) -> Bytes {
    /// Far more than the roots of one server; past it, bodies are rendered
    /// per request rather than kept.
    const MAX_ROOTS: usize = 1024;
    let slot = match format {
        Format::Json => 0,
        Format::Xml => 1,
    };
    let receives_tasks = org.receives_tasks;
    let cached = cache
        .rendered
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .get(root)
        .filter(|r| r.receives_tasks == receives_tasks)
        .and_then(|r| r.bodies[slot].clone());
    if let Some(bytes) = cached {
        return bytes;
    }
    let bytes = Bytes::from(gpc_fhir::to_body(&conformance(root, org), format));
    let mut rendered = cache.rendered.write().unwrap_or_else(|p| p.into_inner());
    if rendered.len() < MAX_ROOTS || rendered.contains_key(root) {
        let entry = rendered.entry(root.to_owned()).or_default();
        if entry.receives_tasks != receives_tasks {
            *entry = Rendered {
                receives_tasks,
                bodies: [None, None],
            };
        }
        entry.bodies[slot] = Some(bytes.clone());
    }
    bytes
}

/// The Conformance statement (spec §6) of `org`'s root at `root`: task
/// updates everywhere (task-lifecycle.md §2), and the look-ups and Create
/// Task only where the organisation receives tasks.
pub fn conformance(root: &str, org: &Organisation) -> Value {
    let lookup = |kind: &str, profile: &str, system: &str| {
        json!({
            "type": kind,
            "profile": {"reference": profile},
            "interaction": [{"code": "read"}, {"code": "search-type"}],
            "searchParam": [{"name": "identifier", "type": "token", "documentation": format!("{system}|value")}]
        })
    };
    let mut resources = Vec::new();
    if org.serves(Interaction::SearchPatient) {
        resources.push(lookup("Patient", PROFILE_PATIENT, NHS_NUMBER));
    }
    if org.serves(Interaction::SearchOrganization) {
        resources.push(lookup(
            "Organization",
            PROFILE_ORGANIZATION,
            ODS_ORGANIZATION_CODE,
        ));
    }
    if org.serves(Interaction::SearchPractitioner) {
        resources.push(lookup("Practitioner", PROFILE_PRACTITIONER, SDS_USER_ID));
    }
    if org.serves(Interaction::CreateTask) {
        resources.push(json!({
            "type": "Order",
            "profile": {"reference": PROFILE_ORDER},
            "interaction": [{"code": "create"}],
            "conditionalCreate": true
        }));
    }
    if org.serves(Interaction::CreateOrderResponse) {
        resources.push(json!({
            "type": "OrderResponse",
            "profile": {"reference": PROFILE_ORDER_RESPONSE},
            "interaction": [{"code": "create"}]
        }));
    }
    json!({
        "resourceType": "Conformance",
        "meta": {"versionId": "1", "lastUpdated": REFERENCE_LAST_UPDATED},
        "url": format!("{root}/metadata"),
        "version": env!("CARGO_PKG_VERSION"),
        "name": "GP Connect Task Management",
        "status": "active",
        "publisher": "gpc-tasks",
        "date": "2026-11-25",
        "description": if org.serves(Interaction::CreateTask) {
            "GP Connect Task Management provider (DSTU2 1.0.0-beta): receives notifications and tasks about one patient, and updates of the tasks it sent."
        } else {
            "GP Connect Task Management provider (DSTU2 1.0.0-beta): receives updates of the tasks this organisation sent; it receives no tasks."
        },
        "kind": "instance",
        "software": {"name": "gpc-tasks", "version": env!("CARGO_PKG_VERSION")},
        "implementation": {"description": "gpc-tasks multi-tenant provider", "url": root},
        "fhirVersion": "1.0.2",
        "acceptUnknown": "both",
        "format": ["application/json+fhir", "application/xml+fhir"],
        "rest": [{
            "mode": "server",
            "resource": resources
        }]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn org(ods: &str) -> Organisation {
        gpc_domain::Region::new(gpc_directory::demo_region())
            .organisation_by_ods(ods)
            .unwrap()
            .clone()
    }

    #[test]
    fn a_rendered_conformance_is_the_conformance_of_its_root_and_format() {
        let cache = ConformanceCache::new();
        for (root, ods) in [
            ("http://a.example/GPC001/DSTU2/1", "GPC001"),
            ("http://b.example/R1A14/DSTU2/1", "R1A14"),
        ] {
            let org = org(ods);
            for format in [Format::Json, Format::Xml] {
                let expected = gpc_fhir::to_body(&conformance(root, &org), format);
                // Rendered on the first call, kept for the second.
                assert_eq!(conformance_body(&cache, root, &org, format), expected);
                assert_eq!(conformance_body(&cache, root, &org, format), expected);
            }
        }
        assert_eq!(cache.kept(), 2);
    }

    #[test]
    fn two_caches_do_not_share_rendered_bodies() {
        let one = ConformanceCache::new();
        let other = ConformanceCache::default();
        let root = "http://a.example/GPC001/DSTU2/1";
        let gpc = org("GPC001");
        let body = conformance_body(&one, root, &gpc, Format::Json);
        assert_eq!((one.kept(), other.kept()), (1, 0));
        // The other cache renders the same root itself, and gives the same body.
        assert_eq!(conformance_body(&other, root, &gpc, Format::Json), body);
        conformance_body(
            &other,
            "http://b.example/R1A14/DSTU2/1",
            &org("R1A14"),
            Format::Xml,
        );
        assert_eq!((one.kept(), other.kept()), (1, 2));
    }

    fn types(conformance: &Value) -> Vec<&str> {
        conformance["rest"][0]["resource"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["type"].as_str().unwrap())
            .collect()
    }

    #[test]
    fn every_root_lists_task_updates_and_only_receivers_the_rest() {
        let receiver = conformance("http://a.example/GPC001/DSTU2/1", &org("GPC001"));
        assert_eq!(
            types(&receiver),
            [
                "Patient",
                "Organization",
                "Practitioner",
                "Order",
                "OrderResponse"
            ]
        );
        let sender = conformance("http://a.example/X11101/DSTU2/1", &org("X11101"));
        assert_eq!(types(&sender), ["OrderResponse"]);
        let update = &sender["rest"][0]["resource"][0];
        assert_eq!(update["interaction"], json!([{"code": "create"}]));
        assert_eq!(update["profile"]["reference"], PROFILE_ORDER_RESPONSE);
        for statement in [&receiver, &sender] {
            gpc_fhir::validate_resource(statement).unwrap();
        }
    }

    #[test]
    fn a_root_whose_organisation_stops_receiving_tasks_gets_the_other_statement() {
        let cache = ConformanceCache::new();
        let root = "http://a.example/GPC001/DSTU2/1";
        let mut gpc = org("GPC001");
        let before = conformance_body(&cache, root, &gpc, Format::Json);
        gpc.receives_tasks = false;
        let after = conformance_body(&cache, root, &gpc, Format::Json);
        assert_ne!(before, after);
        assert_eq!(
            after,
            gpc_fhir::to_body(&conformance(root, &gpc), Format::Json)
        );
        assert_eq!(cache.kept(), 1);
    }
}
