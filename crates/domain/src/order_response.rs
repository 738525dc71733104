//! The task update on the wire: a DSTU2 `OrderResponse` (task-lifecycle.md
//! §2), built from a change and read back with the checks of
//! `POST /OrderResponse` step 2 (structure, as for an Order) and step 3
//! (content, in the spec's order, each a 422 `INVALID_RESOURCE` naming its
//! element), and the stored answer to it. Who may update which task
//! (step 4) and the state rules (step 5) need the store and are the
//! handler's.

use crate::ProviderError;
use crate::ids::OdsCode;
use crate::lifecycle::{Actor, MAX_TEXT_CHARS, Owner, Party, TaskState, TimelineEntry, check_text};
use crate::order_rules::{MAX_CONTAINED, check_is_new, has_profile};
use crate::systems::{
    PROFILE_ORDER_RESPONSE, SDS_JOB_ROLE, SDS_USER_ID, SDS_USER_ID_SHORT, TASK_OWNER_EXTENSION,
    TASK_VERSION_EXTENSION, URN,
};
use jiff::Timestamp;
use serde_json::{Map, Value, json};

/// A practitioner as the update's contained resources carry them.
#[derive(Clone, PartialEq, Eq)]
pub struct Person {
    pub sds_user_id: String,
    pub prefix: String,
    pub given: String,
    pub family: String,
    pub role_code: String,
    pub role_display: String,
}

impl Person {
    /// "Dr Nichole GILBERT".
    pub fn display_name(&self) -> String {
        [&self.prefix, &self.given, &self.family]
            .into_iter()
            .filter(|p| !p.is_empty())
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(" ")
    }

    pub fn as_owner(&self) -> Owner {
        Owner {
            sds_user_id: self.sds_user_id.clone(),
            name: self.display_name(),
        }
    }
}

/// By hand: names are personal data and `{:?}` reaches logs.
impl std::fmt::Debug for Person {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Person")
            .field("sds_user_id", &self.sds_user_id)
            .finish_non_exhaustive()
    }
}

/// One update of a task, as either side sends it.
#[derive(Clone, PartialEq, Eq)]
pub struct TaskUpdate {
    /// The update's own business identifier (`urn:uuid:…`): a repeat is the same update.
    pub identifier: String,
    /// On an update from the receiver, the task's version after the change;
    /// on a cancellation, the version the sender last saw.
    pub version: u32,
    /// The absolute URL of the Order on the receiving system.
    pub request: String,
    pub date: Timestamp,
    pub who: Person,
    /// Set when the task was assigned to someone other than `who`.
    pub owner: Option<Person>,
    /// Accepted, completed, rejected or cancelled.
    pub state: TaskState,
    /// The reason or note.
    pub description: Option<String>,
}

impl TaskUpdate {
    /// The timeline entry this update makes, by `who` of `organisation` (the
    /// organisation of `Ssp-From`) on `party`'s side. The owner after an
    /// acceptance is the assigned Practitioner, else `who` (a take); the
    /// other changes name an owner only when they carry one, and otherwise
    /// keep `held_owner`, the owner known before, as a change of the
    /// receiver keeps its owner.
    pub fn entry(
        &self,
        organisation: &OdsCode,
        party: Party,
        held_owner: Option<Owner>,
    ) -> TimelineEntry {
        let owner = match (&self.owner, self.state) {
            (Some(owner), _) => Some(owner.as_owner()),
            (None, TaskState::Accepted) => Some(self.who.as_owner()),
            (None, _) => held_owner,
        };
        TimelineEntry {
            version: self.version,
            at: self.date,
            by: self.who.as_actor(organisation),
            party,
            state: self.state,
            owner,
            note: self.description.clone(),
        }
    }
}

impl Person {
    /// The person as the maker of a change at `organisation`.
    pub fn as_actor(&self, organisation: &OdsCode) -> Actor {
        Actor {
            sds_user_id: self.sds_user_id.clone(),
            name: self.display_name(),
            role_code: self.role_code.clone(),
            role_display: self.role_display.clone(),
            organisation: organisation.clone(),
        }
    }
}

/// By hand: the description is free text about a patient.
impl std::fmt::Debug for TaskUpdate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskUpdate")
            .field("identifier", &self.identifier)
            .field("version", &self.version)
            .field("request", &self.request)
            .field("date", &self.date)
            .field("who", &self.who)
            .field("owner", &self.owner)
            .field("state", &self.state)
            .field("description", &self.description.as_ref().map(|_| "…"))
            .finish()
    }
}

