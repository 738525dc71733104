//! What an import changes: the incoming rows compared by natural key with
//! what the store holds, so that only added and changed rows are written
//! and a second import of the same file writes nothing.

use gpc_domain::reference::ReferenceData;
use std::collections::HashMap;
use std::hash::Hash;

/// Counts of one table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableChange {
    pub added: usize,
    pub changed: usize,
    pub unchanged: usize,
}

/// The rows to upsert, and what they do to each table.
#[derive(Debug, Default)]
pub struct Plan {
    pub rows: ReferenceData,
    pub organisations: TableChange,
    pub patients: TableChange,
    pub records: TableChange,
    pub practitioners: TableChange,
    pub agreements: TableChange,
}

impl Plan {
    /// Nothing to write.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// One line per table the import was about (any count above zero).
    pub fn summary(&self) -> Vec<String> {
        [
            ("organisations", self.organisations),
            ("patients", self.patients),
            ("patient records", self.records),
            ("practitioners", self.practitioners),
            ("sharing agreements", self.agreements),
        ]
        .into_iter()
        .filter(|(_, c)| c.added + c.changed + c.unchanged > 0)
        .map(|(name, c)| {
            format!(
                "{name}: {} added, {} changed, {} left as they were",
                c.added, c.changed, c.unchanged
            )
        })
        .collect()
    }
}

/// The plan that brings `incoming` into a store holding `existing`.
pub fn plan(existing: &ReferenceData, incoming: ReferenceData) -> Plan {
    let mut plan = Plan::default();
    let (rows, counts) = changed(&existing.organisations, incoming.organisations, |o| {
        o.ods.clone()
    });
    (plan.rows.organisations, plan.organisations) = (rows, counts);
    let (rows, counts) = changed(&existing.patients, incoming.patients, |p| p.nhs_number);
    (plan.rows.patients, plan.patients) = (rows, counts);
    let (rows, counts) = changed(&existing.records, incoming.records, |r| {
        (r.holder.clone(), r.patient_id.clone())
    });
    (plan.rows.records, plan.records) = (rows, counts);
    let (rows, counts) = changed(&existing.practitioners, incoming.practitioners, |p| {
        p.id.clone()
    });
    (plan.rows.practitioners, plan.practitioners) = (rows, counts);
    let (rows, counts) = changed(&existing.agreements, incoming.agreements, |a| a.clone());
    (plan.rows.agreements, plan.agreements) = (rows, counts);
    plan
}

fn changed<T: PartialEq, K: Hash + Eq>(
    existing: &[T],
    incoming: Vec<T>,
    key: impl Fn(&T) -> K,
) -> (Vec<T>, TableChange) {
    let held: HashMap<K, &T> = existing.iter().map(|row| (key(row), row)).collect();
    let mut counts = TableChange::default();
    let rows = incoming
        .into_iter()
        .filter(|row| match held.get(&key(row)) {
            None => {
                counts.added += 1;
                true
            }
            Some(old) if *old != row => {
                counts.changed += 1;
                true
            }
            Some(_) => {
                counts.unchanged += 1;
                false
            }
        })
        .collect();
    (rows, counts)
}
