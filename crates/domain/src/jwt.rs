//! The unsecured JWT every request carries (spec §3.3): decoded and checked
//! into [`AuditClaims`], whose practitioner and organisation become the
//! provenance of a task.

use crate::error::ProviderError;
use crate::ids::NhsNumber;
use crate::interaction::Interaction;
use crate::systems::{IdSystem, SDS_JOB_ROLE};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

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
    /// A Patient whose NHS number identifier fails the Modulus 11 check (or
    /// is not ten digits). Refused by [`AuditClaims::check_for`], not by
    /// [`decode`]: a Patient search for that same number must answer the
    /// parameter's INVALID_NHS_NUMBER, as the official suite expects, and
    /// the parameter is checked after the token is decoded. The number
    /// itself is not kept.
    PatientWithInvalidNumber,
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
/// not depend on the operation. `now` is epoch seconds. Resource claims
/// already checked are taken from `cache` (see [`ClaimCache`]).
pub fn decode(
    cache: &ClaimCache,
    authorization: Option<&str>,
    now: i64,
) -> Result<AuditClaims, ProviderError> {
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
    let header = base64_part(parts[0], "header")?;
    match serde_json::from_slice::<Value>(&header) {
        Ok(Value::Object(map)) => {
            if map.get("alg").and_then(Value::as_str).is_none() {
                return Err(bad("the JWT header has no 'alg'"));
            }
        }
        _ => return Err(bad("the JWT header is not a JSON object")),
    }
    let payload = base64_part(parts[1], "payload")?;
    let raw = serde_json::from_slice::<RawPayload<'_>>(&payload)
        .map_err(|_| bad("the JWT payload is not a JSON object"))?;
    claims_from(cache, &raw, now)
}

fn base64_part(part: &str, name: &str) -> Result<Vec<u8>, ProviderError> {
    URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|_| bad(format!("the JWT {name} is not base64url")))
}

/// Every claim a token must carry, in the order a missing one is reported.
const CLAIMS: [&str; 11] = [
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
];

/// The payload as the JSON text of each claim of [`CLAIMS`] (`None` when
/// absent or null), other claims skipped. Each claim is parsed only when it
/// is checked, so that a resource claim already seen (see [`ClaimCache`]) is not
/// parsed at all. A claim given twice keeps its last value, as a JSON object
/// read into a map would.
struct RawPayload<'a>([Option<&'a RawValue>; CLAIMS.len()]);

impl<'de> Deserialize<'de> for RawPayload<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(PayloadVisitor)
    }
}

struct PayloadVisitor;

impl<'de> Visitor<'de> for PayloadVisitor {
    type Value = RawPayload<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut claims = [None; CLAIMS.len()];
        while let Some(ClaimName(index)) = map.next_key()? {
            match index {
                Some(i) => claims[i] = map.next_value::<Option<&'de RawValue>>()?,
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(RawPayload(claims))
    }
}

/// A payload key: its index in [`CLAIMS`], or `None` for any other claim.
struct ClaimName(Option<usize>);

impl<'de> Deserialize<'de> for ClaimName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NameVisitor;
        impl Visitor<'_> for NameVisitor {
            type Value = ClaimName;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a claim name")
            }
            fn visit_str<E: de::Error>(self, name: &str) -> Result<ClaimName, E> {
                Ok(ClaimName(CLAIMS.iter().position(|c| *c == name)))
            }
        }
        deserializer.deserialize_str(NameVisitor)
    }
}

