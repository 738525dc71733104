//! DSTU2 datatypes (and the inherited parts of datatypes and backbone elements).

use super::{
    BASE64, BOOLEAN, CODE, DATE, DATE_TIME, DECIMAL, ElementDef, ID, INSTANT, INTEGER, Kind,
    MARKDOWN, OID, POSITIVE_INT, STRING, TIME, Ty, UNSIGNED_INT, URI, attr, choice, choice1, list,
    list1, opt, req, t,
};

/// `Element`. DSTU2 types `Element.id` as `id`, but real payloads put any
/// string there (it is only an intra-resource anchor), so only non-empty is asked.
pub(super) static ELEMENT_BASE: &[ElementDef] =
    &[attr("id", STRING, 0), list("extension", t(Ty::Extension))];

pub(super) static BACKBONE_BASE: &[ElementDef] = &[
    attr("id", STRING, 0),
    list("extension", t(Ty::Extension)),
    list("modifierExtension", t(Ty::Extension)),
];

/// `Extension.value[x]` is DSTU2's open type: every primitive and the general-purpose datatypes.
pub(super) static EXTENSION: &[ElementDef] = &[
    attr("url", URI, 1),
    choice("value", "valueBoolean", BOOLEAN),
    choice("value", "valueInteger", INTEGER),
    choice("value", "valueDecimal", DECIMAL),
    choice("value", "valueBase64Binary", BASE64),
    choice("value", "valueInstant", INSTANT),
    choice("value", "valueString", STRING),
    choice("value", "valueUri", URI),
    choice("value", "valueDate", DATE),
    choice("value", "valueDateTime", DATE_TIME),
    choice("value", "valueTime", TIME),
    choice("value", "valueCode", CODE),
    choice("value", "valueOid", OID),
    choice("value", "valueId", ID),
    choice("value", "valueUnsignedInt", UNSIGNED_INT),
    choice("value", "valuePositiveInt", POSITIVE_INT),
    choice("value", "valueMarkdown", MARKDOWN),
    choice("value", "valueAnnotation", t(Ty::Annotation)),
    choice("value", "valueAttachment", t(Ty::Attachment)),
    choice("value", "valueIdentifier", t(Ty::Identifier)),
    choice("value", "valueCodeableConcept", t(Ty::CodeableConcept)),
    choice("value", "valueCoding", t(Ty::Coding)),
    choice("value", "valueQuantity", t(Ty::Quantity)),
    choice("value", "valueRange", t(Ty::Range)),
    choice("value", "valuePeriod", t(Ty::Period)),
    choice("value", "valueRatio", t(Ty::Ratio)),
    choice("value", "valueSampledData", t(Ty::SampledData)),
    choice("value", "valueSignature", t(Ty::Signature)),
    choice("value", "valueHumanName", t(Ty::HumanName)),
    choice("value", "valueAddress", t(Ty::Address)),
    choice("value", "valueContactPoint", t(Ty::ContactPoint)),
    choice("value", "valueTiming", t(Ty::Timing)),
    choice("value", "valueReference", t(Ty::Reference)),
    choice("value", "valueMeta", t(Ty::Meta)),
];

pub(super) static META: &[ElementDef] = &[
    opt("versionId", ID),
    opt("lastUpdated", INSTANT),
    list("profile", URI),
    list("security", t(Ty::Coding)),
    list("tag", t(Ty::Coding)),
];

pub(super) static NARRATIVE: &[ElementDef] = &[req("status", CODE), req("div", Kind::Xhtml)];

pub(super) static IDENTIFIER: &[ElementDef] = &[
    opt("use", CODE),
    opt("type", t(Ty::CodeableConcept)),
    opt("system", URI),
    opt("value", STRING),
    opt("period", t(Ty::Period)),
    opt("assigner", t(Ty::Reference)),
];

pub(super) static CODEABLE_CONCEPT: &[ElementDef] =
    &[list("coding", t(Ty::Coding)), opt("text", STRING)];

