//! The unsecured JWT every request carries (spec §3.3): decoded and checked
//! into [`AuditClaims`], whose practitioner and organisation become the
//! provenance of a task.

use crate::error::ProviderError;
use crate::ids::NhsNumber;
use crate::interaction::Interaction;
use crate::systems::{IdSystem, SDS_JOB_ROLE};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value};

pub const AUDIENCE: &str = "https://authorize.fhir.nhs.net/token";
/// A token lives exactly five minutes.
pub const LIFETIME_SECONDS: i64 = 300;
pub const CLOCK_SKEW_SECONDS: i64 = 5;
/// Tokens larger than this are refused before decoding.
const MAX_TOKEN_BYTES: usize = 16 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    PatientRead,
    PatientWrite,
    OrganizationRead,
    OrganizationWrite,
}

impl Scope {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "patient/*.read" => Some(Self::PatientRead),
            "patient/*.write" => Some(Self::PatientWrite),
            "organization/*.read" => Some(Self::OrganizationRead),
            "organization/*.write" => Some(Self::OrganizationWrite),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::PatientRead => "patient/*.read",
            Self::PatientWrite => "patient/*.write",
            Self::OrganizationRead => "organization/*.read",
            Self::OrganizationWrite => "organization/*.write",
        }
    }
}

/// The record the token says is being accessed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestedRecord {
    Patient(NhsNumber),
    Organization(String),
}

/// The validated claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditClaims {
    pub iss: String,
    pub sub: String,
    pub iat: i64,
    pub exp: i64,
    pub requested_record: RequestedRecord,
    pub requested_scope: Scope,
    pub organisation_ods: String,
    pub organisation_name: String,
    pub practitioner_id: String,
    pub practitioner_sds_id: String,
    pub practitioner_name: String,
    pub role_code: String,
    pub role_display: String,
}

fn bad(msg: impl Into<String>) -> ProviderError {
    ProviderError::BadRequest(msg.into())
}

fn invalid(msg: impl Into<String>) -> ProviderError {
    ProviderError::InvalidResource(msg.into())
}

/// Decodes `Authorization: Bearer <jwt>` and checks every claim rule that does
/// not depend on the operation. `now` is epoch seconds.
pub fn decode(authorization: Option<&str>, now: i64) -> Result<AuditClaims, ProviderError> {
    let header = authorization
        .filter(|h| !h.trim().is_empty())
        .ok_or_else(|| bad("the Authorization header is missing"))?;
    let token = header
        .strip_prefix("Bearer ")
        .ok_or_else(|| bad("the Authorization header must be 'Bearer <JWT>'"))?
        .trim();
    if token.len() > MAX_TOKEN_BYTES {
        return Err(bad("the JWT is too large"));
    }
    let parts: Vec<&str> = token.split('.').collect();
    if parts.len() != 3 || parts[0].is_empty() || parts[1].is_empty() {
        return Err(bad(
            "the JWT must have three base64url parts: header, payload and an empty signature",
        ));
    }
    let header = decode_part(parts[0], "header")?;
    if header.get("alg").and_then(Value::as_str).is_none() {
        return Err(bad("the JWT header has no 'alg'"));
    }
    let payload = decode_part(parts[1], "payload")?;
    claims_from(&payload, now)
}

fn decode_part(part: &str, name: &str) -> Result<Map<String, Value>, ProviderError> {
    let trimmed = part.trim_end_matches('=');
    let bytes = URL_SAFE_NO_PAD
        .decode(trimmed)
        .map_err(|_| bad(format!("the JWT {name} is not base64url")))?;
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(bad(format!("the JWT {name} is not a JSON object"))),
    }
}

fn required<'a>(claims: &'a Map<String, Value>, name: &str) -> Result<&'a Value, ProviderError> {
    match claims.get(name) {
        None | Some(Value::Null) => Err(bad(format!("the JWT claim '{name}' is missing"))),
        Some(v) => Ok(v),
    }
}

fn required_str<'a>(claims: &'a Map<String, Value>, name: &str) -> Result<&'a str, ProviderError> {
    match required(claims, name)? {
        Value::String(s) if !s.trim().is_empty() => Ok(s),
        Value::String(_) => Err(bad(format!("the JWT claim '{name}' is empty"))),
        _ => Err(bad(format!("the JWT claim '{name}' must be a string"))),
    }
}

fn required_int(claims: &Map<String, Value>, name: &str) -> Result<i64, ProviderError> {
    required(claims, name)?.as_i64().ok_or_else(|| {
        bad(format!(
            "the JWT claim '{name}' must be an integer of epoch seconds"
        ))
    })
}