fn practitioner(id: &str, p: &Person) -> Value {
    // FHIR allows no empty strings, and a signed-in user outside the
    // reference data may have no title (CIS2 gives none) or no known role.
    let mut name = Map::new();
    for (key, value) in [
        ("family", &p.family),
        ("given", &p.given),
        ("prefix", &p.prefix),
    ] {
        if !value.is_empty() {
            name.insert(key.into(), json!([value]));
        }
    }
    let mut practitioner = json!({
        "resourceType": "Practitioner",
        "id": id,
        "identifier": [{"system": SDS_USER_ID_SHORT, "value": p.sds_user_id}],
        "name": name,
    });
    if !p.role_code.is_empty() {
        let mut coding = json!({"system": SDS_JOB_ROLE, "code": p.role_code});
        if !p.role_display.is_empty() {
            coding["display"] = json!(p.role_display);
        }
        practitioner["practitionerRole"] = json!([{"role": {"coding": [coding]}}]);
    }
    practitioner
}

/// The OrderResponse of §2 for `update`.
pub fn order_response(update: &TaskUpdate) -> Value {
    let mut contained = vec![practitioner("who", &update.who)];
    let mut extension =
        vec![json!({"url": TASK_VERSION_EXTENSION, "valueInteger": update.version})];
    if let Some(owner) = &update.owner {
        contained.push(practitioner("owner", owner));
        extension
            .push(json!({"url": TASK_OWNER_EXTENSION, "valueReference": {"reference": "#owner"}}));
    }
    let mut body = json!({
        "resourceType": "OrderResponse",
        "meta": {"profile": [PROFILE_ORDER_RESPONSE]},
        "identifier": [{"system": URN, "value": update.identifier}],
        "extension": extension,
        "contained": contained,
        "request": {"reference": update.request},
        "date": update.date.strftime("%Y-%m-%dT%H:%M:%S+00:00").to_string(),
        "who": {"reference": "#who"},
        "orderStatus": update.state.order_status().unwrap_or("accepted"),
    });
    if let Some(description) = &update.description {
        body["description"] = json!(description);
    }
    body
}

fn invalid(msg: impl Into<String>) -> ProviderError {
    ProviderError::InvalidResource(msg.into())
}

/// Step 2 on a parsed body, exactly as for an Order: an OrderResponse
/// (else 400 `BAD_REQUEST`) without an id (else 422 `BAD_REQUEST`), of
/// valid DSTU2 structure and carrying the task-update profile (else 422
/// `INVALID_RESOURCE`).
pub fn check_structure(body: &Value) -> Result<(), ProviderError> {
    check_is_new(body, "OrderResponse")?;
    if let Some(Value::Array(contained)) = body.get("contained")
        && contained.len() > MAX_CONTAINED
    {
        return Err(invalid(format!(
            "OrderResponse.contained holds {} resources; at most {MAX_CONTAINED} are accepted",
            contained.len()
        )));
    }
    gpc_fhir::validate_resource(body).map_err(|e| invalid(e.to_string()))?;
    let profiled = body
        .as_object()
        .is_some_and(|o| has_profile(o, PROFILE_ORDER_RESPONSE));
    if !profiled {
        return Err(invalid(format!(
            "OrderResponse.meta.profile must contain {PROFILE_ORDER_RESPONSE}"
        )));
    }
    Ok(())
}

/// The id of the stored OrderResponse: its identifier's uuid, so that a
/// repeat of the update names the same resource.
pub fn answer_id(identifier: &str) -> &str {
    identifier.strip_prefix("urn:uuid:").unwrap_or(identifier)
}

/// The version an OrderResponse carries in its version extension.
pub fn carried_version(body: &Value) -> Option<u32> {
    extension(body, TASK_VERSION_EXTENSION)
        .and_then(|e| e["valueInteger"].as_u64())
        .and_then(|v| u32::try_from(v).ok())
}

