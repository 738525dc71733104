//! Hand-written FHIR DSTU2 (1.0.2) element definitions, in definition order.
//!
//! One table drives validation, XML → JSON and JSON → XML, so the three can
//! never disagree about which elements exist, which repeat and how they are
//! typed. Tables are `static` slices reached through a `match` on [`Ty`], so a
//! lookup never allocates.

mod datatypes;
mod resources;

/// A FHIR primitive type: decides the JSON type and the lexical rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prim {
    Boolean,
    Integer,
    UnsignedInt,
    PositiveInt,
    Decimal,
    String,
    Code,
    Id,
    Uri,
    Oid,
    Markdown,
    Base64Binary,
    Date,
    DateTime,
    Instant,
    Time,
}

/// What an element holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Prim(Prim),
    /// The narrative `div`: XHTML, a string in JSON, raw markup in XML.
    Xhtml,
    /// A datatype or backbone element with its own table.
    Complex(Ty),
    /// `DomainResource.contained`: a wrapped resource with the extra contained rules.
    Contained,
    /// `Bundle.entry.resource`: a wrapped resource.
    Resource,
}

/// One element of a type.
#[derive(Debug, Clone, Copy)]
pub struct ElementDef {
    pub name: &'static str,
    pub kind: Kind,
    /// 0 or 1. For a choice variant, 1 means the whole `[x]` group is required.
    pub min: u8,
    /// `max = *`: an array in JSON, repeated elements in XML.
    pub many: bool,
    /// The `[x]` group a choice variant belongs to (e.g. `value`).
    pub choice: Option<&'static str>,
    /// Carried as an XML attribute rather than a child element (`Element.id`, `Extension.url`).
    pub attr: bool,
}

impl ElementDef {
    pub fn is_prim(&self) -> bool {
        matches!(self.kind, Kind::Prim(_))
    }
}

/// Every complex type the codec knows: resources, datatypes and backbone elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    // resources
    Order,
    OrderResponse,
    Basic,
    Patient,
    Organization,
    Practitioner,
    Device,
    Bundle,
    Conformance,
    OperationOutcome,
    // datatypes
    Extension,
    /// The `_name` companion of a primitive: only `id` and `extension`.
    PrimitiveExtension,
    Meta,
    Narrative,
    Identifier,
    CodeableConcept,
    Coding,
    Reference,
    HumanName,
    Address,
    ContactPoint,
    Period,
    Attachment,
    Quantity,
    Range,
    Ratio,
    Annotation,
    Signature,
    SampledData,
    Timing,
    TimingRepeat,
    // backbone elements
    OrderWhen,
    PatientContact,
    PatientAnimal,
    PatientCommunication,
    PatientLink,
    OrganizationContact,
    PractitionerRole,
    PractitionerQualification,
    BundleLink,
    BundleEntry,
    BundleEntrySearch,
    BundleEntryRequest,
    BundleEntryResponse,
    OperationOutcomeIssue,
    ConformanceContact,
    ConformanceSoftware,
    ConformanceImplementation,
    ConformanceRest,
    ConformanceRestSecurity,
    ConformanceRestSecurityCertificate,
    ConformanceRestResource,
    ConformanceInteraction,
    ConformanceSearchParam,
    ConformanceRestOperation,
    ConformanceMessaging,
    ConformanceMessagingEndpoint,
    ConformanceMessagingEvent,
    ConformanceDocument,
}

/// The inherited part of a type's element list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base {
    /// Datatypes: `id` attribute, `extension`.
    Element,
    /// Backbone elements: `id` attribute, `extension`, `modifierExtension`.
    Backbone,
    /// `Resource`: `id`, `meta`, `implicitRules`, `language` (Bundle in DSTU2).
    Resource,
    /// `DomainResource`: `Resource` plus `text`, `contained`, `extension`, `modifierExtension`.
    DomainResource,
}

