//! The directory answered from the reference data the server already holds,
//! so that the demo region needs no national service to send a task.

use crate::{Directory, DirectoryError, DirectoryOrganisation, SdsEndpoint, TracedPatient};
use gpc_domain::reference::{Organisation, Patient, ReferenceData};
use gpc_domain::region::ReferenceLookup;
use gpc_domain::{Asid, Interaction, NhsNumber, OdsCode};
use std::sync::Arc;

/// PDS, SDS and ODS over the reference data as it stands (a
/// [`ReferenceLookup`]). Every organisation with a Spine system is
/// registered in SDS at its provider root `{provider_base}/{ODS}/DSTU2/1`
/// for the interactions that root serves
/// ([`gpc_domain::reference::Organisation::serves`]): all of them where it
/// receives tasks, else metadata and task updates (task-lifecycle.md §2).
#[derive(Clone)]
pub struct EmbeddedDirectory {
    reference: Arc<dyn ReferenceLookup>,
    patients: Arc<dyn PatientSource>,
    provider_base: String,
}

/// Where PDS finds a patient: the server's store (which holds them
/// indexed; the region in memory holds none), or data in hand.
#[async_trait::async_trait]
pub trait PatientSource: Send + Sync + 'static {
    /// The patient with this NHS number; the error is a message without
    /// patient data, worth retrying.
    async fn patient(&self, nhs: &NhsNumber) -> Result<Option<Patient>, String>;
}

/// Patients in hand (tests, the demo region): a scan.
#[async_trait::async_trait]
impl PatientSource for ReferenceData {
    async fn patient(&self, nhs: &NhsNumber) -> Result<Option<Patient>, String> {
        Ok(self.patients.iter().find(|p| p.nhs_number == *nhs).cloned())
    }
}

impl std::fmt::Debug for EmbeddedDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedDirectory")
            .field("provider_base", &self.provider_base)
            .finish_non_exhaustive()
    }
}

impl EmbeddedDirectory {
    /// `provider_base` is the server the tenants' provider roots live under,
    /// e.g. `http://127.0.0.1:8080`; a trailing slash is ignored.
    pub fn new(
        reference: Arc<dyn ReferenceLookup>,
        patients: Arc<dyn PatientSource>,
        provider_base: impl Into<String>,
    ) -> Self {
        let mut provider_base = provider_base.into();
        while provider_base.ends_with('/') {
            provider_base.pop();
        }
        Self {
            reference,
            patients,
            provider_base,
        }
    }

    /// PDS: the patient as traced, `None` when nobody has this number.
    pub async fn traced_patient(
        &self,
        nhs: &NhsNumber,
    ) -> Result<Option<TracedPatient>, DirectoryError> {
        let found = self
            .patients
            .patient(nhs)
            .await
            .map_err(DirectoryError::Unavailable)?;
        Ok(found.as_ref().map(traced))
    }

    // The methods below give the [`Directory`] answers synchronously, for the
    // server's directory APIs, which answer from the region in hand.

    pub fn sds_endpoint(&self, ods: &OdsCode, interaction: &str) -> Option<SdsEndpoint> {
        let interaction = Interaction::from_id(interaction)?;
        let region = self.reference.current();
        let org = region
            .root(ods.as_str())
            .filter(|o| o.serves(interaction))?;
        Some(SdsEndpoint {
            ods: org.ods.clone(),
            address: format!("{}/{}/DSTU2/1", self.provider_base, org.ods),
            asid: org.asid.clone()?,
        })
    }

    /// Every system of the region is accredited for the GP Connect
    /// interactions this project serves, as a sender at least; other
    /// interaction ids are unknown to it.
    pub fn sds_asid(&self, ods: &OdsCode, interaction: &str) -> Option<Asid> {
        Interaction::from_id(interaction)?;
        self.reference
            .current()
            .organisation_by_ods(ods.as_str())?
            .asid
            .clone()
    }

    pub fn ods_organisation(&self, ods: &OdsCode) -> Option<DirectoryOrganisation> {
        self.reference
            .current()
            .organisation_by_ods(ods.as_str())
            .map(listed)
    }

    /// Organisations whose name or code contains `text`, ignoring case, in
    /// the region's order. Blank text matches nothing rather than everything.
    pub fn ods_search(&self, text: &str) -> Vec<DirectoryOrganisation> {
        let needle = text.trim().to_lowercase();
        if needle.is_empty() {
            return Vec::new();
        }
        self.reference
            .current()
            .organisations()
            .iter()
            .filter(|o| {
                o.name.to_lowercase().contains(&needle)
                    || o.ods.as_str().to_lowercase().contains(&needle)
            })
            .map(listed)
            .collect()
    }
}

