//! The national look-ups (PDS, SDS, ODS) and the demo region they are loaded from.
//!
//! [`Directory`] is what a consumer asks: who is this patient's registered
//! practice (PDS), where and under which ASID does an organisation receive an
//! interaction (SDS), and how else to reach it (ODS: name, telephone). The
//! embedded implementation answers from the demo region; the HTTP one talks
//! to services shaped like the national FHIR R4 APIs, ours or the real ones.

mod cache;
mod demo_region;
mod embedded;
mod http_client;
pub mod import;
pub mod r4;

pub use cache::{CachingDirectory, SDS_CACHE_TTL};
pub use demo_region::demo_region;
pub use embedded::{EmbeddedDirectory, PatientSource};
pub use http_client::{DirectoryUrls, HttpDirectory};

use gpc_domain::reference::{Address, Gender};
use gpc_domain::{Asid, NhsNumber, OdsCode};
use jiff::civil::Date;

/// A patient as PDS returns them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TracedPatient {
    pub nhs_number: NhsNumber,
    pub title: String,
    pub given: String,
    pub family: String,
    pub birth_date: Date,
    pub gender: Gender,
    /// `None` for a restricted (sensitive) patient.
    pub address: Option<Address>,
    pub telephone: Option<String>,
    /// The registered practice; `None` for a restricted patient.
    pub registered_practice: Option<OdsCode>,
    pub restricted: bool,
    pub deceased: Option<Date>,
}

impl TracedPatient {
    pub fn display_name(&self) -> String {
        format!("{} {} {}", self.title, self.given, self.family)
    }
}

/// Where an organisation receives an interaction (SDS Endpoint + Device).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdsEndpoint {
    pub ods: OdsCode,
    /// The provider root URL, e.g. `http://127.0.0.1:8080/GPC001/DSTU2/1`.
    pub address: String,
    pub asid: Asid,
}

/// An organisation as the organisation directory (ODS) describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryOrganisation {
    pub ods: OdsCode,
    pub name: String,
    pub care_setting: String,
    pub telephone: String,
    pub address: Option<Address>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryError {
    #[error("not found: {0}")]
    NotFound(String),
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The service could not be reached or answered 5xx: worth retrying.
    #[error("directory unavailable: {0}")]
    Unavailable(String),
    /// The service answered something this client does not understand.
    #[error("unexpected directory answer: {0}")]
    Protocol(String),
}

#[async_trait::async_trait]
pub trait Directory: Send + Sync + 'static {
    /// PDS: the patient with this NHS number (`NotFound` when there is none).
    async fn trace_patient(&self, nhs: &NhsNumber) -> Result<TracedPatient, DirectoryError>;

    /// SDS: the endpoint and ASID at which `ods` receives `interaction`;
    /// `None` means no electronic route for it.
    async fn endpoint(
        &self,
        ods: &OdsCode,
        interaction: &str,
    ) -> Result<Option<SdsEndpoint>, DirectoryError>;

    /// SDS: the ASID of the system `ods` uses for `interaction` (as a sender or
    /// receiver); `None` when it has no Spine system.
    async fn asid(&self, ods: &OdsCode, interaction: &str) -> Result<Option<Asid>, DirectoryError>;

    /// ODS: one organisation by code.
    async fn organisation(
        &self,
        ods: &OdsCode,
    ) -> Result<Option<DirectoryOrganisation>, DirectoryError>;

    /// ODS: organisations whose name or code contains `text` (case-insensitive).
    async fn search_organisations(
        &self,
        text: &str,
    ) -> Result<Vec<DirectoryOrganisation>, DirectoryError>;
}