fn claims_from(claims: &Map<String, Value>, now: i64) -> Result<AuditClaims, ProviderError> {
    // Presence of every claim first, so a missing one is reported as missing
    // whatever else is wrong.
    for name in [
        "iss",
        "sub",
        "aud",
        "iat",
        "exp",
        "reason_for_request",
        "requested_record",
        "requested_scope",
        "requesting_device",
        "requesting_organization",
        "requesting_practitioner",
    ] {
        required(claims, name)?;
    }
    let iss = required_str(claims, "iss")?;
    let sub = required_str(claims, "sub")?;
    if required_str(claims, "aud")? != AUDIENCE {
        return Err(bad(format!("the JWT claim 'aud' must be {AUDIENCE}")));
    }
    let iat = required_int(claims, "iat")?;
    let exp = required_int(claims, "exp")?;
    // Checked: extreme claims must be a 400, not an overflow.
    if exp.checked_sub(iat) != Some(LIFETIME_SECONDS) {
        return Err(bad(
            "the JWT claim 'exp' must be exactly 300 seconds after 'iat'",
        ));
    }
    if iat > now.saturating_add(CLOCK_SKEW_SECONDS) {
        return Err(bad("the JWT claim 'iat' is in the future"));
    }
    if exp < now.saturating_sub(CLOCK_SKEW_SECONDS) {
        return Err(bad("the JWT has expired"));
    }
    if required_str(claims, "reason_for_request")? != "directcare" {
        return Err(bad(
            "the JWT claim 'reason_for_request' must be 'directcare'",
        ));
    }
    let scope_text = required_str(claims, "requested_scope")?;
    let requested_scope = Scope::parse(scope_text).ok_or_else(|| {
        bad("the JWT claim 'requested_scope' must be patient/*.read, patient/*.write, organization/*.read or organization/*.write")
    })?;
    let requested_record = requested_record(required(claims, "requested_record")?)?;

    let device = required(claims, "requesting_device")?;
    check_fhir(device, "Device", "requesting_device")?;
    for element in ["id", "identifier", "model", "version"] {
        if device.get(element).is_none() {
            return Err(bad(format!(
                "the JWT's requesting_device has no '{element}'"
            )));
        }
    }

    let organisation = required(claims, "requesting_organization")?;
    check_fhir(organisation, "Organization", "requesting_organization")?;
    let organisation_ods = identifier_of(organisation, |s| s == IdSystem::OdsOrganizationCode)
        .ok_or_else(|| {
            if organisation.get("identifier").is_none() {
                bad("the JWT's requesting_organization has no identifier")
            } else {
                bad("the JWT's requesting_organization has no ODS code identifier")
            }
        })?;
    let organisation_name = organisation
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("the JWT's requesting_organization has no name"))?;

    let practitioner = required(claims, "requesting_practitioner")?;
    check_fhir(practitioner, "Practitioner", "requesting_practitioner")?;
    let practitioner_id = practitioner
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("the JWT's requesting_practitioner has no id"))?;
    if practitioner.get("identifier").is_none() {
        return Err(bad("the JWT's requesting_practitioner has no identifier"));
    }
    let practitioner_sds_id = identifier_of(practitioner, |s| s == IdSystem::SdsUserId)
        .ok_or_else(|| bad("the JWT's requesting_practitioner has no SDS user id identifier"))?;
    let practitioner_name = practitioner_name(practitioner)
        .ok_or_else(|| bad("the JWT's requesting_practitioner has no name"))?;
    let (role_code, role_display) = practitioner_role(practitioner)?;
    if sub != practitioner_id {
        return Err(bad(
            "the JWT claim 'sub' must equal requesting_practitioner.id",
        ));
    }
    Ok(AuditClaims {
        iss: iss.to_owned(),
        sub: sub.to_owned(),
        iat,
        exp,
        requested_record,
        requested_scope,
        organisation_ods: organisation_ods.to_owned(),
        organisation_name: organisation_name.to_owned(),
        practitioner_id: practitioner_id.to_owned(),
        practitioner_sds_id: practitioner_sds_id.to_owned(),
        practitioner_name,
        role_code,
        role_display,
    })
}

/// A resource claim must be a structurally valid FHIR resource of its type (422 otherwise).
fn check_fhir(value: &Value, resource_type: &str, claim: &str) -> Result<(), ProviderError> {
    if !value.is_object()
        || value.get("resourceType").and_then(Value::as_str) != Some(resource_type)
    {
        return Err(invalid(format!(
            "the JWT's {claim} must be a FHIR {resource_type} resource"
        )));
    }
    gpc_fhir::validate_resource(value).map_err(|e| {
        invalid(format!(
            "the JWT's {claim} is not a valid FHIR {resource_type}: {e}"
        ))
    })
}

fn identifier_of(resource: &Value, wanted: impl Fn(IdSystem) -> bool) -> Option<&str> {
    resource
        .get("identifier")?
        .as_array()?
        .iter()
        .find(|id| {
            id.get("system")
                .and_then(Value::as_str)
                .and_then(IdSystem::parse)
                .is_some_and(&wanted)
        })?
        .get("value")?
        .as_str()
        .filter(|v| !v.trim().is_empty())
}

/// "Dr Nichole GILBERT" from a DSTU2 HumanName (family and given are arrays).
fn practitioner_name(practitioner: &Value) -> Option<String> {
    let name = practitioner.get("name")?;
    let list = |key: &str| -> Vec<&str> {
        match name.get(key) {
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
            Some(Value::String(s)) => vec![s.as_str()],
            _ => Vec::new(),
        }
    };
    let mut parts = list("prefix");
    parts.extend(list("given"));
    parts.extend(list("family"));
    if parts.is_empty() {
        return name.get("text").and_then(Value::as_str).map(str::to_owned);
    }
    Some(parts.join(" "))
}

