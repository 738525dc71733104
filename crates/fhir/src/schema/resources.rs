//! DSTU2 resources and their backbone elements.

use super::{
    BASE64, BOOLEAN, CODE, DATE, DATE_TIME, DECIMAL, ElementDef, ID, INSTANT, INTEGER, Kind,
    STRING, Ty, UNSIGNED_INT, URI, choice, list, list1, opt, req, t,
};

pub(super) static RESOURCE_BASE: &[ElementDef] = &[
    opt("id", ID),
    opt("meta", t(Ty::Meta)),
    opt("implicitRules", URI),
    opt("language", CODE),
];

pub(super) static DOMAIN_RESOURCE_BASE: &[ElementDef] = &[
    opt("id", ID),
    opt("meta", t(Ty::Meta)),
    opt("implicitRules", URI),
    opt("language", CODE),
    opt("text", t(Ty::Narrative)),
    list("contained", Kind::Contained),
    list("extension", t(Ty::Extension)),
    list("modifierExtension", t(Ty::Extension)),
];

const REF: Kind = t(Ty::Reference);
const CC: Kind = t(Ty::CodeableConcept);

/// DSTU2 OrderResponse: a task's update, both ways (task-lifecycle.md §2).
pub(super) static ORDER_RESPONSE: &[ElementDef] = &[
    list("identifier", t(Ty::Identifier)),
    req("request", REF),
    opt("date", DATE_TIME),
    opt("who", REF),
    req("orderStatus", CODE),
    opt("description", STRING),
    list("fulfillment", REF),
];

pub(super) static ORDER: &[ElementDef] = &[
    list("identifier", t(Ty::Identifier)),
    opt("date", DATE_TIME),
    opt("subject", REF),
    opt("source", REF),
    opt("target", REF),
    choice("reason", "reasonCodeableConcept", CC),
    choice("reason", "reasonReference", REF),
    opt("when", t(Ty::OrderWhen)),
    list1("detail", REF),
];

pub(super) static ORDER_WHEN: &[ElementDef] = &[opt("code", CC), opt("schedule", t(Ty::Timing))];

pub(super) static BASIC: &[ElementDef] = &[
    list("identifier", t(Ty::Identifier)),
    req("code", CC),
    opt("subject", REF),
    opt("author", REF),
    opt("created", DATE),
];

pub(super) static PATIENT: &[ElementDef] = &[
    list("identifier", t(Ty::Identifier)),
    opt("active", BOOLEAN),
    list("name", t(Ty::HumanName)),
    list("telecom", t(Ty::ContactPoint)),
    opt("gender", CODE),
    opt("birthDate", DATE),
    choice("deceased", "deceasedBoolean", BOOLEAN),
    choice("deceased", "deceasedDateTime", DATE_TIME),
    list("address", t(Ty::Address)),
    opt("maritalStatus", CC),
    choice("multipleBirth", "multipleBirthBoolean", BOOLEAN),
    choice("multipleBirth", "multipleBirthInteger", INTEGER),
    list("photo", t(Ty::Attachment)),
    list("contact", t(Ty::PatientContact)),
    opt("animal", t(Ty::PatientAnimal)),
    list("communication", t(Ty::PatientCommunication)),
    list("careProvider", REF),
    opt("managingOrganization", REF),
    list("link", t(Ty::PatientLink)),
];

pub(super) static PATIENT_CONTACT: &[ElementDef] = &[
    list("relationship", CC),
    opt("name", t(Ty::HumanName)),
    list("telecom", t(Ty::ContactPoint)),
    opt("address", t(Ty::Address)),
    opt("gender", CODE),
    opt("organization", REF),
    opt("period", t(Ty::Period)),
];

pub(super) static PATIENT_ANIMAL: &[ElementDef] = &[
    req("species", CC),
    opt("breed", CC),
    opt("genderStatus", CC),
];

pub(super) static PATIENT_COMMUNICATION: &[ElementDef] =
    &[req("language", CC), opt("preferred", BOOLEAN)];

pub(super) static PATIENT_LINK: &[ElementDef] = &[req("other", REF), req("type", CODE)];

pub(super) static ORGANIZATION: &[ElementDef] = &[
    list("identifier", t(Ty::Identifier)),
    opt("active", BOOLEAN),
    opt("type", CC),
    opt("name", STRING),
    list("telecom", t(Ty::ContactPoint)),
    list("address", t(Ty::Address)),
    opt("partOf", REF),
    list("contact", t(Ty::OrganizationContact)),
];

