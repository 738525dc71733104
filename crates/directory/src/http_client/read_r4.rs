//! Reading the R4 answers leniently: the national services add elements,
//! periods, extensions and several names or addresses that this system does
//! not need, so only what a consumer uses is required and the rest ignored.

use crate::r4;
use crate::{DirectoryOrganisation, TracedPatient};
use gpc_domain::reference::{Address, Gender};
use gpc_domain::systems::IdSystem;
use gpc_domain::{Asid, NhsNumber, OdsCode};
use jiff::civil::Date;
use serde_json::Value;

type Read<T> = Result<T, String>;

/// A PDS `Patient`. A restricted record is stripped here too, so that a
/// service that over-shares cannot make this system reveal it.
pub fn patient(p: &Value) -> Read<TracedPatient> {
    expect_type(p, "Patient")?;
    let nhs_number = p["id"]
        .as_str()
        .and_then(|id| NhsNumber::parse(id).ok())
        .or_else(|| {
            identifiers(p)
                .find(|i| system_is(i, IdSystem::NhsNumber))
                .and_then(|i| NhsNumber::parse(i["value"].as_str()?).ok())
        })
        .ok_or("no valid NHS number in id or identifier")?;
    let name = preferred(&p["name"], &["usual", "official"]);
    let words = |v: &Value| -> String {
        list(v)
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" ")
    };
    let restricted = list(&p["meta"]["security"])
        .any(|s| matches!(s["code"].as_str(), Some(r4::RESTRICTED | "V")));
    let birth_date = date(&p["birthDate"])?.ok_or("birthDate missing")?;
    let deceased = date(&p["deceasedDateTime"])?;
    let registered_practice = list(&p["generalPractitioner"])
        .next()
        .and_then(|gp| gp["identifier"]["value"].as_str())
        .map(|code| OdsCode::parse(code).ok_or(format!("malformed GP practice code {code:?}")))
        .transpose()?;
    let open = !restricted;
    Ok(TracedPatient {
        nhs_number,
        title: words(&name["prefix"]),
        given: words(&name["given"]),
        family: name["family"].as_str().unwrap_or_default().to_owned(),
        birth_date,
        gender: gender(p["gender"].as_str()),
        address: address(&preferred(&p["address"], &["home"])).filter(|_| open),
        telephone: phone(&p["telecom"]).filter(|_| open),
        registered_practice: registered_practice.filter(|_| open),
        restricted,
        deceased,
    })
}

/// The address of the first usable SDS `Endpoint`; `None` when there is none.
pub fn endpoint_address(bundle: &Value) -> Read<Option<String>> {
    Ok(resources(bundle, "Endpoint")?
        .into_iter()
        .filter(|e| matches!(e["status"].as_str(), None | Some("active")))
        .find_map(|e| e["address"].as_str().filter(|a| !a.is_empty()))
        .map(|a| a.trim_end_matches('/').to_owned()))
}

/// The ASID of the first SDS `Device`; `None` when there is none.
pub fn device_asid(bundle: &Value) -> Read<Option<Asid>> {
    let Some(value) = resources(bundle, "Device")?.into_iter().find_map(|d| {
        identifiers(d)
            .find(|i| i["system"] == r4::SPINE_ASID)
            .and_then(|i| i["value"].as_str())
    }) else {
        return Ok(None);
    };
    Asid::parse(value)
        .map(Some)
        .ok_or(format!("malformed ASID {value:?}"))
}

pub fn organisations(bundle: &Value) -> Read<Vec<DirectoryOrganisation>> {
    resources(bundle, "Organization")?
        .into_iter()
        .map(organisation)
        .collect()
}

pub fn organisation(o: &Value) -> Read<DirectoryOrganisation> {
    expect_type(o, "Organization")?;
    let code = identifiers(o)
        .find(|i| system_is(i, IdSystem::OdsOrganizationCode))
        .and_then(|i| i["value"].as_str())
        .or_else(|| o["id"].as_str())
        .ok_or("no ODS code")?;
    let kind = list(&o["type"]).next().unwrap_or(&Value::Null);
    let care_setting = kind["text"]
        .as_str()
        .or_else(|| kind["coding"][0]["display"].as_str())
        .unwrap_or_default();
    Ok(DirectoryOrganisation {
        ods: OdsCode::parse(code).ok_or(format!("malformed ODS code {code:?}"))?,
        name: o["name"].as_str().unwrap_or_default().to_owned(),
        care_setting: care_setting.to_owned(),
        telephone: phone(&o["telecom"]).unwrap_or_default(),
        address: address(&preferred(&o["address"], &["work"])),
    })
}