pub(super) static CODING: &[ElementDef] = &[
    opt("system", URI),
    opt("version", STRING),
    opt("code", CODE),
    opt("display", STRING),
    opt("userSelected", BOOLEAN),
];

pub(super) static REFERENCE: &[ElementDef] = &[opt("reference", STRING), opt("display", STRING)];

pub(super) static HUMAN_NAME: &[ElementDef] = &[
    opt("use", CODE),
    opt("text", STRING),
    list("family", STRING),
    list("given", STRING),
    list("prefix", STRING),
    list("suffix", STRING),
    opt("period", t(Ty::Period)),
];

pub(super) static ADDRESS: &[ElementDef] = &[
    opt("use", CODE),
    opt("type", CODE),
    opt("text", STRING),
    list("line", STRING),
    opt("city", STRING),
    opt("district", STRING),
    opt("state", STRING),
    opt("postalCode", STRING),
    opt("country", STRING),
    opt("period", t(Ty::Period)),
];

pub(super) static CONTACT_POINT: &[ElementDef] = &[
    opt("system", CODE),
    opt("value", STRING),
    opt("use", CODE),
    opt("rank", POSITIVE_INT),
    opt("period", t(Ty::Period)),
];

pub(super) static PERIOD: &[ElementDef] = &[opt("start", DATE_TIME), opt("end", DATE_TIME)];

pub(super) static ATTACHMENT: &[ElementDef] = &[
    opt("contentType", CODE),
    opt("language", CODE),
    opt("data", BASE64),
    opt("url", URI),
    opt("size", UNSIGNED_INT),
    opt("hash", BASE64),
    opt("title", STRING),
    opt("creation", DATE_TIME),
];

pub(super) static QUANTITY: &[ElementDef] = &[
    opt("value", DECIMAL),
    opt("comparator", CODE),
    opt("unit", STRING),
    opt("system", URI),
    opt("code", CODE),
];

pub(super) static RANGE: &[ElementDef] =
    &[opt("low", t(Ty::Quantity)), opt("high", t(Ty::Quantity))];

pub(super) static RATIO: &[ElementDef] = &[
    opt("numerator", t(Ty::Quantity)),
    opt("denominator", t(Ty::Quantity)),
];

pub(super) static ANNOTATION: &[ElementDef] = &[
    choice("author", "authorReference", t(Ty::Reference)),
    choice("author", "authorString", STRING),
    opt("time", DATE_TIME),
    req("text", STRING),
];

pub(super) static SIGNATURE: &[ElementDef] = &[
    list1("type", t(Ty::Coding)),
    req("when", INSTANT),
    choice1("who", "whoUri", URI),
    choice1("who", "whoReference", t(Ty::Reference)),
    req("contentType", CODE),
    req("blob", BASE64),
];

pub(super) static SAMPLED_DATA: &[ElementDef] = &[
    req("origin", t(Ty::Quantity)),
    req("period", DECIMAL),
    opt("factor", DECIMAL),
    opt("lowerLimit", DECIMAL),
    opt("upperLimit", DECIMAL),
    req("dimensions", POSITIVE_INT),
    req("data", STRING),
];

pub(super) static TIMING: &[ElementDef] = &[
    list("event", DATE_TIME),
    opt("repeat", t(Ty::TimingRepeat)),
    opt("code", t(Ty::CodeableConcept)),
];

pub(super) static TIMING_REPEAT: &[ElementDef] = &[
    choice("bounds", "boundsQuantity", t(Ty::Quantity)),
    choice("bounds", "boundsRange", t(Ty::Range)),
    choice("bounds", "boundsPeriod", t(Ty::Period)),
    opt("count", INTEGER),
    opt("duration", DECIMAL),
    opt("durationMax", DECIMAL),
    opt("durationUnits", CODE),
    opt("frequency", INTEGER),
    opt("frequencyMax", INTEGER),
    opt("period", DECIMAL),
    opt("periodMax", DECIMAL),
    opt("periodUnits", CODE),
    opt("when", CODE),
];