impl RawPayload<'_> {
    fn text(&self, name: &str) -> Result<&RawValue, ProviderError> {
        // Callers pass a literal from CLAIMS; another name is a bug to panic on.
        #[allow(clippy::expect_used)]
        let index = CLAIMS
            .iter()
            .position(|c| *c == name)
            .expect("a name from CLAIMS");
        self.0[index].ok_or_else(|| bad(format!("the JWT claim '{name}' is missing")))
    }

    fn value(&self, name: &str) -> Result<Value, ProviderError> {
        let text = self.text(name)?;
        // The text came out of a JSON parse, so it parses again.
        serde_json::from_str(text.get())
            .map_err(|_| bad(format!("the JWT claim '{name}' is not JSON")))
    }

    fn string(&self, name: &str) -> Result<String, ProviderError> {
        match self.value(name)? {
            Value::String(s) if !s.trim().is_empty() => Ok(s),
            Value::String(_) => Err(bad(format!("the JWT claim '{name}' is empty"))),
            _ => Err(bad(format!("the JWT claim '{name}' must be a string"))),
        }
    }

    fn int(&self, name: &str) -> Result<i64, ProviderError> {
        self.value(name)?.as_i64().ok_or_else(|| {
            bad(format!(
                "the JWT claim '{name}' must be an integer of epoch seconds"
            ))
        })
    }
}

fn claims_from(
    cache: &ClaimCache,
    raw: &RawPayload<'_>,
    now: i64,
) -> Result<AuditClaims, ProviderError> {
    // Presence of every claim first, so a missing one is reported as missing
    // whatever else is wrong.
    for name in CLAIMS {
        raw.text(name)?;
    }
    let iss = raw.string("iss")?;
    let sub = raw.string("sub")?;
    if raw.string("aud")? != AUDIENCE {
        return Err(bad(format!("the JWT claim 'aud' must be {AUDIENCE}")));
    }
    let iat = raw.int("iat")?;
    let exp = raw.int("exp")?;
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
    if raw.string("reason_for_request")? != "directcare" {
        return Err(bad(
            "the JWT claim 'reason_for_request' must be 'directcare'",
        ));
    }
    let requested_scope = Scope::parse(&raw.string("requested_scope")?).ok_or_else(|| {
        bad("the JWT claim 'requested_scope' must be patient/*.read, patient/*.write, organization/*.read or organization/*.write")
    })?;
    let requested_record = requested_record(&raw.value("requested_record")?)?;

    cache.device(raw.text("requesting_device")?)?;
    let organisation = cache.organisation(raw.text("requesting_organization")?)?;
    let practitioner = cache.practitioner(raw.text("requesting_practitioner")?)?;
    if sub != practitioner.id {
        return Err(bad(
            "the JWT claim 'sub' must equal requesting_practitioner.id",
        ));
    }
    Ok(AuditClaims {
        iss,
        sub,
        iat,
        exp,
        requested_record,
        requested_scope,
        organisation_ods: organisation.ods.clone(),
        organisation_name: organisation.name.clone(),
        practitioner_id: practitioner.id.clone(),
        practitioner_sds_id: practitioner.sds_id.clone(),
        practitioner_name: practitioner.name.clone(),
        role_code: practitioner.role_code.clone(),
        role_display: practitioner.role_display.clone(),
    })
}

/// What a checked `requesting_organization` gives.
struct CheckedOrganisation {
    ods: String,
    name: String,
}

/// What a checked `requesting_practitioner` gives.
struct CheckedPractitioner {
    id: String,
    sds_id: String,
    name: String,
    role_code: String,
    role_display: String,
}

fn parse_claim(text: &RawValue) -> Result<Value, ProviderError> {
    serde_json::from_str(text.get()).map_err(|_| bad("a JWT claim is not JSON"))
}

fn check_device(text: &RawValue) -> Result<(), ProviderError> {
    let device = parse_claim(text)?;
    check_fhir(&device, "Device", "requesting_device")?;
    for element in ["id", "identifier", "model", "version"] {
        if device.get(element).is_none() {
            return Err(bad(format!(
                "the JWT's requesting_device has no '{element}'"
            )));
        }
    }
    Ok(())
}

