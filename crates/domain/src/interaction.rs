//! GP Connect DSTU2 interaction ids (spec §3.2), compared exactly.

/// The operations this provider serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Interaction {
    ReadMetadata,
    ReadPatient,
    SearchPatient,
    ReadPractitioner,
    SearchPractitioner,
    ReadOrganization,
    SearchOrganization,
    CreateTask,
    /// A task update, both ways (task-lifecycle.md §2).
    CreateOrderResponse,
}

impl Interaction {
    pub const ALL: [Interaction; 9] = [
        Self::ReadMetadata,
        Self::ReadPatient,
        Self::SearchPatient,
        Self::ReadPractitioner,
        Self::SearchPractitioner,
        Self::ReadOrganization,
        Self::SearchOrganization,
        Self::CreateTask,
        Self::CreateOrderResponse,
    ];

    pub fn id(self) -> &'static str {
        match self {
            Self::ReadMetadata => "urn:nhs:names:services:gpconnect:fhir:rest:read:metadata",
            Self::ReadPatient => "urn:nhs:names:services:gpconnect:fhir:rest:read:patient",
            Self::SearchPatient => "urn:nhs:names:services:gpconnect:fhir:rest:search:patient",
            Self::ReadPractitioner => {
                "urn:nhs:names:services:gpconnect:fhir:rest:read:practitioner"
            }
            Self::SearchPractitioner => {
                "urn:nhs:names:services:gpconnect:fhir:rest:search:practitioner"
            }
            Self::ReadOrganization => {
                "urn:nhs:names:services:gpconnect:fhir:rest:read:organization"
            }
            Self::SearchOrganization => {
                "urn:nhs:names:services:gpconnect:fhir:rest:search:organization"
            }
            Self::CreateTask => "urn:nhs:names:services:gpconnect:fhir:rest:create:order",
            Self::CreateOrderResponse => {
                "urn:nhs:names:services:gpconnect:fhir:rest:create:orderresponse"
            }
        }
    }

    pub fn from_id(id: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|i| i.id() == id)
    }

    /// Only the task and its updates need a sharing agreement; look-ups are read-only.
    pub fn is_write(self) -> bool {
        matches!(self, Self::CreateTask | Self::CreateOrderResponse)
    }

    /// Served at every provider root, also where the organisation receives
    /// no tasks (task-lifecycle.md §2): an organisation that only sends
    /// still has to hear what became of its tasks, and says what it is.
    pub fn served_without_tasks(self) -> bool {
        matches!(self, Self::ReadMetadata | Self::CreateOrderResponse)
    }
}

/// Other GP Connect DSTU2 interaction ids: known, but never valid on this provider's paths.
pub const OTHER_KNOWN_IDS: &[&str] = &[
    "urn:nhs:names:services:gpconnect:fhir:operation:gpc.getcarerecord",
    "urn:nhs:names:services:gpconnect:fhir:operation:gpc.registerpatient",
    "urn:nhs:names:services:gpconnect:fhir:rest:read:location",
    "urn:nhs:names:services:gpconnect:fhir:rest:search:location",
    "urn:nhs:names:services:gpconnect:fhir:rest:read:appointment",
    "urn:nhs:names:services:gpconnect:fhir:rest:create:appointment",
    "urn:nhs:names:services:gpconnect:fhir:rest:update:appointment",
    "urn:nhs:names:services:gpconnect:fhir:rest:cancel:appointment",
    "urn:nhs:names:services:gpconnect:fhir:rest:search:patient_appointments",
    "urn:nhs:names:services:gpconnect:fhir:rest:search:slot",
    "urn:nhs:names:services:gpconnect:fhir:rest:read:slot",
    "urn:nhs:names:services:gpconnect:fhir:rest:read:schedule",
];

/// True for any GP Connect DSTU2 id, served here or not.
pub fn is_known_id(id: &str) -> bool {
    Interaction::from_id(id).is_some() || OTHER_KNOWN_IDS.contains(&id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_are_case_sensitive() {
        for i in Interaction::ALL {
            assert_eq!(Interaction::from_id(i.id()), Some(i));
            assert_eq!(Interaction::from_id(&i.id().to_uppercase()), None);
        }
        assert!(is_known_id(
            "urn:nhs:names:services:gpconnect:fhir:rest:create:appointment"
        ));
        assert!(!is_known_id(
            "urn:nhs:names:services:gpconnect:fhir:rest:create:orders"
        ));
    }
}
