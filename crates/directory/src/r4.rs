//! The spellings the national FHIR R4 directory APIs use, shared by the
//! client here and the server that imitates those APIs, so the two cannot
//! drift apart.

/// Where each API lives under a server that hosts all three (`gpc-tasks serve`).
pub const PDS_MOUNT: &str = "/personal-demographics/FHIR/R4";
pub const SDS_MOUNT: &str = "/spine-directory/FHIR/R4";
pub const ODS_MOUNT: &str = "/organisation-directory/FHIR/R4";

pub const FHIR_JSON: &str = "application/fhir+json";

pub const NHS_NUMBER: &str = "https://fhir.nhs.uk/Id/nhs-number";
pub const ODS_ORGANIZATION_CODE: &str = "https://fhir.nhs.uk/Id/ods-organization-code";
pub const SERVICE_INTERACTION_ID: &str = "https://fhir.nhs.uk/Id/nhsServiceInteractionId";
pub const SPINE_ASID: &str = "https://fhir.nhs.uk/Id/nhsSpineASID";
pub const MHS_PARTY_KEY: &str = "https://fhir.nhs.uk/Id/nhsMhsPartyKey";

/// `meta.security` of a PDS Patient: `R` marks a restricted (sensitive) record.
pub const CONFIDENTIALITY: &str = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality";
pub const RESTRICTED: &str = "R";
pub const UNRESTRICTED: &str = "U";

pub const ERROR_CODES: &str = "https://fhir.nhs.uk/R4/CodeSystem/Spine-ErrorOrWarningCode";

pub const REQUEST_ID: &str = "x-request-id";
pub const CORRELATION_ID: &str = "x-correlation-id";
