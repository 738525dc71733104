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
    /// Its ODS status; a closed organisation is kept, and tasks to it are
    /// refused with that reason (reference-data.md §1).
    pub status: OrganisationStatus,
    /// What its Spine system may send and receive, where its registration
    /// says so; `None` is the default rule of [`Organisation::serves`].
    pub interactions: Option<SystemInteractions>,
}

/// The ODS status code of an organisation (`epraccur` column 13).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OrganisationStatus {
    #[default]
    Active,
    Closed,
    Dormant,
    Proposed,
}

impl OrganisationStatus {
    /// The ODS code: `A`, `C`, `D` or `P`.
    pub fn code(self) -> &'static str {
        match self {
            Self::Active => "A",
            Self::Closed => "C",
            Self::Dormant => "D",
            Self::Proposed => "P",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        [Self::Active, Self::Closed, Self::Dormant, Self::Proposed]
            .into_iter()
            .find(|s| s.code() == code)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Closed => "closed",
            Self::Dormant => "dormant",
            Self::Proposed => "proposed",
        }
    }
}

/// The interactions one Spine system is registered to send and receive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemInteractions {
    pub sends: Vec<crate::Interaction>,
    pub receives: Vec<crate::Interaction>,
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
        if !self.has_root() {
            return false;
        }
        match &self.interactions {
            Some(listed) => listed.receives.contains(&interaction),
            None => self.receives_tasks || interaction.served_without_tasks(),
        }
    }

    /// What its system may send: as registered, or every interaction.
    pub fn sends(&self) -> Vec<crate::Interaction> {
        match &self.interactions {
            Some(listed) => listed.sends.clone(),
            None => crate::Interaction::ALL.to_vec(),
        }
    }

    pub fn is_closed(&self) -> bool {
        self.status == OrganisationStatus::Closed
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

/// One side of a sharing agreement: an organisation, or every organisation
/// with a Spine system (`*` in a Spine file), kept as one row rather than
/// one per pair.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Party {
    Every,
    Org(OdsCode),
}

impl Party {
    /// `*`, or an ODS code.
    pub fn as_str(&self) -> &str {
        match self {
            Party::Every => "*",
            Party::Org(ods) => ods.as_str(),
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "*" => Some(Party::Every),
            code => OdsCode::parse(code).map(Party::Org),
        }
    }

    pub fn includes(&self, ods: &OdsCode) -> bool {
        match self {
            Party::Every => true,
            Party::Org(own) => own == ods,
        }
    }
}

impl PartialEq<&str> for Party {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// Permission, agreed between two organisations, for `sender` to send
/// `interaction` to `receiver`. The SSP enforces it centrally; read-only
/// look-ups need none.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SharingAgreement {
    pub sender: Party,
    pub receiver: Party,
    /// The interaction id, e.g. `urn:nhs:names:services:gpconnect:fhir:rest:create:order`.
    pub interaction: String,
}

/// How a patient's record on one system is asked for: by the provider's
/// id (`Patient/{id}`) or by NHS number.
#[derive(Debug, Clone, Copy)]
pub enum PatientKey<'a> {
    Id(&'a str),
    Nhs(&'a NhsNumber),
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

    /// The record `holder` keeps of a patient, with the patient: a scan,
    /// for data held in memory (tests, the demo region); a server asks its
    /// store, which has them indexed.
    pub fn record_of(
        &self,
        holder: &OdsCode,
        key: PatientKey<'_>,
    ) -> Option<(Patient, PatientRecord)> {
        let patient = self.patients.iter().find(|p| match key {
            PatientKey::Id(id) => p.id == id,
            PatientKey::Nhs(nhs) => p.nhs_number == *nhs,
        })?;
        let record = self
            .records
            .iter()
            .find(|r| &r.holder == holder && r.patient_id == patient.id)?;
        Some((patient.clone(), record.clone()))
    }
}
