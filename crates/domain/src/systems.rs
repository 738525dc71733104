//! Identifier systems and value sets. Input accepts both the DSTU2 task-era
//! `http://fhir.nhs.net/Id/...` and the later `https://fhir.nhs.uk/Id/...`
//! forms; output always writes the DSTU2 form.

pub const NHS_NUMBER: &str = "http://fhir.nhs.net/Id/nhs-number";
pub const ODS_ORGANIZATION_CODE: &str = "http://fhir.nhs.net/Id/ods-organization-code";
pub const ODS_SITE_CODE: &str = "http://fhir.nhs.net/Id/ods-site-code";
pub const SDS_USER_ID: &str = "http://fhir.nhs.net/Id/sds-user-id";
pub const SDS_ROLE_PROFILE_ID: &str = "http://fhir.nhs.net/Id/sds-role-profile-id";
pub const SDS_JOB_ROLE: &str = "http://fhir.nhs.net/ValueSet/sds-job-role-name-1";
pub const URN: &str = "urn:ietf:rfc:3986";
pub const TASK_TYPE: &str = "http://fhir.nhs.net/ValueSet/gpconnect-task-type-1";
pub const TASK_NARRATIVE: &str = "http://fhir.nhs.net/ValueSet/gpconnect-task-narrative-1";
pub const NHS_NUMBER_VERIFICATION_EXTENSION: &str =
    "http://fhir.nhs.net/StructureDefinition/extension-nhs-number-verification-status-1";
pub const NHS_NUMBER_VERIFICATION_VALUESET: &str =
    "http://fhir.nhs.net/ValueSet/nhs-number-verification-status-1";

pub const PROFILE_ORDER: &str = "http://fhir.nhs.net/StructureDefinition/gpconnect-task-order-1";
pub const PROFILE_ORDER_RESPONSE: &str =
    "http://fhir.nhs.net/StructureDefinition/gpconnect-task-orderresponse-1";
/// The task's version an OrderResponse carries (task-lifecycle.md §2).
pub const TASK_VERSION_EXTENSION: &str =
    "http://fhir.nhs.net/StructureDefinition/extension-gpconnect-task-version-1";
/// The owner after an assignment to someone other than `who`.
pub const TASK_OWNER_EXTENSION: &str =
    "http://fhir.nhs.net/StructureDefinition/extension-gpconnect-task-owner-1";
/// The SDS user id system of the lifecycle's contained Practitioner, as
/// task-lifecycle.md §2 writes it.
pub const SDS_USER_ID_SHORT: &str = "http://fhir.nhs.net/sds-user-id";
pub const PROFILE_TASK_BASIC: &str =
    "http://fhir.nhs.net/StructureDefinition/gpconnect-task-description-basic-1";
pub const PROFILE_PATIENT: &str = "http://fhir.nhs.net/StructureDefinition/gpconnect-patient-1";
pub const PROFILE_ORGANIZATION: &str =
    "http://fhir.nhs.net/StructureDefinition/gpconnect-organization-1";
pub const PROFILE_PRACTITIONER: &str =
    "http://fhir.nhs.net/StructureDefinition/gpconnect-practitioner-1";

/// The kinds of identifier this system understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdSystem {
    NhsNumber,
    OdsOrganizationCode,
    OdsSiteCode,
    SdsUserId,
}

impl IdSystem {
    /// Recognises either spelling of a system URI. `http://fhir.nhs.net/sds-user-id`
    /// (without `/Id/`) is the spelling the JWT guidance uses, so it is accepted too.
    pub fn parse(system: &str) -> Option<Self> {
        if system == "http://fhir.nhs.net/sds-user-id" {
            return Some(Self::SdsUserId);
        }
        let tail = system
            .strip_prefix("http://fhir.nhs.net/Id/")
            .or_else(|| system.strip_prefix("https://fhir.nhs.uk/Id/"))?;
        match tail {
            "nhs-number" => Some(Self::NhsNumber),
            "ods-organization-code" => Some(Self::OdsOrganizationCode),
            "ods-site-code" => Some(Self::OdsSiteCode),
            "sds-user-id" => Some(Self::SdsUserId),
            _ => None,
        }
    }

    /// The DSTU2 spelling written on output.
    pub fn uri(self) -> &'static str {
        match self {
            Self::NhsNumber => NHS_NUMBER,
            Self::OdsOrganizationCode => ODS_ORGANIZATION_CODE,
            Self::OdsSiteCode => ODS_SITE_CODE,
            Self::SdsUserId => SDS_USER_ID,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_spellings() {
        assert_eq!(IdSystem::parse(NHS_NUMBER), Some(IdSystem::NhsNumber));
        assert_eq!(
            IdSystem::parse("https://fhir.nhs.uk/Id/nhs-number"),
            Some(IdSystem::NhsNumber)
        );
        assert_eq!(
            IdSystem::parse("http://fhir.nhs.net/sds-user-id"),
            Some(IdSystem::SdsUserId)
        );
        assert_eq!(IdSystem::parse("http://fhir.nhs.net/nhs-number"), None);
        assert_eq!(IdSystem::parse("http://fhir.nhs.net/Id/nhs-numbers"), None);
        assert_eq!(
            IdSystem::parse("https://fhir.nhs.uk/Id/ods-site-code"),
            Some(IdSystem::OdsSiteCode)
        );
    }
}