pub(super) static ORGANIZATION_CONTACT: &[ElementDef] = &[
    opt("purpose", CC),
    opt("name", t(Ty::HumanName)),
    list("telecom", t(Ty::ContactPoint)),
    opt("address", t(Ty::Address)),
];

pub(super) static PRACTITIONER: &[ElementDef] = &[
    list("identifier", t(Ty::Identifier)),
    opt("active", BOOLEAN),
    opt("name", t(Ty::HumanName)),
    list("telecom", t(Ty::ContactPoint)),
    list("address", t(Ty::Address)),
    opt("gender", CODE),
    opt("birthDate", DATE),
    list("photo", t(Ty::Attachment)),
    list("practitionerRole", t(Ty::PractitionerRole)),
    list("qualification", t(Ty::PractitionerQualification)),
    list("communication", CC),
];

pub(super) static PRACTITIONER_ROLE: &[ElementDef] = &[
    opt("managingOrganization", REF),
    opt("role", CC),
    list("specialty", CC),
    opt("period", t(Ty::Period)),
    list("location", REF),
    list("healthcareService", REF),
];

pub(super) static PRACTITIONER_QUALIFICATION: &[ElementDef] = &[
    list("identifier", t(Ty::Identifier)),
    req("code", CC),
    opt("period", t(Ty::Period)),
    opt("issuer", REF),
];

/// DSTU2 makes `Device.type` 1..1, but GP Connect's own JWT `requesting_device`
/// (resourceType, id, identifier, model, version) carries none, so it is optional here.
pub(super) static DEVICE: &[ElementDef] = &[
    list("identifier", t(Ty::Identifier)),
    opt("type", CC),
    list("note", t(Ty::Annotation)),
    opt("status", CODE),
    opt("manufacturer", STRING),
    opt("model", STRING),
    opt("version", STRING),
    opt("manufactureDate", DATE_TIME),
    opt("expiry", DATE_TIME),
    opt("udi", STRING),
    opt("lotNumber", STRING),
    opt("owner", REF),
    opt("location", REF),
    opt("patient", REF),
    list("contact", t(Ty::ContactPoint)),
    opt("url", URI),
];

pub(super) static BUNDLE: &[ElementDef] = &[
    req("type", CODE),
    opt("total", UNSIGNED_INT),
    list("link", t(Ty::BundleLink)),
    list("entry", t(Ty::BundleEntry)),
    opt("signature", t(Ty::Signature)),
];

pub(super) static BUNDLE_LINK: &[ElementDef] = &[req("relation", STRING), req("url", URI)];

pub(super) static BUNDLE_ENTRY: &[ElementDef] = &[
    list("link", t(Ty::BundleLink)),
    opt("fullUrl", URI),
    opt("resource", Kind::Resource),
    opt("search", t(Ty::BundleEntrySearch)),
    opt("request", t(Ty::BundleEntryRequest)),
    opt("response", t(Ty::BundleEntryResponse)),
];

pub(super) static BUNDLE_ENTRY_SEARCH: &[ElementDef] = &[opt("mode", CODE), opt("score", DECIMAL)];

pub(super) static BUNDLE_ENTRY_REQUEST: &[ElementDef] = &[
    req("method", CODE),
    req("url", URI),
    opt("ifNoneMatch", STRING),
    opt("ifModifiedSince", INSTANT),
    opt("ifMatch", STRING),
    opt("ifNoneExist", STRING),
];

pub(super) static BUNDLE_ENTRY_RESPONSE: &[ElementDef] = &[
    req("status", STRING),
    opt("location", URI),
    opt("etag", STRING),
    opt("lastModified", INSTANT),
];

pub(super) static OPERATION_OUTCOME: &[ElementDef] =
    &[list1("issue", t(Ty::OperationOutcomeIssue))];

pub(super) static OPERATION_OUTCOME_ISSUE: &[ElementDef] = &[
    req("severity", CODE),
    req("code", CODE),
    opt("details", CC),
    opt("diagnostics", STRING),
    list("location", STRING),
];