fn expect_type(v: &Value, resource_type: &str) -> Read<()> {
    match v["resourceType"].as_str() {
        Some(t) if t == resource_type => Ok(()),
        other => Err(format!("expected a {resource_type}, got {other:?}")),
    }
}

/// The resources of one type in a Bundle, skipping the OperationOutcome
/// entries some services add to a searchset.
fn resources<'a>(bundle: &'a Value, resource_type: &str) -> Read<Vec<&'a Value>> {
    expect_type(bundle, "Bundle")?;
    Ok(list(&bundle["entry"])
        .map(|e| &e["resource"])
        .filter(|r| r["resourceType"] == resource_type)
        .collect())
}

/// An array's items; a lone object counts as a list of one, as some
/// services write single-valued elements that R4 defines as lists.
fn list(v: &Value) -> Box<dyn Iterator<Item = &Value> + '_> {
    match v {
        Value::Array(items) => Box::new(items.iter()),
        Value::Null => Box::new(std::iter::empty()),
        one => Box::new(std::iter::once(one)),
    }
}

fn identifiers(v: &Value) -> impl Iterator<Item = &Value> {
    list(&v["identifier"])
}

fn system_is(identifier: &Value, system: IdSystem) -> bool {
    identifier["system"].as_str().and_then(IdSystem::parse) == Some(system)
}

/// The first item whose `use` is one of `uses`, else the first item.
fn preferred(v: &Value, uses: &[&str]) -> Value {
    list(v)
        .find(|item| item["use"].as_str().is_some_and(|u| uses.contains(&u)))
        .or_else(|| list(v).next())
        .cloned()
        .unwrap_or(Value::Null)
}

fn address(a: &Value) -> Option<Address> {
    if !a.is_object() {
        return None;
    }
    let text = |key: &str| a[key].as_str().unwrap_or_default().to_owned();
    Some(Address {
        lines: list(&a["line"])
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        city: text("city"),
        postcode: text("postalCode"),
    })
}

fn phone(telecom: &Value) -> Option<String> {
    list(telecom)
        .find(|t| t["system"] == "phone")
        .and_then(|t| t["value"].as_str())
        .map(str::to_owned)
}

fn gender(g: Option<&str>) -> Gender {
    match g {
        Some("male") => Gender::Male,
        Some("female") => Gender::Female,
        Some("other") => Gender::Other,
        _ => Gender::Unknown,
    }
}

