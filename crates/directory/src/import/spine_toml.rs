//! Spine systems and sharing agreements from TOML (reference-data.md §1):
//! `[[system]]` per organisation (ASID, whether it receives tasks, the
//! interactions it may send and receive, an optional telephone), and
//! `[[agreement]]` rows with `*` for every organisation with a system.

use super::Problems;
use crate::import::ImportError;
use gpc_domain::reference::{
    Organisation, Party, ReferenceData, SharingAgreement, SystemInteractions,
};
use gpc_domain::{Asid, Interaction, OdsCode};
use serde::Deserialize;
use std::collections::{HashMap, HashSet};
use toml::Spanned;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SpineFile {
    #[serde(default)]
    system: Vec<Spanned<System>>,
    #[serde(default)]
    agreement: Vec<Spanned<Agreement>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct System {
    ods: String,
    asid: String,
    receives_tasks: bool,
    telephone: Option<String>,
    interactions: Option<Interactions>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Interactions {
    sends: Vec<String>,
    receives: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Agreement {
    from: String,
    to: String,
    interaction: String,
}

/// A full interaction id, or its short form after
/// `urn:nhs:names:services:gpconnect:fhir:` (e.g. `rest:create:order`) or
/// after `...:fhir:rest:` (`create:order`).
fn interaction(text: &str) -> Option<Interaction> {
    const BASE: &str = "urn:nhs:names:services:gpconnect:fhir:";
    Interaction::from_id(text)
        .or_else(|| Interaction::from_id(&format!("{BASE}{text}")))
        .or_else(|| Interaction::from_id(&format!("{BASE}rest:{text}")))
}

/// The organisations of `existing` that `text` registers, with their
/// systems, and its agreements. Every organisation named must already be
/// held (import the ODS extract first).
pub fn spine(
    file: &str,
    text: &str,
    existing: &ReferenceData,
) -> Result<ReferenceData, ImportError> {
    let mut problems = Problems::new(file);
    // Where each line starts, so that a span's line is a binary search (a
    // national file has tens of thousands of entries).
    let starts: Vec<usize> = std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    let line_of = |offset: usize| starts.partition_point(|&start| start <= offset);
    let parsed: SpineFile = match toml::from_str(text) {
        Ok(p) => p,
        Err(e) => {
            let line = e.span().map_or(1, |s| line_of(s.start));
            problems.add(line, "toml", e.message().to_owned());
            return problems.finish(ReferenceData::default());
        }
    };
    let held: HashMap<&str, &Organisation> = existing
        .organisations
        .iter()
        .map(|o| (o.ods.as_str(), o))
        .collect();
    let mut asids: HashMap<Asid, OdsCode> = existing
        .organisations
        .iter()
        .filter_map(|o| Some((o.asid.clone()?, o.ods.clone())))
        .collect();
    let mut seen = HashSet::new();
    let mut organisations = Vec::new();
    for entry in &parsed.system {
        let line = line_of(entry.span().start);
        let s = entry.get_ref();
        let Some(org) = held.get(s.ods.trim()).copied() else {
            problems.add(
                line,
                "ods",
                "no organisation has this code; import it from its ODS extract first",
            );
            continue;
        };
        if !seen.insert(org.ods.clone()) {
            problems.add(
                line,
                "ods",
                "this organisation's system is on an earlier line",
            );
            continue;
        }
        let Some(asid) = Asid::parse(s.asid.trim()) else {
            problems.add(line, "asid", "an ASID is digits only");
            continue;
        };
        match asids.get(&asid) {
            Some(owner) if owner != &org.ods => {
                problems.add(line, "asid", format!("already the ASID of {owner}"));
                continue;
            }
            _ => {
                asids.insert(asid.clone(), org.ods.clone());
            }
        }
        let interactions = match &s.interactions {
            None => None,
            Some(listed) => {
                let parse = |ids: &[String], field: &str, problems: &mut Problems| {
                    let mut out = Vec::new();
                    for id in ids {
                        match interaction(id.trim()) {
                            Some(i) if !out.contains(&i) => out.push(i),
                            Some(_) => {}
                            None => problems.add(
                                line,
                                field,
                                "not a GP Connect interaction this system serves (e.g. urn:nhs:names:services:gpconnect:fhir:rest:create:order)",
                            ),
                        }
                    }
                    out
                };
                let sends = parse(&listed.sends, "interactions.sends", &mut problems);
                let receives = parse(&listed.receives, "interactions.receives", &mut problems);
                Some(SystemInteractions { sends, receives })
            }
        };
        let mut registered = org.clone();
        registered.asid = Some(asid);
        registered.receives_tasks = s.receives_tasks;
        registered.interactions = interactions;
        if let Some(phone) = &s.telephone {
            registered.telephone = phone.trim().to_owned();
        }
        organisations.push(registered);
    }
    let with_system: HashSet<&str> = organisations
        .iter()
        .map(|o| o.ods.as_str())
        .chain(
            existing
                .organisations
                .iter()
                .filter(|o| o.asid.is_some())
                .map(|o| o.ods.as_str()),
        )
        .collect();
    let mut agreements = Vec::new();
    let mut seen_agreements = HashSet::new();
    for entry in &parsed.agreement {
        let line = line_of(entry.span().start);
        let a = entry.get_ref();
        let mut party = |text: &str, field: &str| match Party::parse(text.trim()) {
            None => {
                problems.add(line, field, "an ODS code or *");
                None
            }
            Some(Party::Org(ods)) if !with_system.contains(ods.as_str()) => {
                problems.add(
                    line,
                    field,
                    "no organisation with a Spine system has this code (in this file or already imported)",
                );
                None
            }
            Some(p) => Some(p),
        };
        let sender = party(&a.from, "from");
        let receiver = party(&a.to, "to");
        let id = interaction(a.interaction.trim());
        if id.is_none() {
            problems.add(
                line,
                "interaction",
                "not a GP Connect interaction this system serves",
            );
        }
        let (Some(sender), Some(receiver), Some(id)) = (sender, receiver, id) else {
            continue;
        };
        let agreement = SharingAgreement {
            sender,
            receiver,
            interaction: id.id().to_owned(),
        };
        if seen_agreements.insert(agreement.clone()) {
            agreements.push(agreement);
        }
    }
    if organisations.is_empty() && agreements.is_empty() && problems.is_empty() {
        problems.add(1, "file", "no [[system]] or [[agreement]] in the file");
    }
    problems.finish(ReferenceData {
        organisations,
        agreements,
        ..ReferenceData::default()
    })
}
