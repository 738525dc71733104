//! Where a Create Task is validated: spec §4.2 steps 2 to 7, in that order,
//! each failure with its status and code.

use crate::error::ProviderError;
use crate::jwt::{AuditClaims, RequestedRecord};
use crate::reference::{Organisation, Patient, PatientRecord, RelationshipType};
use crate::region::Region;
use crate::systems::{PROFILE_ORDER, PROFILE_TASK_BASIC, TASK_NARRATIVE, TASK_TYPE};
use crate::task::{BusinessIdentifier, TaskType};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use serde_json::Value;

/// Most characters of text a task's narrative may hold.
pub const MAX_TEXT_CHARS: usize = 10_000;

/// Most resources an Order may contain. A task needs one Basic; the cap
/// keeps a body of thousands of contained resources from being validated.
pub const MAX_CONTAINED: usize = 16;

/// An Order that passed every check, with what the provider needs from it.
#[derive(Debug)]
pub struct ValidOrder<'r> {
    pub resource: serde_json::Map<String, Value>,
    pub patient: Patient,
    pub source: &'r Organisation,
    pub task_type: TaskType,
    pub text: String,
    pub identifiers: Vec<BusinessIdentifier>,
}

/// The records of the tenant's system a Create Task names, read before the
/// checks: patients and their records live in the store, not in the
/// region held in memory, so the caller looks these two up first.
#[derive(Debug, Default, Clone)]
pub struct NamedRecords {
    /// The record of the JWT's `requested_record` patient, by NHS number.
    pub token_patient: Option<(Patient, PatientRecord)>,
    /// The record of the patient the Order's subject names ([`subject_id`]).
    pub subject: Option<(Patient, PatientRecord)>,
}

/// The Patient id an Order body names as its subject (`Patient/{id}`), if
/// it names one at all.
pub fn subject_id(body: &Value) -> Option<&str> {
    body.get("subject")
        .and_then(|s| s.get("reference"))
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("Patient/"))
}

fn invalid(msg: impl Into<String>) -> ProviderError {
    ProviderError::InvalidResource(msg.into())
}

/// The `patient/*.write` half of Create Task's record rule (spec §3.3): the
/// token's patient must be the task's subject. It is a rule of §3, so it
/// belongs to step 1, before anything of the body is checked; `body` is
/// the parsed body when it parses at all. A patient this organisation
/// holds no record of can be the subject of no valid Order, so that token
/// is refused whatever the body. Otherwise the subject is compared when
/// it already names one of the organisation's patients; an Order whose
/// subject cannot be read that early fails a later step anyway (no
/// subject, a malformed or unknown reference), and passing that step
/// means it named such a patient, so no Order is stored for another.
/// An Organization record was checked with the scope
/// ([`AuditClaims::check_for`]).
pub fn check_record_is_subject(
    claims: &AuditClaims,
    body: Option<&Value>,
    named: &NamedRecords,
) -> Result<(), ProviderError> {
    let record = match &claims.requested_record {
        RequestedRecord::Patient(record) => record,
        RequestedRecord::PatientWithInvalidNumber => {
            return Err(ProviderError::BadRequest(
                "the JWT's requested_record Patient has an invalid NHS number".into(),
            ));
        }
        RequestedRecord::Organization(_) => return Ok(()),
    };
    let not_subject = || {
        ProviderError::BadRequest(
            "the JWT's requested_record NHS number is not the task's subject".into(),
        )
    };
    match &named.token_patient {
        Some((patient, _)) if patient.nhs_number == *record => {}
        _ => return Err(not_subject()),
    }
    let subject = body.and_then(subject_id).and_then(|id| {
        named
            .subject
            .as_ref()
            .filter(|(patient, _)| patient.id == id)
    });
    match subject {
        Some((patient, _)) if patient.nhs_number != *record => Err(not_subject()),
        _ => Ok(()),
    }
}

/// Step 2: the body must be an Order without an id.
pub fn check_is_new_order(body: &Value) -> Result<(), ProviderError> {
    check_is_new(body, "Order")
}

/// Step 2 of a create: the body must be a `kind` without an id (the
/// provider assigns it).
pub(crate) fn check_is_new(body: &Value, kind: &str) -> Result<(), ProviderError> {
    let Some(object) = body.as_object() else {
        return Err(ProviderError::BadRequest(format!(
            "the body must be a FHIR {kind} resource"
        )));
    };
    match object.get("resourceType").and_then(Value::as_str) {
        Some(found) if found == kind => {}
        Some(other) => {
            return Err(ProviderError::BadRequest(format!(
                "the body must be a FHIR {kind} resource, not {}",
                short(other)
            )));
        }
        None => {
            return Err(ProviderError::BadRequest(format!(
                "the body has no resourceType; it must be a FHIR {kind}"
            )));
        }
    }
    if object.contains_key("id") {
        return Err(ProviderError::UnprocessableBadRequest(format!(
            "{kind}.id must not be sent: the provider assigns it"
        )));
    }
    Ok(())
}