/// A FHIR date or dateTime, by its date part (PDS writes
/// `2010-10-22T00:00:00+00:00` for a death).
fn date(v: &Value) -> Read<Option<Date>> {
    let Some(s) = v.as_str() else {
        return Ok(None);
    };
    s.get(..10)
        .and_then(|d| d.parse().ok())
        .map(Some)
        .ok_or(format!("malformed date {s:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Abridged from the national PDS sandbox's answer for 9000000009.
    fn national_pds_patient() -> Value {
        json!({
            "resourceType": "Patient",
            "id": "9000000009",
            "identifier": [{
                "system": "https://fhir.nhs.uk/Id/nhs-number",
                "value": "9000000009",
                "extension": [{"url": "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus",
                               "valueCodeableConcept": {"coding": [{"code": "01"}]}}]
            }],
            "meta": {"versionId": "2", "security": [{
                "system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality",
                "code": "U", "display": "unrestricted"}]},
            "name": [
                {"id": "123", "use": "nickname", "given": ["Janey"], "family": "Smith"},
                {"id": "124", "use": "usual", "period": {"start": "2020-01-01"},
                 "given": ["Jane", "Anne"], "family": "Smith", "prefix": ["Mrs"], "suffix": ["MBE"]}
            ],
            "gender": "female",
            "birthDate": "2010-10-22",
            "deceasedDateTime": "2010-10-22T00:00:00+00:00",
            "generalPractitioner": [{"id": "254406A3", "type": "Organization",
                "identifier": {"system": "https://fhir.nhs.uk/Id/ods-organization-code",
                               "value": "Y12345", "period": {"start": "2020-01-01"}}}],
            "address": [
                {"id": "456", "use": "temp", "line": ["Holiday Inn"], "postalCode": "LS1 1AA"},
                {"id": "457", "use": "home", "line": ["1 Trevelyan Square", "Boar Lane"],
                 "city": "Leeds", "postalCode": "LS1 6AE"}
            ],
            "telecom": [
                {"id": "789", "system": "email", "value": "jane.smith@example.com"},
                {"id": "790", "system": "phone", "value": "01632960587", "use": "home"}
            ]
        })
    }

    #[test]
    fn reads_the_national_pds_shape() {
        let p = patient(&national_pds_patient()).unwrap();
        assert_eq!(p.nhs_number.as_digits(), "9000000009");
        assert_eq!(p.display_name(), "Mrs Jane Anne Smith");
        assert_eq!(p.gender, Gender::Female);
        assert_eq!(p.birth_date.to_string(), "2010-10-22");
        assert_eq!(p.deceased.unwrap().to_string(), "2010-10-22");
        assert_eq!(p.registered_practice.unwrap().as_str(), "Y12345");
        let home = p.address.unwrap();
        assert_eq!(home.lines, ["1 Trevelyan Square", "Boar Lane"]);
        assert_eq!(
            (home.city.as_str(), home.postcode.as_str()),
            ("Leeds", "LS1 6AE")
        );
        assert_eq!(p.telephone.as_deref(), Some("01632960587"));
        assert!(!p.restricted);
    }

    #[test]
    fn a_restricted_record_is_stripped_even_when_over_shared() {
        let mut p = national_pds_patient();
        p["meta"]["security"][0]["code"] = json!("R");
        let p = patient(&p).unwrap();
        assert!(p.restricted);
        assert_eq!(
            (p.address, p.telephone, p.registered_practice),
            (None, None, None)
        );
    }

    #[test]
    fn a_patient_without_a_valid_number_or_birth_date_is_refused() {
        let mut p = national_pds_patient();
        p["id"] = json!("9000000184");
        p["identifier"][0]["value"] = json!("9000000184");
        assert!(patient(&p).is_err());
        let mut p = national_pds_patient();
        p.as_object_mut().unwrap().remove("birthDate");
        assert!(patient(&p).is_err());
        assert!(patient(&json!({"resourceType": "OperationOutcome"})).is_err());
    }

    #[test]
    fn sds_bundles_skip_outcomes_and_inactive_endpoints() {
        let bundle = json!({"resourceType": "Bundle", "type": "searchset", "entry": [
            {"resource": {"resourceType": "OperationOutcome"}, "search": {"mode": "outcome"}},
            {"resource": {"resourceType": "Endpoint", "status": "off", "address": "https://old.example/fhir"}},
            {"resource": {"resourceType": "Endpoint", "status": "active", "address": "https://gp.example/fhir/"}}
        ]});
        assert_eq!(
            endpoint_address(&bundle).unwrap().as_deref(),
            Some("https://gp.example/fhir")
        );
        let empty = json!({"resourceType": "Bundle", "type": "searchset", "total": 0});
        assert_eq!(endpoint_address(&empty).unwrap(), None);
        assert_eq!(device_asid(&empty).unwrap(), None);
        let devices = json!({"resourceType": "Bundle", "entry": [{"resource": {
            "resourceType": "Device",
            "identifier": [{"system": "https://fhir.nhs.uk/Id/nhsMhsPartyKey", "value": "R8008-0000806"},
                           {"system": "https://fhir.nhs.uk/Id/nhsSpineASID", "value": "227319907548"}]}}]});
        assert_eq!(
            device_asid(&devices).unwrap().unwrap().as_str(),
            "227319907548"
        );
        assert!(endpoint_address(&json!({"resourceType": "Endpoint"})).is_err());
    }

    #[test]
    fn an_organisation_reads_from_either_identifier_spelling_or_its_id() {
        let o = organisation(&json!({
            "resourceType": "Organization", "id": "X26",
            "identifier": {"system": "http://fhir.nhs.net/Id/ods-organization-code", "value": "X26"},
            "name": "NHS England",
            "type": [{"coding": [{"code": "RO116", "display": "NHS Trust"}]}],
            "telecom": [{"system": "phone", "value": "0300 311 22 33"}]
        }))
        .unwrap();
        assert_eq!(
            (o.ods.as_str(), o.care_setting.as_str()),
            ("X26", "NHS Trust")
        );
        assert_eq!(o.telephone, "0300 311 22 33");
        assert_eq!(o.address, None);
        let by_id = organisation(&json!({"resourceType": "Organization", "id": "Y12345"})).unwrap();
        assert_eq!(by_id.ods.as_str(), "Y12345");
    }
}
