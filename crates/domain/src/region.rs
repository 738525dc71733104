//! Fast look-ups over the reference data. An index is built whole from the
//! data and never changes; new data (an import while the server runs) gives
//! a new index that replaces the old one for every reader at once.
//!
//! Patients and their records are not held here: a region may have a
//! million of them (reference-data.md §2), so they stay in the store, which
//! answers each look-up by index (`Store::patient_record`).

use crate::ids::{Asid, OdsCode};
use crate::reference::{Organisation, Practitioner, ReferenceData};
use arc_swap::ArcSwap;
use std::collections::HashMap;
use std::sync::Arc;

/// Where readers get reference data. A reader takes the index once per
/// unit of work (a request, a send) and uses that one throughout, so that
/// a replacement in the middle cannot mix two versions of the data.
pub trait ReferenceLookup: Send + Sync + 'static {
    /// The index as it stands now.
    fn current(&self) -> Arc<Region>;
}

/// The index readers share: reads take no lock, and `replace` swaps in a new
/// index while requests that hold the old one finish with it.
pub struct RegionIndex(ArcSwap<Region>);

impl RegionIndex {
    pub fn new(region: Region) -> Self {
        Self(ArcSwap::from_pointee(region))
    }

    /// A lookup over `data`, ready to share.
    pub fn shared(data: ReferenceData) -> Arc<dyn ReferenceLookup> {
        Arc::new(Self::new(Region::new(data)))
    }

    pub fn replace(&self, region: Region) {
        self.0.store(Arc::new(region));
    }
}

impl ReferenceLookup for RegionIndex {
    fn current(&self) -> Arc<Region> {
        self.0.load_full()
    }
}

/// Indexed reference data: what every tenant of the provider can see.
#[derive(Debug, Default)]
pub struct Region {
    data: ReferenceData,
    org_by_id: HashMap<String, usize>,
    org_by_ods: HashMap<String, usize>,
    org_by_site: HashMap<String, usize>,
    org_by_asid: HashMap<Asid, usize>,
    practitioner_by_id: HashMap<String, usize>,
    /// Each SDS user's records, and each organisation's, in the region's
    /// order: the sign-in lists and user look-ups, at national scale.
    practitioners_by_sds: HashMap<String, Vec<usize>>,
    practitioners_by_org: HashMap<OdsCode, Vec<usize>>,
}

impl Region {
    /// The index of `data`'s organisations, practitioners and agreements;
    /// its patients and records, if any, are dropped (see the module doc).
    pub fn new(mut data: ReferenceData) -> Self {
        data.patients = Vec::new();
        data.records = Vec::new();
        let mut region = Region::default();
        for (i, o) in data.organisations.iter().enumerate() {
            region.org_by_id.insert(o.id.clone(), i);
            region.org_by_ods.insert(o.ods.as_str().to_owned(), i);
            for site in &o.site_codes {
                region.org_by_site.insert(site.clone(), i);
            }
            if let Some(asid) = &o.asid {
                region.org_by_asid.insert(asid.clone(), i);
            }
        }
        for (i, p) in data.practitioners.iter().enumerate() {
            region.practitioner_by_id.insert(p.id.clone(), i);
            region
                .practitioners_by_sds
                .entry(p.sds_user_id.clone())
                .or_default()
                .push(i);
            region
                .practitioners_by_org
                .entry(p.organisation.clone())
                .or_default()
                .push(i);
        }
        region.data = data;
        region
    }

    pub fn data(&self) -> &ReferenceData {
        &self.data
    }

    pub fn organisations(&self) -> &[Organisation] {
        &self.data.organisations
    }

    pub fn organisation(&self, id: &str) -> Option<&Organisation> {
        self.org_by_id.get(id).map(|&i| &self.data.organisations[i])
    }

    pub fn organisation_by_ods(&self, ods: &str) -> Option<&Organisation> {
        self.org_by_ods
            .get(ods)
            .map(|&i| &self.data.organisations[i])
    }

    pub fn organisation_by_site(&self, site: &str) -> Option<&Organisation> {
        self.org_by_site
            .get(site)
            .map(|&i| &self.data.organisations[i])
    }

    /// The organisation owning a Spine system.
    pub fn organisation_by_asid(&self, asid: &Asid) -> Option<&Organisation> {
        self.org_by_asid
            .get(asid)
            .map(|&i| &self.data.organisations[i])
    }

    /// Organisations that receive tasks here: the tenants, whose inboxes
    /// the provider fills.
    pub fn tenants(&self) -> impl Iterator<Item = &Organisation> {
        self.data
            .organisations
            .iter()
            .filter(|o| o.receives_tasks && o.has_root())
    }

    pub fn tenant(&self, ods: &str) -> Option<&Organisation> {
        self.organisation_by_ods(ods)
            .filter(|o| o.receives_tasks && o.has_root())
    }

    /// An organisation with a provider root here (every one with a Spine
    /// system, task-lifecycle.md §2), whether or not it receives tasks.
    pub fn root(&self, ods: &str) -> Option<&Organisation> {
        self.organisation_by_ods(ods).filter(|o| o.has_root())
    }