impl Ty {
    /// The resource type for a `resourceType` value, if it is one this codec knows.
    pub fn resource(name: &str) -> Option<Ty> {
        Some(match name {
            "Order" => Ty::Order,
            "OrderResponse" => Ty::OrderResponse,
            "Basic" => Ty::Basic,
            "Patient" => Ty::Patient,
            "Organization" => Ty::Organization,
            "Practitioner" => Ty::Practitioner,
            "Device" => Ty::Device,
            "Bundle" => Ty::Bundle,
            "Conformance" => Ty::Conformance,
            "OperationOutcome" => Ty::OperationOutcome,
            _ => return None,
        })
    }

    pub fn is_resource(self) -> bool {
        matches!(self.base(), Base::Resource | Base::DomainResource)
    }

    pub fn base(self) -> Base {
        use Ty::*;
        match self {
            Bundle => Base::Resource,
            Order | OrderResponse | Basic | Patient | Organization | Practitioner | Device
            | Conformance | OperationOutcome => Base::DomainResource,
            Extension | PrimitiveExtension | Meta | Narrative | Identifier | CodeableConcept
            | Coding | Reference | HumanName | Address | ContactPoint | Period | Attachment
            | Quantity | Range | Ratio | Annotation | Signature | SampledData | Timing
            | TimingRepeat => Base::Element,
            _ => Base::Backbone,
        }
    }

    /// The type's elements in definition order: inherited part first.
    pub fn elements(self) -> [&'static [ElementDef]; 2] {
        let base: &'static [ElementDef] = match self.base() {
            Base::Element => datatypes::ELEMENT_BASE,
            Base::Backbone => datatypes::BACKBONE_BASE,
            Base::Resource => resources::RESOURCE_BASE,
            Base::DomainResource => resources::DOMAIN_RESOURCE_BASE,
        };
        [base, self.own()]
    }

    pub fn find(self, name: &str) -> Option<&'static ElementDef> {
        self.elements()
            .into_iter()
            .flatten()
            .find(|def| def.name == name)
    }

    fn own(self) -> &'static [ElementDef] {
        use Ty::*;
        use datatypes as d;
        use resources as r;
        match self {
            Order => r::ORDER,
            OrderResponse => r::ORDER_RESPONSE,
            Basic => r::BASIC,
            Patient => r::PATIENT,
            Organization => r::ORGANIZATION,
            Practitioner => r::PRACTITIONER,
            Device => r::DEVICE,
            Bundle => r::BUNDLE,
            Conformance => r::CONFORMANCE,
            OperationOutcome => r::OPERATION_OUTCOME,
            Extension => d::EXTENSION,
            PrimitiveExtension => &[],
            Meta => d::META,
            Narrative => d::NARRATIVE,
            Identifier => d::IDENTIFIER,
            CodeableConcept => d::CODEABLE_CONCEPT,
            Coding => d::CODING,
            Reference => d::REFERENCE,
            HumanName => d::HUMAN_NAME,
            Address => d::ADDRESS,
            ContactPoint => d::CONTACT_POINT,
            Period => d::PERIOD,
            Attachment => d::ATTACHMENT,
            Quantity => d::QUANTITY,
            Range => d::RANGE,
            Ratio => d::RATIO,
            Annotation => d::ANNOTATION,
            Signature => d::SIGNATURE,
            SampledData => d::SAMPLED_DATA,
            Timing => d::TIMING,
            TimingRepeat => d::TIMING_REPEAT,
            OrderWhen => r::ORDER_WHEN,
            PatientContact => r::PATIENT_CONTACT,
            PatientAnimal => r::PATIENT_ANIMAL,
            PatientCommunication => r::PATIENT_COMMUNICATION,
            PatientLink => r::PATIENT_LINK,
            OrganizationContact => r::ORGANIZATION_CONTACT,
            PractitionerRole => r::PRACTITIONER_ROLE,
            PractitionerQualification => r::PRACTITIONER_QUALIFICATION,
            BundleLink => r::BUNDLE_LINK,
            BundleEntry => r::BUNDLE_ENTRY,
            BundleEntrySearch => r::BUNDLE_ENTRY_SEARCH,
            BundleEntryRequest => r::BUNDLE_ENTRY_REQUEST,
            BundleEntryResponse => r::BUNDLE_ENTRY_RESPONSE,
            OperationOutcomeIssue => r::OPERATION_OUTCOME_ISSUE,
            ConformanceContact => r::CONFORMANCE_CONTACT,
            ConformanceSoftware => r::CONFORMANCE_SOFTWARE,
            ConformanceImplementation => r::CONFORMANCE_IMPLEMENTATION,
            ConformanceRest => r::CONFORMANCE_REST,
            ConformanceRestSecurity => r::CONFORMANCE_REST_SECURITY,
            ConformanceRestSecurityCertificate => r::CONFORMANCE_REST_SECURITY_CERTIFICATE,
            ConformanceRestResource => r::CONFORMANCE_REST_RESOURCE,
            ConformanceInteraction => r::CONFORMANCE_INTERACTION,
            ConformanceSearchParam => r::CONFORMANCE_SEARCH_PARAM,
            ConformanceRestOperation => r::CONFORMANCE_REST_OPERATION,
            ConformanceMessaging => r::CONFORMANCE_MESSAGING,
            ConformanceMessagingEndpoint => r::CONFORMANCE_MESSAGING_ENDPOINT,
            ConformanceMessagingEvent => r::CONFORMANCE_MESSAGING_EVENT,
            ConformanceDocument => r::CONFORMANCE_DOCUMENT,
        }
    }
}