/// The stored OrderResponse that answers `received` (the body as it
/// arrived) once the change it made has `version`: its id is the
/// identifier's uuid, and `meta.versionId` and the version extension are
/// that version. At the sender this is the version the receiver sent; at
/// the receiver, the version the cancellation was given there. Everything
/// else is as it arrived. The same inputs give the same answer, which is
/// what lets a repeat of an update get the answer the first one got.
pub fn answer(received: &Value, version: u32) -> Value {
    let mut body = received.clone();
    let Some(map) = body.as_object_mut() else {
        return body;
    };
    let id = map
        .get("identifier")
        .and_then(Value::as_array)
        .and_then(|ids| {
            ids.iter()
                .find(|i| i["system"] == URN)
                .and_then(|i| i["value"].as_str())
        })
        .map(|v| answer_id(v).to_owned());
    if let Some(id) = id {
        map.insert("id".into(), json!(id));
    }
    let meta = map.entry("meta").or_insert_with(|| json!({}));
    if let Some(meta) = meta.as_object_mut() {
        meta.insert("versionId".into(), json!(version.to_string()));
    }
    let extensions = map.entry("extension").or_insert_with(|| json!([]));
    if let Some(extensions) = extensions.as_array_mut() {
        let versioned = json!({"url": TASK_VERSION_EXTENSION, "valueInteger": version});
        match extensions
            .iter_mut()
            .find(|e| e["url"] == TASK_VERSION_EXTENSION)
        {
            Some(existing) => *existing = versioned,
            None => extensions.push(versioned),
        }
    }
    body
}

/// Reads a structurally valid OrderResponse (step 2 passed) with the
/// content checks of step 3, in order: identifier, version extension,
/// request, date, who, orderStatus, description.
pub fn read_order_response(body: &Value) -> Result<TaskUpdate, ProviderError> {
    let identifier = body["identifier"]
        .as_array()
        .and_then(|ids| {
            ids.iter()
                .find(|i| i["system"] == URN)
                .and_then(|i| i["value"].as_str())
        })
        .filter(|v| v.starts_with("urn:uuid:") && v.len() > "urn:uuid:".len())
        .ok_or_else(|| invalid("OrderResponse.identifier: a urn:uuid: identifier is required"))?
        .to_owned();
    // A receiver's update is a change after delivery (version 1), so it
    // numbers 2 or more; a cancellation carries the version the sender last
    // saw, which is 1 when nobody has touched the task yet. Decided here:
    // §2's "integer ≥ 2" read literally would make an untouched task
    // impossible to cancel.
    let least = if body["orderStatus"] == "cancelled" {
        1
    } else {
        2
    };
    let version = extension(body, TASK_VERSION_EXTENSION)
        .and_then(|e| e["valueInteger"].as_u64())
        .and_then(|v| u32::try_from(v).ok())
        .filter(|v| *v >= least)
        .ok_or_else(|| {
            invalid(format!(
                "OrderResponse.extension (task version): an integer of {least} or more is required"
            ))
        })?;
    let request = body["request"]["reference"]
        .as_str()
        .filter(|r| (r.starts_with("https://") || r.starts_with("http://")) && r.contains("/Order/"))
        .ok_or_else(|| {
            invalid("OrderResponse.request: the absolute URL of the Order on the receiving system is required")
        })?
        .to_owned();
    let date = body["date"]
        .as_str()
        .and_then(|d| d.parse::<Timestamp>().ok())
        .ok_or_else(|| {
            invalid("OrderResponse.date: a date and time with its offset is required")
        })?;
    let who = body["who"]["reference"]
        .as_str()
        .and_then(|r| r.strip_prefix('#'))
        .and_then(|id| contained_person(body, id))
        .ok_or_else(|| {
            invalid("OrderResponse.who: a contained Practitioner with an SDS user id is required")
        })?;
    let state = body["orderStatus"]
        .as_str()
        .and_then(TaskState::from_order_status)
        .ok_or_else(|| {
            invalid("OrderResponse.orderStatus: one of accepted, completed, rejected, cancelled is required")
        })?;
    let description = match body.get("description") {
        None => None,
        Some(Value::String(d)) => Some(d.clone()),
        Some(_) => return Err(invalid("OrderResponse.description: text is required")),
    };
    match &description {
        None if matches!(state, TaskState::Rejected | TaskState::Cancelled) => {
            return Err(invalid(format!(
                "OrderResponse.description: the reason is required for {}",
                state.code()
            )));
        }
        Some(d) => check_text(d).map_err(|e| {
            invalid(format!(
                "OrderResponse.description: {e} (1 to {MAX_TEXT_CHARS} characters of plain text)"
            ))
        })?,
        None => {}
    }
    let owner = match extension(body, TASK_OWNER_EXTENSION) {
        None => None,
        Some(e) => Some(
            e["valueReference"]["reference"]
                .as_str()
                .and_then(|r| r.strip_prefix('#'))
                .and_then(|id| contained_person(body, id))
                .ok_or_else(|| {
                    invalid("OrderResponse.extension (task owner): a contained Practitioner with an SDS user id is required")
                })?,
        ),
    };
    Ok(TaskUpdate {
        identifier,
        version,
        request,
        date,
        who,
        owner,
        state,
        description,
    })
}