/// Steps 2 to 7 for the organisation `tenant`, on the day `today` (Europe/London).
pub fn validate_order<'r>(
    body: Value,
    tenant: &Organisation,
    region: &'r Region,
    named: &NamedRecords,
    today: Date,
) -> Result<ValidOrder<'r>, ProviderError> {
    check_is_new_order(&body)?;
    if let Some(Value::Array(contained)) = body.get("contained")
        && contained.len() > MAX_CONTAINED
    {
        return Err(invalid(format!(
            "Order.contained holds {} resources; at most {MAX_CONTAINED} are accepted",
            contained.len()
        )));
    }
    gpc_fhir::validate_resource(&body).map_err(|e| invalid(e.to_string()))?;
    let Value::Object(order) = body else {
        unreachable!("checked to be an object above")
    };

    // Step 4: profiles.
    if !has_profile(&order, PROFILE_ORDER) {
        return Err(invalid(format!(
            "Order.meta.profile must contain {PROFILE_ORDER}"
        )));
    }
    let contained = order
        .get("contained")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for (i, resource) in contained.iter().enumerate() {
        let basic = resource
            .as_object()
            .filter(|r| r.get("resourceType").and_then(Value::as_str) == Some("Basic"));
        let Some(basic) = basic else {
            return Err(invalid(format!(
                "Order.contained[{i}] must be a Basic task description"
            )));
        };
        if !has_profile(basic, PROFILE_TASK_BASIC) {
            return Err(invalid(format!(
                "Order.contained[{i}].meta.profile must contain {PROFILE_TASK_BASIC}"
            )));
        }
    }

    // Step 5: mandatory content.
    let date = order
        .get("date")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("Order.date is required"))?;
    let subject = reference(&order, "subject")?;
    let source = reference(&order, "source")?;
    let target = reference(&order, "target")?;
    let task_type = task_type(&order)?;
    let basic = task_description(&order, contained)?;
    let text = narrative_text(basic)?;

    // Step 6: references.
    let patient_id = subject.strip_prefix("Patient/").ok_or_else(|| {
        ProviderError::ReferenceNotFound(format!(
            "Order.subject must reference a Patient as Patient/{{id}}, not {}",
            short(subject)
        ))
    })?;
    let (patient, record) = named
        .subject
        .as_ref()
        .filter(|(patient, _)| patient.id == patient_id)
        .ok_or_else(|| {
            ProviderError::ReferenceNotFound(format!(
                "Order.subject Patient/{} does not exist on this system",
                short(patient_id)
            ))
        })?;
    let source = organisation_ref(region, "source", source)?;
    let target = organisation_ref(region, "target", target)?;
    if target.id != tenant.id {
        return Err(invalid(format!(
            "Order.target must be this organisation ({}), not {}",
            tenant.ods, target.ods
        )));
    }

    // Step 7: business rules.
    if patient.verification_status != "01" {
        return Err(ProviderError::InvalidPatientDemographics(format!(
            "the patient's NHS number verification status is {}, not 01 (present and verified)",
            patient.verification_status
        )));
    }
    if patient.deceased.is_some() {
        return Err(ProviderError::InvalidPatientDemographics(
            "the patient is recorded as deceased".into(),
        ));
    }
    match london_date(date) {
        Some(d) if d == today => {}
        _ => {
            return Err(invalid(format!(
                "Order.date must be today's date ({today}), not {}",
                short(date)
            )));
        }
    }
    if record.ended.is_some_and(|ended| ended <= today) {
        let kind = match record.relationship {
            RelationshipType::Registered => "registration",
            _ => "relationship",
        };
        return Err(ProviderError::NoRelationship(format!(
            "the patient's {kind} with this organisation has ended"
        )));
    }

    let identifiers = order
        .get("identifier")
        .and_then(Value::as_array)
        .map(|ids| ids.iter().filter_map(business_identifier).collect())
        .unwrap_or_default();
    Ok(ValidOrder {
        resource: order,
        patient: patient.clone(),
        source,
        task_type,
        text,
        identifiers,
    })
}

/// Keeps diagnostics short when a caller sends something huge.
fn short(s: &str) -> String {
    const MAX: usize = 80;
    if s.chars().count() <= MAX {
        s.to_owned()
    } else {
        format!("{}…", s.chars().take(MAX).collect::<String>())
    }
}

pub(crate) fn has_profile(resource: &serde_json::Map<String, Value>, profile: &str) -> bool {
    resource
        .get("meta")
        .and_then(|m| m.get("profile"))
        .and_then(Value::as_array)
        .is_some_and(|p| p.iter().any(|v| v.as_str() == Some(profile)))
}

fn reference<'a>(
    order: &'a serde_json::Map<String, Value>,
    element: &str,
) -> Result<&'a str, ProviderError> {
    let value = order
        .get(element)
        .ok_or_else(|| invalid(format!("Order.{element} is required")))?;
    value
        .get("reference")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(format!("Order.{element}.reference is required")))
}