fn practitioner_role(practitioner: &Value) -> Result<(String, String), ProviderError> {
    let roles = practitioner
        .get("practitionerRole")
        .and_then(Value::as_array)
        .filter(|r| !r.is_empty())
        .ok_or_else(|| bad("the JWT's requesting_practitioner has no practitionerRole"))?;
    let mut first = None;
    for role in roles {
        let codings = role
            .pointer("/role/coding")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("the JWT's requesting_practitioner has a practitionerRole without a role coding"))?;
        for coding in codings {
            if coding.get("system").and_then(Value::as_str) != Some(SDS_JOB_ROLE) {
                return Err(bad(format!(
                    "the JWT's requesting_practitioner role coding must be from {SDS_JOB_ROLE}"
                )));
            }
            if first.is_none() {
                let code = coding
                    .get("code")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let display = coding
                    .get("display")
                    .and_then(Value::as_str)
                    .unwrap_or(code);
                first = Some((code.to_owned(), display.to_owned()));
            }
        }
    }
    first.ok_or_else(|| bad("the JWT's requesting_practitioner has no role coding"))
}

fn requested_record(value: &Value) -> Result<RequestedRecord, ProviderError> {
    let kind = value.get("resourceType").and_then(Value::as_str);
    let identifiers = value.get("identifier").and_then(Value::as_array);
    let find = |wanted: IdSystem| {
        identifiers?.iter().find_map(|id| {
            let system = id
                .get("system")
                .and_then(Value::as_str)
                .and_then(IdSystem::parse)?;
            (system == wanted).then(|| id.get("value").and_then(Value::as_str))?
        })
    };
    match kind {
        Some("Patient") => {
            let nhs = find(IdSystem::NhsNumber).ok_or_else(|| {
                bad("the JWT's requested_record Patient has no NHS number identifier")
            })?;
            NhsNumber::parse(nhs)
                .map(RequestedRecord::Patient)
                .map_err(|_| bad("the JWT's requested_record Patient has an invalid NHS number"))
        }
        Some("Organization") => find(IdSystem::OdsOrganizationCode)
            .map(|ods| RequestedRecord::Organization(ods.to_owned()))
            .ok_or_else(|| {
                bad("the JWT's requested_record Organization has no ODS code identifier")
            }),
        _ => Err(bad(
            "the JWT's requested_record must be a Patient or an Organization",
        )),
    }
}

impl AuditClaims {
    /// Scope and record rules per operation (spec §3.3). `searched_nhs` is the
    /// NHS number of a Patient search. Create Task's patient-scope record is
    /// checked against the subject by [`AuditClaims::check_task_subject`].
    pub fn check_for(
        &self,
        interaction: Interaction,
        provider_ods: &str,
        searched_nhs: Option<&NhsNumber>,
    ) -> Result<(), ProviderError> {
        use Interaction::*;
        match interaction {
            ReadMetadata | ReadOrganization | SearchOrganization | ReadPractitioner
            | SearchPractitioner => {
                if self.requested_scope != Scope::OrganizationRead {
                    return Err(bad(
                        "this operation needs requested_scope organization/*.read",
                    ));
                }
                if !matches!(self.requested_record, RequestedRecord::Organization(_)) {
                    return Err(bad(
                        "this operation needs an Organization as requested_record",
                    ));
                }
            }
            ReadPatient | SearchPatient => {
                if self.requested_scope != Scope::PatientRead {
                    return Err(bad("this operation needs requested_scope patient/*.read"));
                }
                let RequestedRecord::Patient(record) = &self.requested_record else {
                    return Err(bad("this operation needs a Patient as requested_record"));
                };
                if let Some(searched) = searched_nhs
                    && searched != record
                {
                    return Err(bad(
                        "the JWT's requested_record NHS number is not the one searched for",
                    ));
                }
            }
            CreateTask => match (&self.requested_scope, &self.requested_record) {
                (Scope::OrganizationWrite, RequestedRecord::Organization(ods)) => {
                    if ods != provider_ods {
                        return Err(bad(
                            "the JWT's requested_record must be the receiving organisation",
                        ));
                    }
                }
                (Scope::PatientWrite, RequestedRecord::Patient(_)) => {}
                (Scope::OrganizationWrite | Scope::PatientWrite, _) => {
                    return Err(bad(
                        "the JWT's requested_record does not match requested_scope",
                    ));
                }
                _ => {
                    return Err(bad(
                        "creating a task needs requested_scope organization/*.write or patient/*.write",
                    ));
                }
            },
        }
        Ok(())
    }

    /// With a patient scope, the record must be the task's subject.
    pub fn check_task_subject(&self, subject: &NhsNumber) -> Result<(), ProviderError> {
        match &self.requested_record {
            RequestedRecord::Patient(record) if record != subject => Err(bad(
                "the JWT's requested_record NHS number is not the task's subject",
            )),
            _ => Ok(()),
        }
    }
}