fn extension<'a>(body: &'a Value, url: &str) -> Option<&'a Value> {
    body["extension"]
        .as_array()?
        .iter()
        .find(|e| e["url"] == url)
}

fn first_text(name: &Map<String, Value>, key: &str) -> String {
    name.get(key)
        .and_then(Value::as_array)
        .and_then(|v| v.first())
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn contained_person(body: &Value, id: &str) -> Option<Person> {
    let p = body["contained"]
        .as_array()?
        .iter()
        .find(|c| c["resourceType"] == "Practitioner" && c["id"] == id)?;
    let sds_user_id = p["identifier"]
        .as_array()?
        .iter()
        .find(|i| i["system"] == SDS_USER_ID_SHORT || i["system"] == SDS_USER_ID)?["value"]
        .as_str()
        .filter(|v| !v.trim().is_empty())?
        .to_owned();
    let empty = Map::new();
    let name = p["name"].as_object().unwrap_or(&empty);
    let coding = &p["practitionerRole"][0]["role"]["coding"][0];
    Some(Person {
        sds_user_id,
        prefix: first_text(name, "prefix"),
        given: first_text(name, "given"),
        family: first_text(name, "family"),
        role_code: coding["code"].as_str().unwrap_or_default().to_owned(),
        role_display: coding["display"].as_str().unwrap_or_default().to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gilbert() -> Person {
        Person {
            sds_user_id: "G13579135".into(),
            prefix: "Dr".into(),
            given: "Nichole".into(),
            family: "GILBERT".into(),
            role_code: "R0260".into(),
            role_display: "General Medical Practitioner".into(),
        }
    }

    fn update() -> TaskUpdate {
        TaskUpdate {
            identifier: "urn:uuid:3c1d7e0a-2b4f-4a56-9d1e-7f2a6b0c9e11".into(),
            version: 2,
            request:
                "http://127.0.0.1:8080/GPC001/DSTU2/1/Order/01a23515-b047-75d3-a0f8-4ec2eafa74c4"
                    .into(),
            date: "2026-12-02T10:32:05Z".parse().unwrap(),
            who: gilbert(),
            owner: None,
            state: TaskState::Accepted,
            description: Some("Booked a medication review for Thursday.".into()),
        }
    }

    #[test]
    fn the_built_update_is_the_spec_example_and_structurally_valid() {
        let body = order_response(&update());
        assert_eq!(body["orderStatus"], "accepted");
        assert_eq!(body["date"], "2026-12-02T10:32:05+00:00");
        assert_eq!(body["who"]["reference"], "#who");
        assert_eq!(body["contained"][0]["identifier"][0]["value"], "G13579135");
        assert_eq!(body["extension"][0]["valueInteger"], 2);
        gpc_fhir::validate_resource(&body).unwrap();
        assert_eq!(read_order_response(&body).unwrap(), update());
        // XML both ways, through the FHIR codec's schema.
        let xml = gpc_fhir::to_body(&body, gpc_fhir::Format::Xml);
        let back = gpc_fhir::parse_body(&xml, gpc_fhir::Format::Xml).unwrap();
        assert_eq!(back, body);
    }

    #[test]
    fn an_assignment_carries_its_owner_and_reads_back() {
        let mut u = update();
        u.version = 3;
        u.owner = Some(Person {
            sds_user_id: "G50000001".into(),
            prefix: "Mrs".into(),
            given: "Helen".into(),
            family: "ROSS".into(),
            role_code: "R0570".into(),
            role_display: "Nurse".into(),
        });
        let body = order_response(&u);
        assert_eq!(body["contained"][1]["id"], "owner");
        gpc_fhir::validate_resource(&body).unwrap();
        let read = read_order_response(&body).unwrap();
        assert_eq!(read.owner.unwrap().as_owner().name, "Mrs Helen ROSS");
    }

    /// sign-in.md §3: CIS2 gives no title, and a user outside the
    /// reference data may have no role display; FHIR allows no empty strings.
    #[test]
    fn a_signed_in_user_without_a_title_makes_a_valid_update() {
        let mut u = update();
        u.who = Person {
            sds_user_id: "555021935501".into(),
            prefix: String::new(),
            given: "Priya".into(),
            family: "SHAH".into(),
            role_code: "S8000:G8000:R8000".into(),
            role_display: String::new(),
        };
        let body = order_response(&u);
        assert_eq!(body["contained"][0]["name"].get("prefix"), None);
        gpc_fhir::validate_resource(&body).unwrap();
        assert_eq!(read_order_response(&body).unwrap(), u);
        u.who.role_code = String::new();
        let body = order_response(&u);
        gpc_fhir::validate_resource(&body).unwrap();
        assert_eq!(read_order_response(&body).unwrap(), u);
    }

    fn refused(edit: impl FnOnce(&mut Value)) -> String {
        let mut body = order_response(&update());
        edit(&mut body);
        match read_order_response(&body) {
            Err(ProviderError::InvalidResource(m)) => m,
            other => panic!("expected INVALID_RESOURCE, got {other:?}"),
        }
    }

    #[test]
    fn each_content_check_names_its_element_in_the_spec_order() {
        type Edit = fn(&mut Value);
        let cases: [(&str, Edit); 9] = [
            ("OrderResponse.identifier", |b| b["identifier"] = json!([])),
            ("OrderResponse.extension (task version)", |b| {
                b["extension"][0]["valueInteger"] = json!(1)
            }),
            ("OrderResponse.request", |b| {
                b["request"]["reference"] = json!("Order/1")
            }),
            ("OrderResponse.date", |b| b["date"] = json!("yesterday")),
            ("OrderResponse.who", |b| {
                b["contained"][0]["identifier"] = json!([])
            }),
            ("OrderResponse.orderStatus", |b| {
                b["orderStatus"] = json!("received")
            }),
            ("OrderResponse.description", |b| {
                b["description"] = json!(" ")
            }),
            ("OrderResponse.description", |b| {
                b["description"] = json!("x".repeat(1001))
            }),
            ("OrderResponse.identifier", |b| {
                // Two problems at once: the earlier check is the one reported.
                b["identifier"] = json!([]);
                b["orderStatus"] = json!("on-hold");
            }),
        ];
        for (element, edit) in cases {
            let message = refused(edit);
            assert!(message.starts_with(element), "{element}: {message}");
        }
    }

    #[test]
    fn a_cancellation_may_carry_version_1_and_an_update_may_not() {
        let mut body = order_response(&update());
        body["extension"][0]["valueInteger"] = json!(1);
        body["orderStatus"] = json!("cancelled");
        assert_eq!(read_order_response(&body).unwrap().version, 1);
        body["extension"][0]["valueInteger"] = json!(0);
        assert!(matches!(
            read_order_response(&body),
            Err(ProviderError::InvalidResource(m)) if m.contains("1 or more")
        ));
        for status in ["accepted", "completed", "rejected"] {
            body["extension"][0]["valueInteger"] = json!(1);
            body["orderStatus"] = json!(status);
            assert!(matches!(
                read_order_response(&body),
                Err(ProviderError::InvalidResource(m)) if m.contains("2 or more")
            ));
        }
    }

    #[test]
    fn a_reason_is_required_to_reject_or_cancel_and_not_to_complete() {
        for status in ["rejected", "cancelled"] {
            let message = refused(|b| {
                b["orderStatus"] = json!(status);
                b.as_object_mut().unwrap().remove("description");
            });
            assert!(message.contains("reason is required"), "{message}");
        }
        let mut body = order_response(&update());
        body["orderStatus"] = json!("completed");
        body.as_object_mut().unwrap().remove("description");
        assert_eq!(
            read_order_response(&body).unwrap().state,
            TaskState::Completed
        );
    }

    #[test]
    fn step_2_is_as_for_an_order() {
        assert_eq!(check_structure(&order_response(&update())), Ok(()));
        let bad_request =
            |e: Result<(), ProviderError>| matches!(e, Err(ProviderError::BadRequest(_)));
        assert!(bad_request(check_structure(
            &json!({"resourceType": "Order"})
        )));
        assert!(bad_request(check_structure(&json!([1]))));
        let mut with_id = order_response(&update());
        with_id["id"] = json!("1");
        assert!(matches!(
            check_structure(&with_id),
            Err(ProviderError::UnprocessableBadRequest(m)) if m.contains("OrderResponse.id")
        ));
        let mut unknown = order_response(&update());
        unknown["invalidField"] = json!(1);
        assert!(matches!(
            check_structure(&unknown),
            Err(ProviderError::InvalidResource(_))
        ));
        let mut unprofiled = order_response(&update());
        unprofiled["meta"]["profile"] = json!(["http://example.org/other"]);
        assert!(matches!(
            check_structure(&unprofiled),
            Err(ProviderError::InvalidResource(m)) if m.contains("meta.profile")
        ));
        let mut crowded = order_response(&update());
        crowded["contained"] = json!(vec![crowded["contained"][0].clone(); MAX_CONTAINED + 1]);
        assert!(matches!(
            check_structure(&crowded),
            Err(ProviderError::InvalidResource(m)) if m.contains("contained")
        ));
    }

    #[test]
    fn the_answer_is_the_update_with_its_id_and_the_version_of_the_change() {
        let mut sent = update();
        sent.state = TaskState::Cancelled;
        sent.version = 1;
        let received = order_response(&sent);
        let answered = answer(&received, 4);
        assert_eq!(answered["id"], "3c1d7e0a-2b4f-4a56-9d1e-7f2a6b0c9e11");
        assert_eq!(answered["meta"]["versionId"], "4");
        assert_eq!(answered["meta"]["profile"], received["meta"]["profile"]);
        assert_eq!(carried_version(&answered), Some(4));
        assert_eq!(
            answered["extension"].as_array().unwrap().len(),
            received["extension"].as_array().unwrap().len()
        );
        for key in [
            "identifier",
            "contained",
            "request",
            "date",
            "who",
            "orderStatus",
            "description",
        ] {
            assert_eq!(answered[key], received[key], "{key}");
        }
        // A repeat is answered the same, and answering an answer changes nothing.
        assert_eq!(answer(&received, 4), answered);
        assert_eq!(answer(&answered, 4), answered);
        // The answer is a valid stored resource, both ways through XML.
        gpc_fhir::validate_resource(&answered).unwrap();
        let xml = gpc_fhir::to_body(&answered, gpc_fhir::Format::Xml);
        assert_eq!(
            gpc_fhir::parse_body(&xml, gpc_fhir::Format::Xml).unwrap(),
            answered
        );
        // A body without the extension gets one; a body that is no object is left alone.
        let mut bare = received.clone();
        bare.as_object_mut().unwrap().remove("extension");
        assert_eq!(carried_version(&answer(&bare, 2)), Some(2));
        assert_eq!(answer(&json!("x"), 2), json!("x"));
    }

    #[test]
    fn the_entry_names_who_did_it_and_who_owns_the_task_after() {
        let hub = OdsCode::parse("GPC001").unwrap();
        let held = Some(Owner {
            sds_user_id: "G50000001".into(),
            name: "Mrs Helen ROSS".into(),
        });
        // A take: the owner is who took it.
        let entry = update().entry(&hub, Party::Receiver, held.clone());
        assert_eq!(entry.version, 2);
        assert_eq!(entry.at, update().date);
        assert_eq!(entry.by.sds_user_id, "G13579135");
        assert_eq!(entry.by.name, "Dr Nichole GILBERT");
        assert_eq!(entry.by.organisation, hub);
        assert_eq!(entry.party, Party::Receiver);
        assert_eq!(entry.state, TaskState::Accepted);
        assert_eq!(entry.owner.unwrap().sds_user_id, "G13579135");
        assert_eq!(
            entry.note.as_deref(),
            Some("Booked a medication review for Thursday.")
        );
        // An assignment: the owner is the one assigned.
        let mut assigned = update();
        assigned.owner = Some(Person {
            sds_user_id: "G50000001".into(),
            ..gilbert()
        });
        let entry = assigned.entry(&hub, Party::Receiver, None);
        assert_eq!(entry.owner.unwrap().sds_user_id, "G50000001");
        // Completed without an owner keeps the one held.
        let mut done = update();
        done.state = TaskState::Completed;
        done.description = None;
        let entry = done.entry(&hub, Party::Receiver, held.clone());
        assert_eq!(entry.owner, held);
        assert_eq!(entry.note, None);
    }

    #[test]
    fn debug_hides_names_and_the_description() {
        let shown = format!("{:?}", update());
        assert!(shown.contains("G13579135"), "{shown}");
        for secret in ["GILBERT", "Nichole", "Thursday"] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
    }
}
