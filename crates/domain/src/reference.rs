//! Reference data: the organisations, patients, records and practitioners a
//! system knows. Loaded from the store at start-up; read-only while serving.

use crate::ids::{Asid, NhsNumber, OdsCode};
use jiff::civil::Date;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub lines: Vec<String>,
    pub city: String,
    pub postcode: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organisation {
    /// The stable local id, the same on every system (`Organization/{id}`).
    pub id: String,
    pub ods: OdsCode,
    pub name: String,
    pub care_setting: String,
    /// `None` for an organisation with no Spine system.
    pub asid: Option<Asid>,
    /// Its provider root also receives tasks (`POST /Order`) and answers
    /// the look-ups a sender makes first.
    pub receives_tasks: bool,
    pub telephone: String,
    pub site_codes: Vec<String>,
    pub address: Option<Address>,
}

impl Organisation {
    /// Every organisation with a Spine system has a provider root
    /// (task-lifecycle.md §2).
    pub fn has_root(&self) -> bool {
        self.asid.is_some()
    }

    /// Whether its provider root serves `interaction`: the one rule that
    /// the provider's routing, its Conformance, SDS and the SSP's registry
    /// all follow, so that none of them advertises what another refuses.
    pub fn serves(&self, interaction: crate::Interaction) -> bool {
        self.has_root() && (self.receives_tasks || interaction.served_without_tasks())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gender {
    Male,
    Female,
    Other,
    Unknown,
}

impl Gender {
    pub fn as_fhir(self) -> &'static str {
        match self {
            Gender::Male => "male",
            Gender::Female => "female",
            Gender::Other => "other",
            Gender::Unknown => "unknown",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patient {
    /// The local id, the same on every system holding a record (`Patient/{id}`).
    pub id: String,
    pub nhs_number: NhsNumber,
    pub title: String,
    pub given: String,
    pub family: String,
    pub birth_date: Date,
    pub gender: Gender,
    pub address: Address,
    pub telephone: Option<String>,
    /// ODS code of the registered practice.
    pub registered_practice: OdsCode,
    /// NHS number verification status, `01` = present and verified.
    pub verification_status: String,
    /// Restricted record: address and telecom never shown.
    pub sensitive: bool,
    pub deceased: Option<Date>,
}

impl Patient {
    /// "Mrs Minnie DAWES", the display form used in references.
    pub fn display_name(&self) -> String {
        format!("{} {} {}", self.title, self.given, self.family)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelationshipType {
    Registered,
    ExtendedAccess,
    Referral,
}

impl RelationshipType {
    pub fn as_str(self) -> &'static str {
        match self {
            RelationshipType::Registered => "registered",
            RelationshipType::ExtendedAccess => "extended access",
            RelationshipType::Referral => "referral",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "registered" => Some(Self::Registered),
            "extended access" => Some(Self::ExtendedAccess),
            "referral" => Some(Self::Referral),
            _ => None,
        }
    }
}

/// A patient record held on one organisation's system, with its direct-care relationship.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientRecord {
    pub holder: OdsCode,
    pub patient_id: String,
    pub relationship: RelationshipType,
    /// The relationship ended on this date (e.g. the patient left the practice).
    pub ended: Option<Date>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Practitioner {
    /// The local id of this record on its holder's system (`Practitioner/{id}`).
    pub id: String,
    pub sds_user_id: String,
    pub title: String,
    pub given: String,
    pub family: String,
    pub organisation: OdsCode,
    pub role_code: String,
    pub role_display: String,
}

impl Practitioner {
    /// A CIS2 user has no title: no leading space for them.
    pub fn display_name(&self) -> String {
        format!("{} {} {}", self.title, self.given, self.family)
            .trim_start()
            .to_owned()
    }
}

/// Permission, agreed between two organisations, for `sender` to send
/// `interaction` to `receiver`. The SSP enforces it centrally; read-only
/// look-ups need none.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SharingAgreement {
    pub sender: OdsCode,
    pub receiver: OdsCode,
    /// The interaction id, e.g. `urn:nhs:names:services:gpconnect:fhir:rest:create:order`.
    pub interaction: String,
}

/// Everything the provider needs to answer look-ups and check references.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReferenceData {
    pub organisations: Vec<Organisation>,
    pub patients: Vec<Patient>,
    pub records: Vec<PatientRecord>,
    pub practitioners: Vec<Practitioner>,
    pub agreements: Vec<SharingAgreement>,
}

impl ReferenceData {
    /// No organisation, patient, record, practitioner or agreement at all.
    pub fn is_empty(&self) -> bool {
        self.organisations.is_empty()
            && self.patients.is_empty()
            && self.records.is_empty()
            && self.practitioners.is_empty()
            && self.agreements.is_empty()
    }
}