    /// A practitioner record. Practitioners are national (SDS) data, so every
    /// system resolves every record.
    pub fn practitioner(&self, id: &str) -> Option<&Practitioner> {
        self.practitioner_by_id
            .get(id)
            .map(|&i| &self.data.practitioners[i])
    }

    /// Every record of an SDS user (one user may hold several role profiles).
    pub fn practitioners_by_sds<'a>(
        &'a self,
        sds_user_id: &'a str,
    ) -> impl Iterator<Item = &'a Practitioner> {
        self.practitioners_by_sds
            .get(sds_user_id)
            .into_iter()
            .flatten()
            .map(|&i| &self.data.practitioners[i])
    }

    /// The users of an organisation, each once (a user may hold several
    /// role profiles there), in the region's order.
    pub fn practitioners_by_org<'a>(
        &'a self,
        ods: &'a OdsCode,
    ) -> impl Iterator<Item = &'a Practitioner> {
        let mut seen = std::collections::HashSet::new();
        self.practitioners_by_org
            .get(ods)
            .into_iter()
            .flatten()
            .map(|&i| &self.data.practitioners[i])
            .filter(move |p| seen.insert(p.sds_user_id.as_str()))
    }

    /// Every practitioner record of an organisation (a user with several
    /// role profiles there once per profile), in the region's order.
    pub fn practitioner_records_at(&self, ods: &str) -> impl Iterator<Item = &Practitioner> {
        OdsCode::parse(ods)
            .and_then(|ods| self.practitioners_by_org.get(&ods))
            .into_iter()
            .flatten()
            .map(|&i| &self.data.practitioners[i])
    }

    /// The usual GP shown as a patient's care provider: the first practitioner
    /// of the registered practice.
    pub fn usual_gp(&self, practice: &OdsCode) -> Option<&Practitioner> {
        let &first = self.practitioners_by_org.get(practice)?.first()?;
        Some(&self.data.practitioners[first])
    }
}

#[cfg(test)]
mod index_tests {
    use super::*;
    use crate::reference::Organisation;

    fn organisation(id: &str, ods: &str) -> Organisation {
        Organisation {
            id: id.to_owned(),
            ods: OdsCode::parse(ods).unwrap(),
            name: format!("Organisation {ods}"),
            care_setting: "GP practice".to_owned(),
            asid: None,
            receives_tasks: false,
            telephone: String::new(),
            site_codes: Vec::new(),
            address: None,
            status: Default::default(),
            interactions: None,
        }
    }

    #[test]
    fn a_replaced_index_is_what_readers_see_next_and_a_held_one_stays_whole() {
        let index = RegionIndex::new(Region::new(ReferenceData {
            organisations: vec![organisation("1", "AAA001")],
            ..ReferenceData::default()
        }));
        let held = index.current();
        index.replace(Region::new(ReferenceData {
            organisations: vec![organisation("1", "BBB002")],
            ..ReferenceData::default()
        }));
        let now = index.current();
        assert!(now.organisation_by_ods("BBB002").is_some());
        assert!(now.organisation_by_ods("AAA001").is_none());
        // A reader that took the index before the swap keeps the old data.
        assert!(held.organisation_by_ods("AAA001").is_some());
        assert!(held.organisation_by_ods("BBB002").is_none());
    }

    #[test]
    fn every_organisation_with_a_system_has_a_root_and_only_receivers_are_tenants() {
        let mut sender = organisation("1", "AAA001");
        sender.asid = Asid::parse("1");
        let mut receiver = organisation("2", "BBB002");
        receiver.asid = Asid::parse("2");
        receiver.receives_tasks = true;
        let mut no_system = organisation("3", "CCC003");
        no_system.receives_tasks = true;
        let region = Region::new(ReferenceData {
            organisations: vec![sender, receiver, no_system],
            ..ReferenceData::default()
        });
        let found = |o: Option<&Organisation>| o.map(|o| o.ods.as_str().to_owned());
        assert_eq!(found(region.root("AAA001")), Some("AAA001".into()));
        assert_eq!(found(region.root("BBB002")), Some("BBB002".into()));
        assert_eq!(found(region.root("CCC003")), None);
        assert_eq!(found(region.tenant("AAA001")), None);
        assert_eq!(found(region.tenant("BBB002")), Some("BBB002".into()));
        let asid = Asid::parse("1").unwrap();
        assert_eq!(
            found(region.organisation_by_asid(&asid)),
            Some("AAA001".into())
        );
        assert_eq!(
            found(region.organisation_by_asid(&Asid::parse("9").unwrap())),
            None
        );
        use crate::Interaction::*;
        let sender = region.root("AAA001").unwrap();
        assert!(sender.serves(ReadMetadata) && sender.serves(CreateOrderResponse));
        assert!(!sender.serves(CreateTask) && !sender.serves(SearchPatient));
        let receiver = region.root("BBB002").unwrap();
        assert!(
            crate::Interaction::ALL
                .into_iter()
                .all(|i| receiver.serves(i))
        );
        let no_system = region.organisation_by_ods("CCC003").unwrap();
        assert!(
            crate::Interaction::ALL
                .into_iter()
                .all(|i| !no_system.serves(i))
        );
    }
}