/// What PDS shows: a restricted record never reveals where the patient
/// lives, how to reach them or where they are registered.
fn traced(p: &Patient) -> TracedPatient {
    let open = !p.sensitive;
    TracedPatient {
        nhs_number: p.nhs_number,
        title: p.title.clone(),
        given: p.given.clone(),
        family: p.family.clone(),
        birth_date: p.birth_date,
        gender: p.gender,
        address: open.then(|| p.address.clone()),
        telephone: p.telephone.clone().filter(|_| open),
        registered_practice: open.then(|| p.registered_practice.clone()),
        restricted: p.sensitive,
        deceased: p.deceased,
    }
}

fn listed(o: &Organisation) -> DirectoryOrganisation {
    DirectoryOrganisation {
        ods: o.ods.clone(),
        name: o.name.clone(),
        care_setting: o.care_setting.clone(),
        telephone: o.telephone.clone(),
        address: o.address.clone(),
    }
}

#[async_trait::async_trait]
impl Directory for EmbeddedDirectory {
    async fn trace_patient(&self, nhs: &NhsNumber) -> Result<TracedPatient, DirectoryError> {
        self.traced_patient(nhs)
            .await?
            .ok_or_else(|| DirectoryError::NotFound("no patient has this NHS number".into()))
    }

    async fn endpoint(
        &self,
        ods: &OdsCode,
        interaction: &str,
    ) -> Result<Option<SdsEndpoint>, DirectoryError> {
        Ok(self.sds_endpoint(ods, interaction))
    }

    async fn asid(&self, ods: &OdsCode, interaction: &str) -> Result<Option<Asid>, DirectoryError> {
        Ok(self.sds_asid(ods, interaction))
    }

    async fn organisation(
        &self,
        ods: &OdsCode,
    ) -> Result<Option<DirectoryOrganisation>, DirectoryError> {
        Ok(self.ods_organisation(ods))
    }

