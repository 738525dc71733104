//! The Spine registry the SSP consults: which organisation owns each ASID,
//! where that system receives (its SDS endpoint), which interactions it may
//! send and receive, and which sharing agreements let one organisation send a
//! task to another. Built once from the reference data; no I/O.

use crate::ids::{Asid, OdsCode};
use crate::interaction::Interaction;
use crate::reference::{Party, ReferenceData};
use std::collections::{HashMap, HashSet};
use std::fmt;

/// One accredited system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpineSystem {
    pub asid: Asid,
    pub ods: OdsCode,
    /// The provider root registered in SDS, `{provider base}/{ODS}/DSTU2/1`.
    /// Every registered system has one (task-lifecycle.md §2); `None` stays
    /// possible for a registry built otherwise.
    pub endpoint: Option<String>,
    pub sends: Vec<Interaction>,
    pub receives: Vec<Interaction>,
    /// Its organisation is closed in ODS: no task reaches it.
    pub closed: bool,
}

/// Why the SSP's "flow of traffic" check refused a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FotRefusal {
    /// Not an interaction any system here is registered for (e.g. appointments).
    UnknownInteraction,
    SenderMayNotSend,
    ReceiverMayNotReceive,
    /// The receiving organisation is closed in ODS (kept, so that this
    /// reason can be given).
    ReceiverClosed,
    /// Both may take part, but no agreement lets this sender send it to this receiver.
    NoAgreement,
}

impl fmt::Display for FotRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::UnknownInteraction => "no system is registered for this interaction",
            Self::SenderMayNotSend => "the sending system is not registered to send this interaction",
            Self::ReceiverMayNotReceive => {
                "the receiving system is not registered to receive this interaction"
            }
            Self::ReceiverClosed => "the receiving organisation is closed (ODS status C)",
            Self::NoAgreement => {
                "no sharing agreement lets the sending organisation send this interaction to the receiving organisation"
            }
        })
    }
}

#[derive(Debug, Default)]
pub struct SpineRegistry {
    systems: HashMap<Asid, SpineSystem>,
    /// (sender, receiver, interaction id); either side may be `*`.
    agreements: HashSet<(Party, Party, String)>,
}

impl SpineRegistry {
    /// Every organisation with an ASID is registered at
    /// `{provider_base}/{ODS}/DSTU2/1` and may send every interaction this
    /// system serves; it receives those its root serves
    /// ([`crate::reference::Organisation::serves`]): all of them where it
    /// receives tasks, else metadata and task updates.
    pub fn new(data: &ReferenceData, provider_base: &str) -> Self {
        let base = provider_base.trim_end_matches('/');
        let systems = data
            .organisations
            .iter()
            .filter_map(|o| {
                let asid = o.asid.clone()?;
                let receives = Interaction::ALL
                    .into_iter()
                    .filter(|i| o.serves(*i))
                    .collect();
                let system = SpineSystem {
                    asid: asid.clone(),
                    ods: o.ods.clone(),
                    endpoint: Some(format!("{base}/{}/DSTU2/1", o.ods)),
                    sends: o.sends(),
                    receives,
                    closed: o.is_closed(),
                };
                Some((asid, system))
            })
            .collect();
        let agreements = data
            .agreements
            .iter()
            .map(|a| (a.sender.clone(), a.receiver.clone(), a.interaction.clone()))
            .collect();
        Self {
            systems,
            agreements,
        }
    }

    pub fn system(&self, asid: &Asid) -> Option<&SpineSystem> {
        self.systems.get(asid)
    }

    pub fn systems(&self) -> impl Iterator<Item = &SpineSystem> {
        self.systems.values()
    }

    /// Whether `from` may send `interaction_id` to `to`: both registered for
    /// it, and, for anything that writes, an agreement between their
    /// organisations. Read-only look-ups are open between all registered systems.
    pub fn check_flow(
        &self,
        from: &SpineSystem,
        to: &SpineSystem,
        interaction_id: &str,
    ) -> Result<Interaction, FotRefusal> {
        let interaction =
            Interaction::from_id(interaction_id).ok_or(FotRefusal::UnknownInteraction)?;
        if !from.sends.contains(&interaction) {
            return Err(FotRefusal::SenderMayNotSend);
        }
        if !to.receives.contains(&interaction) {
            return Err(FotRefusal::ReceiverMayNotReceive);
        }
        // A closed organisation takes no new task, nor the look-ups a sender
        // makes first (so the sender hears why); what became of tasks it
        // already holds may still travel.
        if to.closed && interaction != Interaction::CreateOrderResponse {
            return Err(FotRefusal::ReceiverClosed);
        }
        if interaction.is_write() && !self.agreed(&from.ods, &to.ods, interaction) {
            return Err(FotRefusal::NoAgreement);
        }
        Ok(interaction)
    }