// Terse constructors so the tables read like the DSTU2 structure pages.

/// `0..1`
const fn opt(name: &'static str, kind: Kind) -> ElementDef {
    ElementDef {
        name,
        kind,
        min: 0,
        many: false,
        choice: None,
        attr: false,
    }
}

/// `1..1`
const fn req(name: &'static str, kind: Kind) -> ElementDef {
    ElementDef {
        name,
        kind,
        min: 1,
        many: false,
        choice: None,
        attr: false,
    }
}

/// `0..*`
const fn list(name: &'static str, kind: Kind) -> ElementDef {
    ElementDef {
        name,
        kind,
        min: 0,
        many: true,
        choice: None,
        attr: false,
    }
}

/// `1..*`
const fn list1(name: &'static str, kind: Kind) -> ElementDef {
    ElementDef {
        name,
        kind,
        min: 1,
        many: true,
        choice: None,
        attr: false,
    }
}

/// One variant of an optional `[x]` choice group.
const fn choice(group: &'static str, name: &'static str, kind: Kind) -> ElementDef {
    ElementDef {
        name,
        kind,
        min: 0,
        many: false,
        choice: Some(group),
        attr: false,
    }
}

/// One variant of a required `[x]` choice group.
const fn choice1(group: &'static str, name: &'static str, kind: Kind) -> ElementDef {
    ElementDef {
        name,
        kind,
        min: 1,
        many: false,
        choice: Some(group),
        attr: false,
    }
}

/// A `0..1` or `1..1` element carried as an XML attribute.
const fn attr(name: &'static str, kind: Kind, min: u8) -> ElementDef {
    ElementDef {
        name,
        kind,
        min,
        many: false,
        choice: None,
        attr: true,
    }
}

const fn t(ty: Ty) -> Kind {
    Kind::Complex(ty)
}