pub(super) static CONFORMANCE: &[ElementDef] = &[
    opt("url", URI),
    opt("version", STRING),
    opt("name", STRING),
    opt("status", CODE),
    opt("experimental", BOOLEAN),
    opt("publisher", STRING),
    list("contact", t(Ty::ConformanceContact)),
    req("date", DATE_TIME),
    opt("description", STRING),
    opt("requirements", STRING),
    opt("copyright", STRING),
    req("kind", CODE),
    opt("software", t(Ty::ConformanceSoftware)),
    opt("implementation", t(Ty::ConformanceImplementation)),
    req("fhirVersion", ID),
    req("acceptUnknown", CODE),
    list1("format", CODE),
    list("profile", REF),
    list("rest", t(Ty::ConformanceRest)),
    list("messaging", t(Ty::ConformanceMessaging)),
    list("document", t(Ty::ConformanceDocument)),
];

pub(super) static CONFORMANCE_CONTACT: &[ElementDef] =
    &[opt("name", STRING), list("telecom", t(Ty::ContactPoint))];

pub(super) static CONFORMANCE_SOFTWARE: &[ElementDef] = &[
    req("name", STRING),
    opt("version", STRING),
    opt("releaseDate", DATE_TIME),
];

pub(super) static CONFORMANCE_IMPLEMENTATION: &[ElementDef] =
    &[req("description", STRING), opt("url", URI)];

pub(super) static CONFORMANCE_REST: &[ElementDef] = &[
    req("mode", CODE),
    opt("documentation", STRING),
    opt("security", t(Ty::ConformanceRestSecurity)),
    list1("resource", t(Ty::ConformanceRestResource)),
    list("interaction", t(Ty::ConformanceInteraction)),
    opt("transactionMode", CODE),
    list("searchParam", t(Ty::ConformanceSearchParam)),
    list("operation", t(Ty::ConformanceRestOperation)),
    list("compartment", URI),
];

pub(super) static CONFORMANCE_REST_SECURITY: &[ElementDef] = &[
    opt("cors", BOOLEAN),
    list("service", CC),
    opt("description", STRING),
    list("certificate", t(Ty::ConformanceRestSecurityCertificate)),
];

pub(super) static CONFORMANCE_REST_SECURITY_CERTIFICATE: &[ElementDef] =
    &[opt("type", CODE), opt("blob", BASE64)];

pub(super) static CONFORMANCE_REST_RESOURCE: &[ElementDef] = &[
    req("type", CODE),
    opt("profile", REF),
    list1("interaction", t(Ty::ConformanceInteraction)),
    opt("versioning", CODE),
    opt("readHistory", BOOLEAN),
    opt("updateCreate", BOOLEAN),
    opt("conditionalCreate", BOOLEAN),
    opt("conditionalUpdate", BOOLEAN),
    opt("conditionalDelete", CODE),
    list("searchInclude", STRING),
    list("searchRevInclude", STRING),
    list("searchParam", t(Ty::ConformanceSearchParam)),
];

/// `rest.resource.interaction` and `rest.interaction` have the same shape.
pub(super) static CONFORMANCE_INTERACTION: &[ElementDef] =
    &[req("code", CODE), opt("documentation", STRING)];

pub(super) static CONFORMANCE_SEARCH_PARAM: &[ElementDef] = &[
    req("name", STRING),
    opt("definition", URI),
    req("type", CODE),
    opt("documentation", STRING),
    list("target", CODE),
    list("modifier", CODE),
    list("chain", STRING),
];

pub(super) static CONFORMANCE_REST_OPERATION: &[ElementDef] =
    &[req("name", STRING), req("definition", REF)];

pub(super) static CONFORMANCE_MESSAGING: &[ElementDef] = &[
    list("endpoint", t(Ty::ConformanceMessagingEndpoint)),
    opt("reliableCache", UNSIGNED_INT),
    opt("documentation", STRING),
    list1("event", t(Ty::ConformanceMessagingEvent)),
];

pub(super) static CONFORMANCE_MESSAGING_ENDPOINT: &[ElementDef] =
    &[req("protocol", t(Ty::Coding)), req("address", URI)];

pub(super) static CONFORMANCE_MESSAGING_EVENT: &[ElementDef] = &[
    req("code", t(Ty::Coding)),
    opt("category", CODE),
    req("mode", CODE),
    req("focus", CODE),
    req("request", REF),
    req("response", REF),
    opt("documentation", STRING),
];

pub(super) static CONFORMANCE_DOCUMENT: &[ElementDef] = &[
    req("mode", CODE),
    opt("documentation", STRING),
    req("profile", REF),
];