    /// Whether an agreement lets `from` send `interaction` to `to`.
    ///
    /// A task update has no agreements of its own: it is allowed exactly
    /// where the task it is about could travel (task-lifecycle.md §2), so it
    /// is derived from the `create:order` agreements here rather than
    /// stored as rows of its own, which every import of reference data would
    /// have to keep in step with them.
    fn agreed(&self, from: &OdsCode, to: &OdsCode, interaction: Interaction) -> bool {
        // An agreement names each side or `*`: four rows may allow a pair.
        let has = |sender: &OdsCode, receiver: &OdsCode, i: Interaction| {
            let id = i.id().to_owned();
            let sides = |ods: &OdsCode| [Party::Org(ods.clone()), Party::Every];
            sides(sender).into_iter().any(|s| {
                sides(receiver)
                    .into_iter()
                    .any(|r| self.agreements.contains(&(s.clone(), r, id.clone())))
            })
        };
        match interaction {
            // A reply goes back along the route the task came; a
            // cancellation follows the task.
            Interaction::CreateOrderResponse => {
                has(to, from, Interaction::CreateTask) || has(from, to, Interaction::CreateTask)
            }
            other => has(from, to, other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::{Organisation, SharingAgreement};

    fn org(ods: &str, asid: Option<&str>, receives: bool) -> Organisation {
        Organisation {
            id: ods.to_owned(),
            ods: OdsCode::parse(ods).unwrap(),
            name: ods.to_owned(),
            care_setting: "GP practice".to_owned(),
            asid: asid.map(|a| Asid::parse(a).unwrap()),
            receives_tasks: receives,
            telephone: "01632 960000".to_owned(),
            site_codes: Vec::new(),
            address: None,
            status: Default::default(),
            interactions: None,
        }
    }

    fn registry() -> SpineRegistry {
        let data = ReferenceData {
            organisations: vec![
                org("AAA001", Some("1"), true),
                org("BBB001", Some("2"), true),
                org("CCC001", Some("3"), false),
                org("DDD001", None, true),
            ],
            agreements: vec![SharingAgreement {
                sender: Party::parse("CCC001").unwrap(),
                receiver: Party::parse("AAA001").unwrap(),
                interaction: Interaction::CreateTask.id().to_owned(),
            }],
            ..ReferenceData::default()
        };
        SpineRegistry::new(&data, "http://127.0.0.1:8080/")
    }

    fn system<'a>(r: &'a SpineRegistry, asid: &str) -> &'a SpineSystem {
        r.system(&Asid::parse(asid).unwrap()).unwrap()
    }

    #[test]
    fn only_organisations_with_an_asid_are_registered() {
        let r = registry();
        assert_eq!(r.systems().count(), 3);
        assert_eq!(system(&r, "2").ods.as_str(), "BBB001");
        assert!(r.system(&Asid::parse("4").unwrap()).is_none());
    }

    #[test]
    fn every_system_has_an_endpoint_under_the_provider_base() {
        let r = registry();
        assert_eq!(
            system(&r, "1").endpoint.as_deref(),
            Some("http://127.0.0.1:8080/AAA001/DSTU2/1")
        );
        // CCC001 receives no tasks, but hears what became of those it sent.
        assert_eq!(
            system(&r, "3").endpoint.as_deref(),
            Some("http://127.0.0.1:8080/CCC001/DSTU2/1")
        );
        assert_eq!(
            system(&r, "3").receives,
            [Interaction::ReadMetadata, Interaction::CreateOrderResponse]
        );
        assert_eq!(system(&r, "1").receives, Interaction::ALL);
    }

    #[test]
    fn a_task_update_follows_the_task_either_way_and_nowhere_else() {
        let r = registry();
        let (a, b, c) = (system(&r, "1"), system(&r, "2"), system(&r, "3"));
        let update = Interaction::CreateOrderResponse.id();
        // CCC001 may send tasks to AAA001: AAA001 replies, CCC001 cancels.
        assert_eq!(
            r.check_flow(a, c, update),
            Ok(Interaction::CreateOrderResponse)
        );
        assert_eq!(
            r.check_flow(c, a, update),
            Ok(Interaction::CreateOrderResponse)
        );
        // No task may travel between AAA001 and BBB001, so neither may an update.
        assert_eq!(r.check_flow(a, b, update), Err(FotRefusal::NoAgreement));
        assert_eq!(r.check_flow(b, a, update), Err(FotRefusal::NoAgreement));
        assert_eq!(r.check_flow(c, b, update), Err(FotRefusal::NoAgreement));
        // An agreement for the update itself is not what decides.
        let mut data = ReferenceData {
            organisations: vec![
                org("AAA001", Some("1"), true),
                org("BBB001", Some("2"), true),
            ],
            ..ReferenceData::default()
        };
        data.agreements.push(SharingAgreement {
            sender: Party::parse("AAA001").unwrap(),
            receiver: Party::parse("BBB001").unwrap(),
            interaction: update.to_owned(),
        });
        let r = SpineRegistry::new(&data, "http://127.0.0.1:8080");
        let (a, b) = (system(&r, "1"), system(&r, "2"));
        assert_eq!(r.check_flow(a, b, update), Err(FotRefusal::NoAgreement));
    }

    #[test]
    fn a_task_needs_an_agreement_in_that_direction() {
        let r = registry();
        let (a, b, c) = (system(&r, "1"), system(&r, "2"), system(&r, "3"));
        let create = Interaction::CreateTask.id();
        assert_eq!(r.check_flow(c, a, create), Ok(Interaction::CreateTask));
        assert_eq!(r.check_flow(b, a, create), Err(FotRefusal::NoAgreement));
        assert_eq!(
            r.check_flow(a, c, create),
            Err(FotRefusal::ReceiverMayNotReceive)
        );
    }

    #[test]
    fn a_wildcard_agreement_is_one_row_for_every_pair_and_a_closed_receiver_is_refused() {
        let mut data = ReferenceData {
            organisations: vec![
                org("AAA001", Some("1"), true),
                org("BBB001", Some("2"), true),
                org("CCC001", Some("3"), true),
            ],
            agreements: vec![SharingAgreement {
                sender: Party::Every,
                receiver: Party::parse("BBB001").unwrap(),
                interaction: Interaction::CreateTask.id().to_owned(),
            }],
            ..ReferenceData::default()
        };
        data.organisations[2].status = crate::reference::OrganisationStatus::Closed;
        data.agreements.push(SharingAgreement {
            sender: Party::Every,
            receiver: Party::Every,
            interaction: Interaction::CreateTask.id().to_owned(),
        });
        let r = SpineRegistry::new(&data, "http://127.0.0.1:8080");
        assert_eq!(r.agreements.len(), 2);
        let (a, b, c) = (system(&r, "1"), system(&r, "2"), system(&r, "3"));
        let create = Interaction::CreateTask.id();
        assert_eq!(r.check_flow(a, b, create), Ok(Interaction::CreateTask));
        assert_eq!(r.check_flow(c, a, create), Ok(Interaction::CreateTask));
        assert_eq!(r.check_flow(a, c, create), Err(FotRefusal::ReceiverClosed));
    }

    #[test]
    fn listed_interactions_replace_the_default_rule() {
        let mut receiver = org("BBB001", Some("2"), true);
        receiver.interactions = Some(crate::reference::SystemInteractions {
            sends: vec![Interaction::ReadMetadata],
            receives: vec![Interaction::ReadMetadata, Interaction::CreateTask],
        });
        let data = ReferenceData {
            organisations: vec![org("AAA001", Some("1"), true), receiver],
            agreements: vec![SharingAgreement {
                sender: Party::Every,
                receiver: Party::Every,
                interaction: Interaction::CreateTask.id().to_owned(),
            }],
            ..ReferenceData::default()
        };
        let r = SpineRegistry::new(&data, "http://127.0.0.1:8080");
        let (a, b) = (system(&r, "1"), system(&r, "2"));
        let create = Interaction::CreateTask.id();
        assert_eq!(r.check_flow(a, b, create), Ok(Interaction::CreateTask));
        assert_eq!(
            r.check_flow(b, a, create),
            Err(FotRefusal::SenderMayNotSend)
        );
        assert_eq!(
            r.check_flow(a, b, Interaction::ReadPatient.id()),
            Err(FotRefusal::ReceiverMayNotReceive)
        );
    }

    #[test]
    fn look_ups_are_open_between_registered_systems() {
        let r = registry();
        let (a, b) = (system(&r, "1"), system(&r, "2"));
        for i in Interaction::ALL.into_iter().filter(|i| !i.is_write()) {
            assert_eq!(r.check_flow(a, b, i.id()), Ok(i));
            assert_eq!(r.check_flow(b, a, i.id()), Ok(i));
        }
    }

    #[test]
    fn interactions_not_served_here_are_refused() {
        let r = registry();
        let (a, b) = (system(&r, "1"), system(&r, "2"));
        for id in [
            "urn:nhs:names:services:gpconnect:fhir:rest:create:appointment",
            "urn:nhs:names:services:gpconnect:fhir:rest:CREATE:order",
            "",
        ] {
            assert_eq!(
                r.check_flow(a, b, id),
                Err(FotRefusal::UnknownInteraction),
                "{id}"
            );
        }
    }
}