fn organisation_ref<'r>(
    region: &'r Region,
    element: &str,
    reference: &str,
) -> Result<&'r Organisation, ProviderError> {
    let id = reference.strip_prefix("Organization/").ok_or_else(|| {
        ProviderError::ReferenceNotFound(format!(
            "Order.{element} must reference an Organization as Organization/{{id}}, not {}",
            short(reference)
        ))
    })?;
    region.organisation(id).ok_or_else(|| {
        ProviderError::ReferenceNotFound(format!(
            "Order.{element} Organization/{} does not exist on this system",
            short(id)
        ))
    })
}

fn task_type(order: &serde_json::Map<String, Value>) -> Result<TaskType, ProviderError> {
    if order.contains_key("reasonReference") {
        return Err(invalid(
            "Order.reasonCodeableConcept is required; reasonReference is not allowed",
        ));
    }
    let codings = order
        .get("reasonCodeableConcept")
        .ok_or_else(|| invalid("Order.reasonCodeableConcept (the task type) is required"))?
        .get("coding")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let [coding] = codings else {
        return Err(invalid(
            "Order.reasonCodeableConcept must have exactly one coding from gpconnect-task-type-1",
        ));
    };
    if coding.get("system").and_then(Value::as_str) != Some(TASK_TYPE) {
        return Err(invalid(format!(
            "Order.reasonCodeableConcept.coding.system must be {TASK_TYPE}"
        )));
    }
    coding
        .get("code")
        .and_then(Value::as_str)
        .and_then(TaskType::from_code)
        .ok_or_else(|| {
            invalid("Order.reasonCodeableConcept.coding.code must be 1 (Information only) or 2 (Action needed)")
        })
}

fn task_description<'a>(
    order: &serde_json::Map<String, Value>,
    contained: &'a [Value],
) -> Result<&'a Value, ProviderError> {
    let details = order
        .get("detail")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let [detail] = details else {
        return Err(invalid(
            "Order.detail must hold exactly one reference to the contained Basic task description",
        ));
    };
    let local = detail
        .get("reference")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix('#'))
        .ok_or_else(|| invalid("Order.detail.reference must be a local reference #id"))?;
    let basic = contained
        .iter()
        .find(|c| c.get("id").and_then(Value::as_str) == Some(local))
        .ok_or_else(|| {
            invalid(format!(
                "Order.detail.reference #{} does not match a contained Basic",
                short(local)
            ))
        })?;
    let coding_ok = basic
        .pointer("/code/coding")
        .and_then(Value::as_array)
        .is_some_and(|codings| {
            codings.iter().any(|c| {
                c.get("system").and_then(Value::as_str) == Some(TASK_NARRATIVE)
                    && c.get("code").and_then(Value::as_str) == Some("Task Narrative")
            })
        });
    if !coding_ok {
        return Err(invalid(format!(
            "Basic.code of the contained task description must be {TASK_NARRATIVE} / Task Narrative"
        )));
    }
    Ok(basic)
}

fn narrative_text(basic: &Value) -> Result<String, ProviderError> {
    let div = basic
        .pointer("/text/div")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid("Basic.text.div is required: it holds the task text"))?;
    let text = gpc_fhir::narrative::div_text(div)
        .map_err(|e| invalid(format!("Basic.text.div is not valid: {e}")))?;
    let chars = text.chars().count();
    if text.trim().is_empty() {
        return Err(invalid("Basic.text.div holds no task text"));
    }
    if chars > MAX_TEXT_CHARS {
        return Err(invalid(format!(
            "Basic.text.div holds {chars} characters of task text; at most {MAX_TEXT_CHARS} are allowed"
        )));
    }
    Ok(text)
}

fn business_identifier(id: &Value) -> Option<BusinessIdentifier> {
    Some(BusinessIdentifier {
        system: id.get("system")?.as_str()?.to_owned(),
        value: id.get("value")?.as_str()?.to_owned(),
    })
}

/// The calendar day in Europe/London of a FHIR date or dateTime. Partial dates
/// (a year, a month) never name one day, so they give `None`.
pub fn london_date(value: &str) -> Option<Date> {
    if value.len() == 10 {
        return value.parse::<Date>().ok();
    }
    let instant: jiff::Timestamp = value.parse().ok()?;
    Some(instant.to_zoned(london()).date())
}

pub fn london() -> TimeZone {
    TimeZone::get("Europe/London").unwrap_or(TimeZone::UTC)
}

/// Today's date in Europe/London.
pub fn london_today(now: jiff::Timestamp) -> Date {
    now.to_zoned(london()).date()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn london_dates() {
        assert_eq!(
            london_date("2026-11-25"),
            Some(jiff::civil::date(2026, 11, 25))
        );
        // 23:30 UTC in summer is already the next day in London.
        assert_eq!(
            london_date("2026-07-01T23:30:00Z"),
            Some(jiff::civil::date(2026, 7, 2))
        );
        assert_eq!(
            london_date("2026-11-25T10:00:00+00:00"),
            Some(jiff::civil::date(2026, 11, 25))
        );
        assert_eq!(london_date("2026-11"), None);
        assert_eq!(london_date("2026"), None);
        assert_eq!(london_date("yesterday"), None);
    }
}