fn check_organisation(text: &RawValue) -> Result<CheckedOrganisation, ProviderError> {
    let organisation = parse_claim(text)?;
    check_fhir(&organisation, "Organization", "requesting_organization")?;
    let ods =
        identifier_of(&organisation, |s| s == IdSystem::OdsOrganizationCode).ok_or_else(|| {
            if organisation.get("identifier").is_none() {
                bad("the JWT's requesting_organization has no identifier")
            } else {
                bad("the JWT's requesting_organization has no ODS code identifier")
            }
        })?;
    let name = organisation
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("the JWT's requesting_organization has no name"))?;
    Ok(CheckedOrganisation {
        ods: ods.to_owned(),
        name: name.to_owned(),
    })
}

fn check_practitioner(text: &RawValue) -> Result<CheckedPractitioner, ProviderError> {
    let practitioner = parse_claim(text)?;
    check_fhir(&practitioner, "Practitioner", "requesting_practitioner")?;
    let id = practitioner
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("the JWT's requesting_practitioner has no id"))?;
    if practitioner.get("identifier").is_none() {
        return Err(bad("the JWT's requesting_practitioner has no identifier"));
    }
    let sds_id = identifier_of(&practitioner, |s| s == IdSystem::SdsUserId)
        .ok_or_else(|| bad("the JWT's requesting_practitioner has no SDS user id identifier"))?;
    let name = practitioner_name(&practitioner)
        .ok_or_else(|| bad("the JWT's requesting_practitioner has no name"))?;
    let (role_code, role_display) = practitioner_role(&practitioner)?;
    Ok(CheckedPractitioner {
        id: id.to_owned(),
        sds_id: sds_id.to_owned(),
        name,
        role_code,
        role_display,
    })
}

/// Resource claims that passed their checks, by their exact JSON text. A
/// consumer sends the same device, organisation and practitioner in every
/// token of one user (a new token per request changes only `iat` and `exp`),
/// and parsing and validating them was most of the cost of a token. A text
/// that failed is not kept, so it fails the same way every time; a text
/// seen before gives what its first check gave, as the checks depend on
/// nothing but the text.
///
/// One cache belongs to each application state (the server's `AppState`),
/// never to the process, so that servers started side by side (as tests do)
/// keep what each has seen to itself.
pub struct ClaimCache {
    devices: Remembered<()>,
    organisations: Remembered<CheckedOrganisation>,
    practitioners: Remembered<CheckedPractitioner>,
}

/// How many texts of each kind are kept; all are dropped when one more
/// arrives, which bounds the memory without bookkeeping per entry.
const SEEN_MAX: usize = 1024;

/// Longer texts are checked every time, not kept: real resource claims are a
/// few hundred bytes, and this bounds what a stream of large ones can hold
/// (3 × `SEEN_MAX` × this, 6 MiB, per cache).
const SEEN_TEXT_MAX: usize = 2048;

impl Default for ClaimCache {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for ClaimCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClaimCache").finish_non_exhaustive()
    }
}

impl ClaimCache {
    /// An empty cache; `const`, so that a fuzz target or test may keep one
    /// in a `static`.
    pub const fn new() -> Self {
        Self {
            devices: Mutex::new(None),
            organisations: Mutex::new(None),
            practitioners: Mutex::new(None),
        }
    }

    fn device(&self, text: &RawValue) -> Result<(), ProviderError> {
        remembered(&self.devices, text, check_device).map(drop)
    }

    fn organisation(&self, text: &RawValue) -> Result<Arc<CheckedOrganisation>, ProviderError> {
        remembered(&self.organisations, text, check_organisation)
    }

    fn practitioner(&self, text: &RawValue) -> Result<Arc<CheckedPractitioner>, ProviderError> {
        remembered(&self.practitioners, text, check_practitioner)
    }

    /// How many resource texts of each kind this cache keeps: (devices,
    /// organisations, practitioners).
    pub fn kept(&self) -> (usize, usize, usize) {
        fn len<T>(cache: &Remembered<T>) -> usize {
            lock(cache).as_ref().map_or(0, HashMap::len)
        }
        (
            len(&self.devices),
            len(&self.organisations),
            len(&self.practitioners),
        )
    }
}

type Remembered<T> = Mutex<Option<HashMap<Box<str>, Arc<T>>>>;