const BOOLEAN: Kind = Kind::Prim(Prim::Boolean);
const INTEGER: Kind = Kind::Prim(Prim::Integer);
const UNSIGNED_INT: Kind = Kind::Prim(Prim::UnsignedInt);
const POSITIVE_INT: Kind = Kind::Prim(Prim::PositiveInt);
const DECIMAL: Kind = Kind::Prim(Prim::Decimal);
const STRING: Kind = Kind::Prim(Prim::String);
const CODE: Kind = Kind::Prim(Prim::Code);
const ID: Kind = Kind::Prim(Prim::Id);
const URI: Kind = Kind::Prim(Prim::Uri);
const OID: Kind = Kind::Prim(Prim::Oid);
const MARKDOWN: Kind = Kind::Prim(Prim::Markdown);
const BASE64: Kind = Kind::Prim(Prim::Base64Binary);
const DATE: Kind = Kind::Prim(Prim::Date);
const DATE_TIME: Kind = Kind::Prim(Prim::DateTime);
const INSTANT: Kind = Kind::Prim(Prim::Instant);
const TIME: Kind = Kind::Prim(Prim::Time);

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: &[Ty] = &[
        Ty::Order,
        Ty::Basic,
        Ty::Patient,
        Ty::Organization,
        Ty::Practitioner,
        Ty::Device,
        Ty::Bundle,
        Ty::Conformance,
        Ty::OperationOutcome,
        Ty::Extension,
        Ty::PrimitiveExtension,
        Ty::Meta,
        Ty::Narrative,
        Ty::Identifier,
        Ty::CodeableConcept,
        Ty::Coding,
        Ty::Reference,
        Ty::HumanName,
        Ty::Address,
        Ty::ContactPoint,
        Ty::Period,
        Ty::Attachment,
        Ty::Quantity,
        Ty::Range,
        Ty::Ratio,
        Ty::Annotation,
        Ty::Signature,
        Ty::SampledData,
        Ty::Timing,
        Ty::TimingRepeat,
        Ty::OrderWhen,
        Ty::PatientContact,
        Ty::PatientAnimal,
        Ty::PatientCommunication,
        Ty::PatientLink,
        Ty::OrganizationContact,
        Ty::PractitionerRole,
        Ty::PractitionerQualification,
        Ty::BundleLink,
        Ty::BundleEntry,
        Ty::BundleEntrySearch,
        Ty::BundleEntryRequest,
        Ty::BundleEntryResponse,
        Ty::OperationOutcomeIssue,
        Ty::ConformanceContact,
        Ty::ConformanceSoftware,
        Ty::ConformanceImplementation,
        Ty::ConformanceRest,
        Ty::ConformanceRestSecurity,
        Ty::ConformanceRestSecurityCertificate,
        Ty::ConformanceRestResource,
        Ty::ConformanceInteraction,
        Ty::ConformanceSearchParam,
        Ty::ConformanceRestOperation,
        Ty::ConformanceMessaging,
        Ty::ConformanceMessagingEndpoint,
        Ty::ConformanceMessagingEvent,
        Ty::ConformanceDocument,
    ];

    #[test]
    fn element_names_are_unique_within_each_type() {
        for ty in ALL {
            let names: Vec<&str> = ty
                .elements()
                .into_iter()
                .flatten()
                .map(|d| d.name)
                .collect();
            for (i, name) in names.iter().enumerate() {
                assert!(!names[i + 1..].contains(name), "{ty:?} repeats {name}");
            }
        }
    }

    #[test]
    fn choice_variants_are_contiguous_single_values() {
        for ty in ALL {
            let defs: Vec<&ElementDef> = ty.elements().into_iter().flatten().collect();
            for (i, def) in defs.iter().enumerate() {
                let Some(group) = def.choice else { continue };
                assert!(!def.many && !def.attr, "{ty:?}.{}", def.name);
                assert!(def.name.starts_with(group), "{ty:?}.{}", def.name);
                let later = defs[i + 1..].iter().position(|d| d.choice == Some(group));
                if let Some(offset) = later {
                    assert_eq!(offset, 0, "{ty:?}: {group}[x] variants are split");
                }
            }
        }
    }

    #[test]
    fn resources_are_looked_up_by_name() {
        assert_eq!(Ty::resource("Order"), Some(Ty::Order));
        assert_eq!(Ty::resource("order"), None);
        assert!(Ty::Bundle.is_resource());
        assert_eq!(Ty::Bundle.find("text").map(|d| d.name), None);
        assert!(Ty::Order.find("text").is_some());
        assert!(Ty::Coding.find("id").is_some_and(|d| d.attr));
        assert!(Ty::Order.find("id").is_some_and(|d| !d.attr));
    }
}