    async fn search_organisations(
        &self,
        text: &str,
    ) -> Result<Vec<DirectoryOrganisation>, DirectoryError> {
        Ok(self.ods_search(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo_region;

    const CREATE: &str = "urn:nhs:names:services:gpconnect:fhir:rest:create:order";

    fn directory() -> EmbeddedDirectory {
        EmbeddedDirectory::new(
            gpc_domain::region::RegionIndex::shared(demo_region()),
            Arc::new(demo_region()),
            "http://dir.test:8080/",
        )
    }

    fn nhs(s: &str) -> NhsNumber {
        NhsNumber::parse(s).unwrap()
    }

    fn ods(s: &str) -> OdsCode {
        OdsCode::parse(s).unwrap()
    }

    #[tokio::test]
    async fn traces_an_ordinary_patient_with_everything() {
        let p = directory().trace_patient(&nhs("9476719931")).await.unwrap();
        assert_eq!(p.display_name(), "Mrs Minnie DAWES");
        assert_eq!(p.birth_date.to_string(), "1952-05-31");
        assert_eq!(p.registered_practice, Some(ods("GPC001")));
        let address = p.address.unwrap();
        assert_eq!(address.lines, ["24 Grammar School Road"]);
        assert_eq!(
            (address.city.as_str(), address.postcode.as_str()),
            ("Brigg", "DN20 8AF")
        );
        assert!(p.telephone.is_some());
        assert!(!p.restricted);
        assert_eq!(p.deceased, None);
    }

    #[tokio::test]
    async fn a_restricted_patient_has_no_address_telephone_or_practice() {
        let p = directory().trace_patient(&nhs("9476718897")).await.unwrap();
        assert_eq!(p.family, "CASSIN");
        assert!(p.restricted);
        assert_eq!(p.address, None);
        assert_eq!(p.telephone, None);
        assert_eq!(p.registered_practice, None);
    }

    #[tokio::test]
    async fn a_deceased_patient_is_traced_with_the_date() {
        let p = directory().trace_patient(&nhs("9000000173")).await.unwrap();
        assert_eq!(p.family, "JOHNSON");
        assert_eq!(p.deceased.unwrap().to_string(), "2016-07-13");
    }

    #[tokio::test]
    async fn smith_is_registered_where_no_electronic_route_exists() {
        let dir = directory();
        let p = dir.trace_patient(&nhs("9000000009")).await.unwrap();
        assert_eq!(p.registered_practice, Some(ods("Y12345")));
        assert_eq!(dir.endpoint(&ods("Y12345"), CREATE).await.unwrap(), None);
        assert_eq!(dir.asid(&ods("Y12345"), CREATE).await.unwrap(), None);
    }

    #[tokio::test]
    async fn an_unknown_number_is_not_found_and_the_error_does_not_repeat_it() {
        let err = directory()
            .trace_patient(&nhs("9999999999"))
            .await
            .unwrap_err();
        assert!(matches!(err, DirectoryError::NotFound(_)));
        assert!(!err.to_string().contains("9999999999"));
    }

    #[tokio::test]
    async fn every_tenant_receives_every_served_interaction_at_its_root() {
        let dir = directory();
        for (code, asid) in [("GPC001", "200000000359"), ("XOA001", "200000000380")] {
            for interaction in Interaction::ALL {
                let e = dir
                    .endpoint(&ods(code), interaction.id())
                    .await
                    .unwrap()
                    .unwrap();
                assert_eq!(e.address, format!("http://dir.test:8080/{code}/DSTU2/1"));
                assert_eq!(e.asid.as_str(), asid);
                assert_eq!(e.ods, ods(code));
            }
        }
        let region = dir.reference.current();
        let tenants = region.tenants().count();
        let with_endpoint = region
            .organisations()
            .iter()
            .filter(|o| dir.sds_endpoint(&o.ods, CREATE).is_some())
            .count();
        assert_eq!((tenants, with_endpoint), (8, 8));
    }

    #[tokio::test]
    async fn a_sender_only_system_has_an_asid_but_no_endpoint_for_tasks() {
        let dir = directory();
        assert_eq!(dir.endpoint(&ods("X11101"), CREATE).await.unwrap(), None);
        let asid = dir.asid(&ods("X11101"), CREATE).await.unwrap();
        assert_eq!(asid.unwrap().as_str(), "200000000371");
        for look_up in [Interaction::SearchPatient, Interaction::ReadOrganization] {
            assert_eq!(
                dir.endpoint(&ods("X11101"), look_up.id()).await.unwrap(),
                None
            );
        }
    }

    #[tokio::test]
    async fn every_system_receives_task_updates_and_metadata_at_its_root() {
        let dir = directory();
        let region = dir.reference.current();
        let mut listed = Vec::new();
        for o in region.organisations() {
            for interaction in [Interaction::CreateOrderResponse, Interaction::ReadMetadata] {
                let found = dir.sds_endpoint(&o.ods, interaction.id());
                let Some(asid) = &o.asid else {
                    assert_eq!(found, None, "{} has no Spine system", o.ods);
                    continue;
                };
                let e = found.unwrap();
                assert_eq!(e.address, format!("http://dir.test:8080/{}/DSTU2/1", o.ods));
                assert_eq!(&e.asid, asid);
            }
            if o.asid.is_some() && !o.receives_tasks {
                listed.push(o.ods.to_string());
            }
        }
        // 111, A&E, acute and social care receive no tasks but hear back.
        assert_eq!(listed, ["X11101", "XAE001", "XAC001", "XSC001"]);
    }

    #[tokio::test]
    async fn unknown_organisations_and_interactions_have_no_route() {
        let dir = directory();
        assert_eq!(dir.endpoint(&ods("ZZZ999"), CREATE).await.unwrap(), None);
        assert_eq!(dir.asid(&ods("ZZZ999"), CREATE).await.unwrap(), None);
        let care_record = "urn:nhs:names:services:gpconnect:fhir:operation:gpc.getcarerecord";
        assert_eq!(
            dir.endpoint(&ods("GPC001"), care_record).await.unwrap(),
            None
        );
        assert_eq!(dir.asid(&ods("GPC001"), care_record).await.unwrap(), None);
        let wrong_case = CREATE.to_uppercase();
        assert_eq!(
            dir.endpoint(&ods("GPC001"), &wrong_case).await.unwrap(),
            None
        );
    }

    #[tokio::test]
    async fn organisation_by_code_carries_the_alternative_channel() {
        let dir = directory();
        let o = dir.organisation(&ods("Y12345")).await.unwrap().unwrap();
        assert_eq!(o.name, "Somerset Bridge Medical Centre");
        assert_eq!(o.care_setting, "GP practice");
        assert_eq!(o.telephone, "01632 960030");
        assert!(o.address.is_some());
        assert_eq!(dir.organisation(&ods("ZZZ999")).await.unwrap(), None);
    }

    #[tokio::test]
    async fn search_matches_name_or_code_fragments_ignoring_case() {
        let dir = directory();
        let names = |found: Vec<DirectoryOrganisation>| -> Vec<String> {
            found.into_iter().map(|o| o.ods.to_string()).collect()
        };
        assert_eq!(
            names(dir.search_organisations("surgery").await.unwrap()),
            ["R1A17"]
        );
        assert_eq!(
            names(dir.search_organisations("HOCKEY").await.unwrap()),
            ["R1A17"]
        );
        assert_eq!(
            names(dir.search_organisations("r1a1").await.unwrap()),
            ["R1A14", "R1A17"]
        );
        assert_eq!(
            names(
                dir.search_organisations(" scunthorpe general ")
                    .await
                    .unwrap()
            ),
            ["XAE001", "XAC001"]
        );
        assert!(
            dir.search_organisations("nowhere")
                .await
                .unwrap()
                .is_empty()
        );
        assert!(dir.search_organisations("  ").await.unwrap().is_empty());
    }
}