fn remembered<T>(
    cache: &Remembered<T>,
    text: &RawValue,
    check: fn(&RawValue) -> Result<T, ProviderError>,
) -> Result<Arc<T>, ProviderError> {
    let key = text.get();
    if let Some(found) = lock(cache).as_ref().and_then(|m| m.get(key)) {
        return Ok(Arc::clone(found));
    }
    // Checked outside the lock: another request may check the same text at
    // the same time, and both get the same answer.
    let checked = Arc::new(check(text)?);
    if key.len() > SEEN_TEXT_MAX {
        return Ok(checked);
    }
    let mut seen = lock(cache);
    let map = seen.get_or_insert_with(HashMap::new);
    if map.len() >= SEEN_MAX {
        map.clear();
    }
    map.insert(key.into(), Arc::clone(&checked));
    Ok(checked)
}

/// A poisoned lock only means another request panicked mid-insert; the map
/// holds only complete entries, so it is used as it is.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
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

fn invalid_record() -> ProviderError {
    bad("the JWT's requested_record Patient has an invalid NHS number")
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
            Ok(NhsNumber::parse(nhs).map_or(
                RequestedRecord::PatientWithInvalidNumber,
                RequestedRecord::Patient,
            ))
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
    /// checked against the Order's subject by
    /// [`crate::order_rules::check_record_is_subject`].
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
                let record = match &self.requested_record {
                    RequestedRecord::Patient(record) => record,
                    RequestedRecord::PatientWithInvalidNumber => return Err(invalid_record()),
                    RequestedRecord::Organization(_) => {
                        return Err(bad("this operation needs a Patient as requested_record"));
                    }
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
                (Scope::PatientWrite, RequestedRecord::PatientWithInvalidNumber) => {
                    return Err(invalid_record());
                }
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
            // task-lifecycle.md §2: organization/*.write on the receiving
            // endpoint's Organization.
            CreateOrderResponse => match (&self.requested_scope, &self.requested_record) {
                (Scope::OrganizationWrite, RequestedRecord::Organization(ods)) => {
                    if ods != provider_ods {
                        return Err(bad(
                            "the JWT's requested_record must be the receiving organisation",
                        ));
                    }
                }
                _ => {
                    return Err(bad(
                        "a task update needs requested_scope organization/*.write and the receiving Organization as requested_record",
                    ));
                }
            },
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_800_000_000;

    fn payload() -> Value {
        json!({
            "iss": "http://consumer.example/",
            "sub": "1",
            "aud": AUDIENCE,
            "iat": NOW,
            "exp": NOW + LIFETIME_SECONDS,
            "reason_for_request": "directcare",
            "requested_record": {"resourceType": "Organization", "identifier": [
                {"system": "http://fhir.nhs.net/Id/ods-organization-code", "value": "GPC001"}]},
            "requested_scope": "organization/*.write",
            "requesting_device": {"resourceType": "Device", "id": "1",
                "identifier": [{"system": "GPConnectTestSystem", "value": "Client"}],
                "model": "m", "version": "1"},
            "requesting_organization": {"resourceType": "Organization",
                "identifier": [{"system": "http://fhir.nhs.net/Id/ods-organization-code", "value": "Y00001"}],
                "name": "Hub"},
            "requesting_practitioner": {"resourceType": "Practitioner", "id": "1",
                "identifier": [{"system": "http://fhir.nhs.net/sds-user-id", "value": "G11111116"}],
                "name": {"family": ["PARSONS"], "given": ["Melissa"], "prefix": ["Mrs"]},
                "practitionerRole": [{"role": {"coding": [{"system": SDS_JOB_ROLE,
                    "code": "R0260", "display": "General Medical Practitioner"}]}}]}
        })
    }

    fn bearer_of_text(payload: &str) -> String {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        format!("Bearer {header}.{}.", URL_SAFE_NO_PAD.encode(payload))
    }

    fn bearer(payload: &Value) -> String {
        bearer_of_text(&payload.to_string())
    }

    #[test]
    fn a_token_decodes_the_same_when_its_resources_were_seen_before() {
        let cache = ClaimCache::new();
        let token = bearer(&payload());
        let first = decode(&cache, Some(&token), NOW).unwrap();
        let again = decode(&cache, Some(&token), NOW).unwrap();
        assert_eq!(first, again);
        assert_eq!(first.organisation_ods, "Y00001");
        assert_eq!(first.practitioner_name, "Mrs Melissa PARSONS");
        assert_eq!(first.role_code, "R0260");
        // A new token of the same user: only iat and exp differ.
        let mut later = payload();
        later["iat"] = json!(NOW + 60);
        later["exp"] = json!(NOW + 60 + LIFETIME_SECONDS);
        let later = decode(&cache, Some(&bearer(&later)), NOW + 60).unwrap();
        assert_eq!(
            (later.iat, later.practitioner_sds_id.as_str()),
            (NOW + 60, "G11111116")
        );
    }

    #[test]
    fn a_changed_resource_text_is_checked_again() {
        let cache = ClaimCache::new();
        decode(&cache, Some(&bearer(&payload())), NOW).unwrap();
        let mut renamed = payload();
        renamed["requesting_organization"]["name"] = json!("Another name");
        let claims = decode(&cache, Some(&bearer(&renamed)), NOW).unwrap();
        assert_eq!(claims.organisation_name, "Another name");
        let mut broken = payload();
        broken["requesting_practitioner"]["invalidField"] = json!(true);
        for _ in 0..2 {
            let err = decode(&cache, Some(&bearer(&broken)), NOW).unwrap_err();
            assert!(matches!(err, ProviderError::InvalidResource(_)), "{err:?}");
        }
    }

    #[test]
    fn time_claims_are_checked_even_when_the_resources_were_seen() {
        let cache = ClaimCache::new();
        let token = bearer(&payload());
        decode(&cache, Some(&token), NOW).unwrap();
        let err = decode(&cache, Some(&token), NOW + LIFETIME_SECONDS + 60).unwrap_err();
        assert_eq!(err, bad("the JWT has expired"));
    }

    #[test]
    fn the_sub_check_applies_to_a_practitioner_seen_before() {
        let cache = ClaimCache::new();
        decode(&cache, Some(&bearer(&payload())), NOW).unwrap();
        let mut other = payload();
        other["sub"] = json!("2");
        let err = decode(&cache, Some(&bearer(&other)), NOW).unwrap_err();
        assert_eq!(
            err,
            bad("the JWT claim 'sub' must equal requesting_practitioner.id")
        );
    }

    #[test]
    fn a_claim_given_twice_keeps_its_last_value_and_null_is_missing() {
        let cache = ClaimCache::new();
        let text = payload().to_string();
        let twice = text.replacen(r#""sub":"1""#, r#""sub":"9","sub":"1""#, 1);
        assert_ne!(twice, text);
        assert_eq!(
            decode(&cache, Some(&bearer_of_text(&twice)), NOW)
                .unwrap()
                .sub,
            "1"
        );
        let mut null = payload();
        null["iss"] = Value::Null;
        assert_eq!(
            decode(&cache, Some(&bearer(&null)), NOW).unwrap_err(),
            bad("the JWT claim 'iss' is missing")
        );
        assert_eq!(
            decode(&cache, Some(&bearer_of_text("[1, 2]")), NOW).unwrap_err(),
            bad("the JWT payload is not a JSON object")
        );
    }

    #[test]
    fn more_distinct_resources_than_are_kept_still_decode() {
        let cache = ClaimCache::new();
        for i in 0..SEEN_MAX + 10 {
            let mut p = payload();
            p["requesting_organization"]["name"] = json!(format!("Organisation {i}"));
            let claims = decode(&cache, Some(&bearer(&p)), NOW).unwrap();
            assert_eq!(claims.organisation_name, format!("Organisation {i}"));
        }
        let held = cache.kept().1;
        assert!(held <= SEEN_MAX, "{held} kept");
    }

    #[test]
    fn a_long_resource_text_is_checked_but_not_kept() {
        let cache = ClaimCache::new();
        let mut long = payload();
        long["requesting_organization"]["name"] = json!("L".repeat(SEEN_TEXT_MAX));
        let claims = decode(&cache, Some(&bearer(&long)), NOW).unwrap();
        assert_eq!(claims.organisation_name.len(), SEEN_TEXT_MAX);
        let text = long["requesting_organization"].to_string();
        let kept = lock(&cache.organisations)
            .as_ref()
            .is_some_and(|m| m.contains_key(text.as_str()));
        assert!(!kept);
    }

    #[test]
    fn clock_skew_is_five_seconds_each_way() {
        let cache = ClaimCache::new();
        let at = |iat: i64| {
            let mut p = payload();
            p["iat"] = json!(iat);
            p["exp"] = json!(iat + LIFETIME_SECONDS);
            decode(&cache, Some(&bearer(&p)), NOW)
        };
        assert!(at(NOW + CLOCK_SKEW_SECONDS).is_ok(), "iat 5 s ahead");
        assert_eq!(
            at(NOW + CLOCK_SKEW_SECONDS + 1).unwrap_err(),
            bad("the JWT claim 'iat' is in the future")
        );
        // exp 5 s ago, then 6 s ago.
        assert!(at(NOW - LIFETIME_SECONDS - CLOCK_SKEW_SECONDS).is_ok());
        assert_eq!(
            at(NOW - LIFETIME_SECONDS - CLOCK_SKEW_SECONDS - 1).unwrap_err(),
            bad("the JWT has expired")
        );
    }

    #[test]
    fn an_invalid_nhs_number_in_the_record_is_refused_by_the_operation_not_the_decoder() {
        let cache = ClaimCache::new();
        let mut p = payload();
        p["requested_scope"] = json!("patient/*.read");
        p["requested_record"] = json!({"resourceType": "Patient", "identifier": [
            {"system": "http://fhir.nhs.net/Id/nhs-number", "value": "9000000184"}]});
        let claims = decode(&cache, Some(&bearer(&p)), NOW).unwrap();
        assert_eq!(
            claims.requested_record,
            RequestedRecord::PatientWithInvalidNumber
        );
        let refused = Err(invalid_record());
        let searched = NhsNumber::parse("9476719931").unwrap();
        assert_eq!(
            claims.check_for(Interaction::SearchPatient, "GPC001", Some(&searched)),
            refused
        );
        assert_eq!(
            claims.check_for(Interaction::ReadPatient, "GPC001", None),
            refused
        );
        let writer = AuditClaims {
            requested_scope: Scope::PatientWrite,
            ..claims
        };
        assert_eq!(
            writer.check_for(Interaction::CreateTask, "GPC001", None),
            refused
        );
        // Without an NHS number identifier at all, the token itself is refused.
        p["requested_record"] = json!({"resourceType": "Patient", "identifier": []});
        assert_eq!(
            decode(&cache, Some(&bearer(&p)), NOW).unwrap_err(),
            bad("the JWT's requested_record Patient has no NHS number identifier")
        );
    }

    #[test]
    fn two_caches_do_not_share_what_they_have_seen() {
        let token = bearer(&payload());
        let one = ClaimCache::new();
        let other = ClaimCache::default();
        let claims = decode(&one, Some(&token), NOW).unwrap();
        assert_eq!(one.kept(), (1, 1, 1));
        assert_eq!(other.kept(), (0, 0, 0));
        // The other cache checks the same texts itself, and gives the same claims.
        assert_eq!(decode(&other, Some(&token), NOW).unwrap(), claims);
        assert_eq!(other.kept(), (1, 1, 1));
        let mut renamed = payload();
        renamed["requesting_organization"]["name"] = json!("Another name");
        decode(&other, Some(&bearer(&renamed)), NOW).unwrap();
        assert_eq!((one.kept().1, other.kept().1), (1, 2));
    }
}
