//! The behaviour every `Store` backend must have, written once against
//! `Arc<dyn Store>`. A backend joins by providing a `Backend` factory and one
//! `conformance_suite!` line (see `mod sqlite` and `mod postgres` at the end).
//! The PostgreSQL run needs `TEST_DATABASE_URL` (`scripts/with-postgres`
//! sets it); without it, it says so once and its tests return at once.

// A test crate sees every dev-dependency of its package, and uses only some.
#![allow(unused_crate_dependencies)]
// Helpers outside `#[test]` functions panic on purpose too: a failure is the test's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{asid, at, audit_for, delivered, key, ods, task};
use gpc_domain::audit::{AuditFilter, AuditRecord, SspAuditFilter, SspAuditRecord};
use gpc_domain::lifecycle::{
    Actor, Change, InboxView, Owner, Party, Refusal, StateFilter, TaskChange, TaskState,
    TimelineEntry,
};
use gpc_domain::reference::ReferenceData;
use gpc_domain::task::{NewTask, ReceivedTask};
use gpc_domain::updates::{OutgoingUpdate, ReceivedUpdate, UpdateStatus, Wire};
use gpc_store::sessions::{PendingSignIn, WebSession};
use gpc_store::{ChangeOutcome, CreateOutcome, Store, StoreError};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

/// One test's own storage. `open` may be called again after the previous
/// store is dropped, to check what survived, or while it is open, as a
/// second instance on the same storage would.
#[async_trait::async_trait]
pub trait Backend: Send + Sync {
    async fn open(&self) -> Arc<dyn Store>;
}

/// `$backend` is an async fn giving `None` when the backend cannot be tested here.
macro_rules! conformance_suite {
    ($backend:path; $($test:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() {
                let Some(backend) = $backend(stringify!($test)).await else {
                    return;
                };
                crate::suite::$test(&*backend).await;
            }
        )*
    };
}

mod suite {
    use super::*;

    const GPC001: &str = "GPC001";
    const R1A14: &str = "R1A14";
    const HUB_ASID: &str = "200000000370";
    const PHYSIO_ASID: &str = "200000000373";

    async fn create(store: &dyn Store, t: &NewTask) -> CreateOutcome {
        store
            .create_task(t.clone(), audit_for(t, 201))
            .await
            .expect("create_task")
    }

    async fn find(store: &dyn Store, tenant: &str, sender: &str, k: &str) -> Option<NewTask> {
        let k = key(k);
        store
            .find_by_identifier(&ods(tenant), &asid(sender), &k)
            .await
            .expect("find_by_identifier")
            .map(|found| found.task)
    }

    /// New storage holds no reference data; what the caller writes (the
    /// CLI writes the demo region) reads back whole, in order, after a
    /// reopen, and writing it again changes nothing.
    pub async fn reference_data_is_seeded_once(backend: &dyn Backend) {
        let expected = gpc_directory::demo_region();
        let store = backend.open().await;
        assert_eq!(
            store.reference_data().await.unwrap(),
            ReferenceData::default()
        );
        store.upsert_reference(&expected).await.unwrap();
        assert_eq!(store.reference_data().await.unwrap(), expected);
        drop(store);
        let store = backend.open().await;
        assert_eq!(store.reference_data().await.unwrap(), expected);
        store.upsert_reference(&expected).await.unwrap();
        assert_eq!(store.reference_data().await.unwrap(), expected);
    }

    /// An upsert updates the rows it names by their keys, in place, adds the
    /// new ones after the rest, and keeps the rows it does not name.
    pub async fn reference_upserts_update_by_key_and_keep_the_rest(backend: &dyn Backend) {
        let demo = gpc_directory::demo_region();
        let store = backend.open().await;
        store.upsert_reference(&demo).await.unwrap();

        let mut renamed = demo.organisations[2].clone();
        renamed.name = "Renamed Surgery".to_owned();
        renamed.telephone = "01632 960000".to_owned();
        renamed.site_codes = vec!["ZZ1".to_owned(), "ZZ2".to_owned()];
        let mut added = demo.organisations[0].clone();
        added.id = "999".to_owned();
        added.ods = gpc_domain::OdsCode::parse("ZZZ999").unwrap();
        added.asid = None;
        added.address = None;
        let mut moved = demo.patients[1].clone();
        moved.family = "MOVED".to_owned();
        moved.deceased = Some("2026-01-02".parse().unwrap());
        let mut ended = demo.records[0].clone();
        ended.ended = Some("2026-03-04".parse().unwrap());
        let mut promoted = demo.practitioners[0].clone();
        promoted.role_display = "Senior Partner".to_owned();
        let update = ReferenceData {
            organisations: vec![added.clone(), renamed.clone()],
            patients: vec![moved.clone()],
            records: vec![ended.clone()],
            practitioners: vec![promoted.clone()],
            agreements: vec![demo.agreements[0].clone()],
        };
        store.upsert_reference(&update).await.unwrap();

        let mut expected = demo.clone();
        expected.organisations[2] = renamed;
        expected.organisations.push(added);
        expected.patients[1] = moved;
        expected.records[0] = ended;
        expected.practitioners[0] = promoted;
        assert_eq!(store.reference_data().await.unwrap(), expected);
    }

    /// What a server reads of an imported region: the index without
    /// patients or records, each patient and record by an indexed look-up,
    /// the counts, and a version that every write raises; and what an
    /// import relies on: a row found by its natural key keeps its id.
    pub async fn reference_is_read_by_index_and_versioned(backend: &dyn Backend) {
        use gpc_domain::reference::{
            OrganisationStatus, Party, PatientKey, SharingAgreement, SystemInteractions,
        };
        use gpc_domain::{Interaction, NhsNumber};
        let demo = gpc_directory::demo_region();
        let store = backend.open().await;
        let v0 = store.reference_version().await.unwrap();
        assert_eq!(store.reference_counts().await.unwrap(), [0; 5]);
        store.upsert_reference(&demo).await.unwrap();
        let v1 = store.reference_version().await.unwrap();
        assert!(v1 > v0);
        let counts = [
            demo.organisations.len(),
            demo.patients.len(),
            demo.records.len(),
            demo.practitioners.len(),
            demo.agreements.len(),
        ]
        .map(|n| n as u64);
        assert_eq!(store.reference_counts().await.unwrap(), counts);
        let index = store.reference_index().await.unwrap();
        assert_eq!(index.organisations, demo.organisations);
        assert_eq!(index.practitioners, demo.practitioners);
        assert_eq!(index.agreements, demo.agreements);
        assert!(index.patients.is_empty() && index.records.is_empty());

        let dawes = NhsNumber::parse("9476719931").unwrap();
        let gpc001 = ods(GPC001);
        let found = store.patient(&dawes).await.unwrap().unwrap();
        assert_eq!(found.family, "DAWES");
        let expected = demo.record_of(&gpc001, PatientKey::Nhs(&dawes));
        assert!(expected.is_some());
        assert_eq!(
            store
                .patient_record(&gpc001, PatientKey::Nhs(&dawes))
                .await
                .unwrap(),
            expected
        );
        assert_eq!(
            store
                .patient_record(&gpc001, PatientKey::Id(&found.id))
                .await
                .unwrap(),
            expected
        );
        // R3B46 holds no record of her; nobody has 9999999999.
        assert_eq!(
            store
                .patient_record(&ods("R3B46"), PatientKey::Nhs(&dawes))
                .await
                .unwrap(),
            None
        );
        let nobody = NhsNumber::parse("9999999999").unwrap();
        assert_eq!(store.patient(&nobody).await.unwrap(), None);

        // The same organisation and patient under other ids keep theirs;
        // a status, registered interactions and a `*` agreement read back.
        let mut org = demo.organisations[0].clone();
        org.id = "another".to_owned();
        org.status = OrganisationStatus::Closed;
        org.interactions = Some(SystemInteractions {
            sends: vec![Interaction::ReadMetadata],
            receives: vec![Interaction::ReadMetadata, Interaction::CreateTask],
        });
        let mut patient = found.clone();
        patient.id = "another".to_owned();
        patient.given = "Minerva".to_owned();
        let every = SharingAgreement {
            sender: Party::Every,
            receiver: Party::Every,
            interaction: Interaction::CreateTask.id().to_owned(),
        };
        store
            .upsert_reference(&ReferenceData {
                organisations: vec![org.clone()],
                patients: vec![patient],
                agreements: vec![every.clone()],
                ..ReferenceData::default()
            })
            .await
            .unwrap();
        assert!(store.reference_version().await.unwrap() > v1);
        let index = store.reference_index().await.unwrap();
        org.id = demo.organisations[0].id.clone();
        assert_eq!(index.organisations[0], org);
        assert_eq!(index.agreements.last(), Some(&every));
        let renamed = store.patient(&dawes).await.unwrap().unwrap();
        assert_eq!(
            (renamed.id.as_str(), renamed.given.as_str()),
            (found.id.as_str(), "Minerva")
        );
        assert_eq!(store.reference_counts().await.unwrap()[1], counts[1]);
    }

    pub async fn create_then_get_round_trips_every_field(backend: &dyn Backend) {
        let store = backend.open().await;
        let t = task(GPC001, HUB_ASID, &["order-1", "order-1-alt"], at(0));
        assert_eq!(
            create(&*store, &t).await,
            CreateOutcome::Created(delivered(&t))
        );
        assert_eq!(
            store.get_task(&ods(GPC001), &t.id).await.unwrap(),
            Some(delivered(&t))
        );
        // The resource's key order is kept, not just its content.
        let stored = store.get_task(&ods(GPC001), &t.id).await.unwrap().unwrap();
        assert_eq!(
            serde_json::to_string(&stored.resource).unwrap(),
            serde_json::to_string(&t.resource).unwrap()
        );
        // A task belongs to its tenant only.
        assert_eq!(store.get_task(&ods(R1A14), &t.id).await.unwrap(), None);
        assert_eq!(
            store.get_task(&ods(GPC001), "no-such-id").await.unwrap(),
            None
        );
        for k in ["order-1", "order-1-alt"] {
            assert_eq!(
                find(&*store, GPC001, HUB_ASID, k).await,
                Some(t.clone()),
                "{k}"
            );
        }
        assert_eq!(find(&*store, GPC001, HUB_ASID, "other").await, None);
        assert_eq!(find(&*store, GPC001, PHYSIO_ASID, "order-1").await, None);
    }

    pub async fn create_stores_its_audit_record(backend: &dyn Backend) {
        let store = backend.open().await;
        let t = task(GPC001, HUB_ASID, &["a"], at(0));
        create(&*store, &t).await;
        // Committed with the task: visible without a flush.
        let records = store.audit(AuditFilter::default()).await.unwrap();
        assert_eq!(records, vec![audit_for(&t, 201)]);
    }

    pub async fn a_duplicate_by_any_key_returns_the_first_task(backend: &dyn Backend) {
        let store = backend.open().await;
        let first = task(GPC001, HUB_ASID, &["a", "b"], at(0));
        assert!(create(&*store, &first).await.is_created());
        for keys in [&["b"][..], &["c", "b"], &["a"], &["a", "b"]] {
            let repeat = task(GPC001, HUB_ASID, keys, at(1));
            let outcome = create(&*store, &repeat).await;
            assert_eq!(
                outcome,
                CreateOutcome::Existing(delivered(&first)),
                "{keys:?}"
            );
        }
        assert_eq!(store.count_tasks(&ods(GPC001)).await.unwrap(), 1);
        // Nothing of a repeat is stored, its audit record included.
        store.flush().await.unwrap();
        assert_eq!(store.audit(AuditFilter::default()).await.unwrap().len(), 1);
        // "c" came with a repeat, so it was not stored.
        assert_eq!(find(&*store, GPC001, HUB_ASID, "c").await, None);
    }

    pub async fn one_key_twice_in_a_task_is_one_key(backend: &dyn Backend) {
        let store = backend.open().await;
        let t = task(GPC001, HUB_ASID, &["same", "same"], at(0));
        assert_eq!(
            create(&*store, &t).await,
            CreateOutcome::Created(delivered(&t))
        );
        assert_eq!(
            store.get_task(&ods(GPC001), &t.id).await.unwrap(),
            Some(delivered(&t))
        );
    }

    pub async fn a_task_without_keys_is_always_created(backend: &dyn Backend) {
        let store = backend.open().await;
        for i in 0..3 {
            assert!(
                create(&*store, &task(GPC001, HUB_ASID, &[], at(i)))
                    .await
                    .is_created()
            );
        }
        assert_eq!(store.count_tasks(&ods(GPC001)).await.unwrap(), 3);
    }

    pub async fn the_same_key_from_another_sender_or_tenant_is_created(backend: &dyn Backend) {
        let store = backend.open().await;
        let tasks = [
            task(GPC001, HUB_ASID, &["k"], at(0)),
            task(GPC001, PHYSIO_ASID, &["k"], at(1)),
            task(R1A14, HUB_ASID, &["k"], at(2)),
        ];
        for t in &tasks {
            assert_eq!(
                create(&*store, t).await,
                CreateOutcome::Created(delivered(t))
            );
        }
        assert_eq!(store.count_tasks(&ods(GPC001)).await.unwrap(), 2);
        assert_eq!(store.count_tasks(&ods(R1A14)).await.unwrap(), 1);
        // Another key system is another key.
        let mut other_system = task(GPC001, HUB_ASID, &[], at(3));
        other_system.idempotency_keys = vec![gpc_domain::task::BusinessIdentifier {
            system: "urn:other".to_owned(),
            value: "k".to_owned(),
        }];
        assert!(create(&*store, &other_system).await.is_created());
    }

    pub async fn concurrent_duplicates_store_exactly_one(backend: &dyn Backend) {
        let store = backend.open().await;
        let handles: Vec<_> = (0..50)
            .map(|i| {
                let store = Arc::clone(&store);
                let t = task(GPC001, HUB_ASID, &["dup"], at(i));
                tokio::spawn(async move { store.create_task(t.clone(), audit_for(&t, 201)).await })
            })
            .collect();
        let mut created = Vec::new();
        let mut existing = Vec::new();
        for h in handles {
            match h.await.unwrap().unwrap() {
                CreateOutcome::Created(t) => created.push(t),
                CreateOutcome::Existing(t) => existing.push(t),
            }
        }
        assert_eq!(created.len(), 1);
        assert_eq!(existing.len(), 49);
        assert!(existing.iter().all(|t| *t == created[0]));
        assert_eq!(store.count_tasks(&ods(GPC001)).await.unwrap(), 1);
    }

    pub async fn concurrent_distinct_creates_are_all_stored(backend: &dyn Backend) {
        let store = backend.open().await;
        let tasks: Vec<_> = (0..1000)
            .map(|i| task(GPC001, HUB_ASID, &[&format!("order-{i}")], at(i)))
            .collect();
        let handles: Vec<_> = tasks
            .iter()
            .cloned()
            .map(|t| {
                let store = Arc::clone(&store);
                tokio::spawn(async move { store.create_task(t.clone(), audit_for(&t, 201)).await })
            })
            .collect();
        for h in handles {
            assert!(h.await.unwrap().unwrap().is_created());
        }
        assert_eq!(store.count_tasks(&ods(GPC001)).await.unwrap(), 1000);
        for t in tasks.iter().step_by(97) {
            assert_eq!(
                store.get_task(&ods(GPC001), &t.id).await.unwrap(),
                Some(delivered(t))
            );
        }
        let all = store.inbox(&ods(GPC001), 2000, None).await.unwrap();
        let ids: HashSet<&str> = all.iter().map(|t| t.id.as_str()).collect();
        assert!(tasks.iter().all(|t| ids.contains(t.id.as_str())));
    }

    pub async fn a_failing_task_does_not_fail_its_batch(backend: &dyn Backend) {
        let store = backend.open().await;
        let first = task(GPC001, HUB_ASID, &["first"], at(0));
        create(&*store, &first).await;
        // Same resource id as a stored task, new keys: a constraint error.
        let mut clash = task(GPC001, HUB_ASID, &["clash"], at(1));
        clash.id = first.id.clone();
        let others: Vec<_> = (0..20)
            .map(|i| task(GPC001, HUB_ASID, &[&format!("o{i}")], at(2 + i)))
            .collect();
        let mut handles = Vec::new();
        for (i, t) in others.iter().cloned().enumerate() {
            if i == 10 {
                let (store, clash) = (Arc::clone(&store), clash.clone());
                handles.push(tokio::spawn(async move {
                    store
                        .create_task(clash.clone(), audit_for(&clash, 201))
                        .await
                }));
            }
            let store = Arc::clone(&store);
            handles.push(tokio::spawn(async move {
                store.create_task(t.clone(), audit_for(&t, 201)).await
            }));
        }
        let results: Vec<Result<CreateOutcome, StoreError>> = futures_join(handles).await;
        assert_eq!(results.iter().filter(|r| r.is_err()).count(), 1);
        assert_eq!(
            results
                .iter()
                .filter(|r| matches!(r, Ok(o) if o.is_created()))
                .count(),
            20
        );
        assert_eq!(store.count_tasks(&ods(GPC001)).await.unwrap(), 21);
        // Nothing of the failed task remains: its key is free.
        assert_eq!(find(&*store, GPC001, HUB_ASID, "clash").await, None);
        assert_eq!(
            store.get_task(&ods(GPC001), &first.id).await.unwrap(),
            Some(delivered(&first))
        );
    }

    async fn futures_join<T>(handles: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
        let mut out = Vec::with_capacity(handles.len());
        for h in handles {
            out.push(h.await.unwrap());
        }
        out
    }

    pub async fn inbox_is_newest_first_paged_and_per_tenant(backend: &dyn Backend) {
        let store = backend.open().await;
        let mut mine = Vec::new();
        // Out of order on purpose, with two sharing one instant (ordered by id then).
        for s in [3, 1, 4, 0, 2, 2] {
            let t = task(GPC001, HUB_ASID, &[], at(s));
            create(&*store, &t).await;
            mine.push(t);
        }
        create(&*store, &task(R1A14, HUB_ASID, &[], at(10))).await;
        mine.sort_by(|a, b| (b.received_at, &b.id).cmp(&(a.received_at, &a.id)));
        let ids =
            |ts: &[ReceivedTask]| -> Vec<String> { ts.iter().map(|t| t.id.clone()).collect() };
        let mine: Vec<ReceivedTask> = mine.iter().map(delivered).collect();

        let all = store.inbox(&ods(GPC001), 100, None).await.unwrap();
        assert_eq!(all, mine);

        let mut pages = Vec::new();
        let mut before = None;
        loop {
            let page = store.inbox(&ods(GPC001), 4, before.clone()).await.unwrap();
            if page.is_empty() {
                break;
            }
            let last = page.last().unwrap();
            before = Some((last.received_at, last.id.clone()));
            pages.push(ids(&page));
        }
        assert_eq!(pages.len(), 2);
        assert_eq!(pages[0], ids(&mine[..4]));
        assert_eq!(pages[1], ids(&mine[4..]));

        // Strictly older: the page after the first of two equal instants holds the second.
        let tie = mine.iter().position(|t| t.received_at == at(2)).unwrap();
        let after_tie = store
            .inbox(
                &ods(GPC001),
                1,
                Some((mine[tie].received_at, mine[tie].id.clone())),
            )
            .await
            .unwrap();
        assert_eq!(ids(&after_tie), ids(&mine[tie + 1..tie + 2]));

        assert_eq!(store.inbox(&ods(GPC001), 0, None).await.unwrap(), vec![]);
        let theirs = store.inbox(&ods(R1A14), 100, None).await.unwrap();
        assert_eq!(theirs.len(), 1);
        assert_eq!(theirs[0].tenant, R1A14);
        assert_eq!(
            store.inbox(&ods("XPH001"), 100, None).await.unwrap(),
            vec![]
        );
        assert_eq!(store.count_tasks(&ods("XPH001")).await.unwrap(), 0);
    }

    pub async fn audit_is_queued_then_flushed_and_filtered(backend: &dyn Backend) {
        let store = backend.open().await;
        let record = |tenant: &str, s: i64, status: u16| AuditRecord {
            time: at(s),
            tenant: tenant.to_owned(),
            method: "GET".to_owned(),
            path: format!("/{tenant}/fhir/metadata"),
            status,
            error_code: (status >= 400).then(|| "BAD_REQUEST".to_owned()),
            ..AuditRecord::default()
        };
        let records = [
            record(GPC001, 1, 200),
            record(R1A14, 2, 200),
            record(GPC001, 3, 400),
            record("", 4, 404),
            record(GPC001, 5, 200),
        ];
        for r in &records {
            store.record_audit(r.clone());
        }
        store.flush().await.unwrap();

        let newest_first: Vec<AuditRecord> = records.iter().rev().cloned().collect();
        let all = store.audit(AuditFilter::default()).await.unwrap();
        assert_eq!(all, newest_first);

        let filter = |tenant: Option<&str>, since: Option<i64>, limit: usize| AuditFilter {
            tenant: tenant.map(str::to_owned),
            since: since.map(at),
            limit,
        };
        let times = |rs: Vec<AuditRecord>| -> Vec<jiff::Timestamp> {
            rs.into_iter().map(|r| r.time).collect()
        };
        let got = store.audit(filter(Some(GPC001), None, 0)).await.unwrap();
        assert_eq!(times(got), [at(5), at(3), at(1)]);
        let got = store.audit(filter(None, Some(3), 0)).await.unwrap();
        assert_eq!(times(got), [at(5), at(4), at(3)]);
        let got = store.audit(filter(Some(GPC001), Some(2), 0)).await.unwrap();
        assert_eq!(times(got), [at(5), at(3)]);
        let got = store.audit(filter(None, None, 2)).await.unwrap();
        assert_eq!(times(got), [at(5), at(4)]);
        let got = store.audit(filter(Some("XPH001"), None, 0)).await.unwrap();
        assert!(got.is_empty());
    }

    pub async fn audit_records_of_one_instant_read_newest_written_first(backend: &dyn Backend) {
        let store = backend.open().await;
        for status in [200, 201, 202] {
            store.record_audit(AuditRecord {
                time: at(0),
                status,
                ..AuditRecord::default()
            });
        }
        store.flush().await.unwrap();
        let got = store.audit(AuditFilter::default()).await.unwrap();
        let statuses: Vec<u16> = got.iter().map(|r| r.status).collect();
        assert_eq!(statuses, [202, 201, 200]);
    }

    pub async fn tasks_and_audit_persist_across_reopen(backend: &dyn Backend) {
        let store = backend.open().await;
        let t = task(GPC001, HUB_ASID, &["kept"], at(0));
        create(&*store, &t).await;
        store.record_audit(AuditRecord {
            time: at(1),
            tenant: GPC001.to_owned(),
            status: 200,
            ..AuditRecord::default()
        });
        // No flush: dropping the store commits what is queued.
        drop(store);

        let store = backend.open().await;
        assert_eq!(
            store.get_task(&ods(GPC001), &t.id).await.unwrap(),
            Some(delivered(&t))
        );
        let repeat = task(GPC001, HUB_ASID, &["kept"], at(2));
        assert_eq!(
            create(&*store, &repeat).await,
            CreateOutcome::Existing(delivered(&t))
        );
        assert_eq!(store.audit(AuditFilter::default()).await.unwrap().len(), 2);
    }

    pub async fn ssp_audit_round_trips_and_filters(backend: &dyn Backend) {
        let store = backend.open().await;
        let record = |second: i64, status: u16, refusal: Option<&str>| SspAuditRecord {
            time: at(second),
            trace_id: Some(uuid::Uuid::new_v4().to_string()),
            from_asid: Some(HUB_ASID.to_owned()),
            to_asid: Some("200000000359".to_owned()),
            interaction: Some("urn:nhs:names:services:gpconnect:fhir:rest:create:order".to_owned()),
            method: "POST".to_owned(),
            target: "http://127.0.0.1:8080/GPC001/DSTU2/1/Order".to_owned(),
            status,
            duration_us: u64::try_from(second).unwrap() * 1000 + 7,
            refusal: refusal.map(str::to_owned),
        };
        let records = [
            record(1, 201, None),
            record(2, 403, Some("FOT_CHECK_FAILED")),
            record(3, 504, Some("ENDPOINT_TIMEOUT")),
            // Only what was sent is known when the headers were missing.
            SspAuditRecord {
                time: at(4),
                method: "GET".to_owned(),
                status: 400,
                refusal: Some("MISSING_OR_INVALID_HEADER".to_owned()),
                ..SspAuditRecord::default()
            },
        ];
        for r in &records {
            store.record_ssp_audit(r.clone());
        }
        store.flush().await.unwrap();
        let newest_first: Vec<SspAuditRecord> = records.iter().rev().cloned().collect();
        assert_eq!(
            store.ssp_audit(SspAuditFilter::default()).await.unwrap(),
            newest_first
        );
        let since = SspAuditFilter {
            since: Some(at(2)),
            limit: 0,
        };
        assert_eq!(store.ssp_audit(since).await.unwrap(), newest_first[..3]);
        let limited = SspAuditFilter {
            since: None,
            limit: 1,
        };
        assert_eq!(store.ssp_audit(limited).await.unwrap(), newest_first[..1]);
        // Kept apart from the provider's audit.
        assert!(
            store
                .audit(AuditFilter::default())
                .await
                .unwrap()
                .is_empty()
        );
        drop(store);
        let store = backend.open().await;
        assert_eq!(
            store
                .ssp_audit(SspAuditFilter::default())
                .await
                .unwrap()
                .len(),
            4
        );
    }

    /// Two stores on one storage are two instances of one system: a repeat
    /// through either finds the task created through the other.
    pub async fn concurrent_duplicates_through_two_stores_store_exactly_one(backend: &dyn Backend) {
        let stores = [backend.open().await, backend.open().await];
        let handles: Vec<_> = (0..50)
            .map(|i| {
                let store = Arc::clone(&stores[i % 2]);
                let t = task(GPC001, HUB_ASID, &["dup"], at(i as i64));
                tokio::spawn(async move { store.create_task(t.clone(), audit_for(&t, 201)).await })
            })
            .collect();
        let outcomes: Vec<CreateOutcome> = futures_join(handles)
            .await
            .into_iter()
            .map(|r| r.expect("create_task"))
            .collect();
        let created: Vec<&CreateOutcome> = outcomes.iter().filter(|o| o.is_created()).collect();
        assert_eq!(created.len(), 1);
        assert!(outcomes.iter().all(|o| o.task() == created[0].task()));
        for store in &stores {
            assert_eq!(store.count_tasks(&ods(GPC001)).await.unwrap(), 1);
            assert_eq!(
                find(&**store, GPC001, HUB_ASID, "dup").await.as_ref(),
                Some(&created[0].task().task)
            );
        }
    }

    /// Two creates holding the same two keys in opposite orders, at once:
    /// one task, and neither fails (no deadlock between them).
    pub async fn crossed_keys_from_concurrent_creates_store_one_task(backend: &dyn Backend) {
        let store = backend.open().await;
        let mut handles = Vec::new();
        for i in 0..20 {
            let (x, y) = (format!("x{i}"), format!("y{i}"));
            for keys in [[&x, &y], [&y, &x]] {
                let t = task(GPC001, HUB_ASID, &[keys[0], keys[1]], at(i));
                let store = Arc::clone(&store);
                handles.push(tokio::spawn(async move {
                    store.create_task(t.clone(), audit_for(&t, 201)).await
                }));
            }
        }
        let outcomes: Vec<CreateOutcome> = futures_join(handles)
            .await
            .into_iter()
            .map(|r| r.expect("create_task"))
            .collect();
        for pair in outcomes.chunks(2) {
            assert_eq!(pair.iter().filter(|o| o.is_created()).count(), 1);
            assert_eq!(pair[0].task(), pair[1].task());
        }
        assert_eq!(store.count_tasks(&ods(GPC001)).await.unwrap(), 20);
    }

    fn actor(sds: &str, name: &str, ods_code: &str) -> Actor {
        Actor {
            sds_user_id: sds.to_owned(),
            name: name.to_owned(),
            role_code: "R0260".to_owned(),
            role_display: "General Medical Practitioner".to_owned(),
            organisation: ods(ods_code),
        }
    }

    fn gilbert() -> Actor {
        actor("G13579135", "Dr Nichole GILBERT", GPC001)
    }

    fn ross() -> Actor {
        actor("G50000001", "Mrs Helen ROSS", GPC001)
    }

    fn by(who: Actor, change: Change, text: Option<&str>, version: Option<u32>) -> TaskChange {
        TaskChange {
            change,
            by: who,
            party: Party::Receiver,
            text: text.map(str::to_owned),
            expected_version: version,
            at: at(100),
            wire: Wire::outgoing(),
        }
    }

    async fn change(store: &dyn Store, id: &str, c: TaskChange) -> ChangeOutcome {
        store
            .change_task(&ods(GPC001), id, c)
            .await
            .expect("change_task")
            .expect("the task exists")
    }

    /// Take, then complete with a note: each change is the next version,
    /// with its timeline entry; a change of a final task writes nothing.
    pub async fn changes_apply_in_turn_with_their_timeline(backend: &dyn Backend) {
        let store = backend.open().await;
        let t = task(GPC001, HUB_ASID, &["life"], at(0));
        create(&*store, &t).await;

        let taken = change(&*store, &t.id, by(gilbert(), Change::Take, None, Some(1))).await;
        let ChangeOutcome::Changed { task, entry } = taken else {
            panic!("refused: {taken:?}");
        };
        assert_eq!(task.life.state, TaskState::Accepted);
        assert_eq!(task.life.version, 2);
        let owner = task.life.owner.clone().unwrap();
        assert_eq!(
            (owner.sds_user_id.as_str(), owner.name.as_str()),
            ("G13579135", "Dr Nichole GILBERT")
        );
        assert_eq!((entry.version, entry.state), (2, TaskState::Accepted));

        let done = change(
            &*store,
            &t.id,
            by(
                gilbert(),
                Change::Complete,
                Some("Booked a review — Thursday"),
                None,
            ),
        )
        .await;
        assert!(matches!(done, ChangeOutcome::Changed { .. }), "{done:?}");
        let stored = store.get_task(&ods(GPC001), &t.id).await.unwrap().unwrap();
        assert_eq!(stored.life.state, TaskState::Completed);
        assert_eq!(stored.life.version, 3);
        assert_eq!(stored.life.owner, Some(owner.clone()));
        // What was delivered is untouched by its life.
        assert_eq!(stored.task, t);

        let timeline = store.timeline(&ods(GPC001), &t.id).await.unwrap();
        assert_eq!(timeline.len(), 2);
        assert_eq!(timeline[0], entry);
        assert_eq!(timeline[1].version, 3);
        assert_eq!(timeline[1].state, TaskState::Completed);
        assert_eq!(timeline[1].by, gilbert());
        assert_eq!(timeline[1].party, Party::Receiver);
        assert_eq!(
            timeline[1].note.as_deref(),
            Some("Booked a review — Thursday")
        );
        assert_eq!(timeline[1].at, at(100));

        let late = change(
            &*store,
            &t.id,
            by(ross(), Change::Note, Some("too late"), None),
        )
        .await;
        let ChangeOutcome::Refused { refusal, task } = late else {
            panic!("a final task changed: {late:?}");
        };
        assert_eq!(refusal, Refusal::AlreadyFinal(TaskState::Completed));
        assert_eq!(task, stored);
        assert_eq!(store.timeline(&ods(GPC001), &t.id).await.unwrap().len(), 2);
    }

    /// A change made against a version the task has left is refused, and
    /// nothing is written; another tenant's task is not found at all.
    pub async fn a_stale_or_foreign_change_writes_nothing(backend: &dyn Backend) {
        let store = backend.open().await;
        let t = task(GPC001, HUB_ASID, &["stale"], at(0));
        create(&*store, &t).await;
        change(&*store, &t.id, by(gilbert(), Change::Take, None, Some(1))).await;
        let to_ross = Change::Assign {
            to: Owner {
                sds_user_id: "G50000001".into(),
                name: "Mrs Helen ROSS".into(),
            },
        };
        let stale = change(&*store, &t.id, by(ross(), to_ross, None, Some(1))).await;
        let ChangeOutcome::Refused { refusal, task } = stale else {
            panic!("a stale change was applied: {stale:?}");
        };
        assert_eq!(
            refusal,
            Refusal::StaleVersion {
                expected: 1,
                current: 2
            }
        );
        assert_eq!(task.life.owner.unwrap().sds_user_id, "G13579135");
        assert_eq!(store.timeline(&ods(GPC001), &t.id).await.unwrap().len(), 1);
        // A reason is required to reject: refused before anything is written.
        let no_reason = change(&*store, &t.id, by(gilbert(), Change::Reject, None, None)).await;
        assert!(
            matches!(
                no_reason,
                ChangeOutcome::Refused {
                    refusal: Refusal::ReasonRequired,
                    ..
                }
            ),
            "{no_reason:?}"
        );
        let foreign = store
            .change_task(&ods(R1A14), &t.id, by(gilbert(), Change::Take, None, None))
            .await
            .unwrap();
        assert_eq!(foreign, None);
        assert_eq!(store.timeline(&ods(R1A14), &t.id).await.unwrap(), vec![]);
        assert_eq!(
            store
                .get_task(&ods(GPC001), &t.id)
                .await
                .unwrap()
                .unwrap()
                .life
                .version,
            2
        );
    }

    /// Many people taking one task at once, through two instances on the
    /// same storage: exactly one takes it, every other is refused and sees
    /// the winner as its owner.
    pub async fn concurrent_takes_through_two_stores_have_one_winner(backend: &dyn Backend) {
        let stores = [backend.open().await, backend.open().await];
        let t = task(GPC001, HUB_ASID, &["race"], at(0));
        create(&*stores[0], &t).await;
        let handles: Vec<_> = (0..24)
            .map(|i| {
                let store = Arc::clone(&stores[i % 2]);
                let id = t.id.clone();
                let who = actor(&format!("G9{i:07}"), &format!("User {i}"), GPC001);
                tokio::spawn(async move {
                    store
                        .change_task(&ods(GPC001), &id, by(who, Change::Take, None, Some(1)))
                        .await
                })
            })
            .collect();
        let outcomes: Vec<ChangeOutcome> = futures_join(handles)
            .await
            .into_iter()
            .map(|r| r.unwrap().unwrap())
            .collect();
        let winners: Vec<&ReceivedTask> = outcomes
            .iter()
            .filter_map(|o| match o {
                ChangeOutcome::Changed { task, .. } => Some(task),
                ChangeOutcome::Refused { .. } | ChangeOutcome::Repeat { .. } => None,
            })
            .collect();
        assert_eq!(winners.len(), 1);
        let winner = winners[0].life.owner.clone().unwrap();
        for o in &outcomes {
            if let ChangeOutcome::Refused { refusal, task } = o {
                assert_eq!(
                    *refusal,
                    Refusal::StaleVersion {
                        expected: 1,
                        current: 2
                    }
                );
                assert_eq!(task.life.owner.as_ref(), Some(&winner));
            }
        }
        for store in &stores {
            let timeline = store.timeline(&ods(GPC001), &t.id).await.unwrap();
            assert_eq!(timeline.len(), 1);
            assert_eq!(timeline[0].owner.as_ref(), Some(&winner));
        }
    }

    /// The lists of §4: To do, Assigned to me, Unassigned, Done and one
    /// state, newest first and paged, after changes and across a reopen.
    pub async fn inbox_views_follow_state_and_owner(backend: &dyn Backend) {
        let store = backend.open().await;
        let tasks: Vec<NewTask> = (0..6)
            .map(|i| task(GPC001, HUB_ASID, &[&format!("view-{i}")], at(i)))
            .collect();
        for t in &tasks {
            create(&*store, t).await;
        }
        create(&*store, &task(R1A14, HUB_ASID, &[], at(9))).await;
        change(
            &*store,
            &tasks[1].id,
            by(gilbert(), Change::Take, None, None),
        )
        .await;
        change(&*store, &tasks[2].id, by(ross(), Change::Take, None, None)).await;
        change(
            &*store,
            &tasks[3].id,
            by(gilbert(), Change::Complete, None, None),
        )
        .await;
        change(
            &*store,
            &tasks[4].id,
            by(ross(), Change::Reject, Some("Not ours"), None),
        )
        .await;
        drop(store);
        let store = backend.open().await;

        let ids = |view: InboxView| {
            let store = Arc::clone(&store);
            async move {
                let listed = store
                    .inbox_view(&ods(GPC001), &view, 10, None)
                    .await
                    .unwrap();
                listed.iter().map(|t| t.id.clone()).collect::<Vec<_>>()
            }
        };
        let id = |i: usize| tasks[i].id.clone();
        assert_eq!(
            ids(InboxView::of(StateFilter::Open)).await,
            [id(5), id(2), id(1), id(0)]
        );
        assert_eq!(ids(InboxView::of(StateFilter::Done)).await, [id(4), id(3)]);
        assert_eq!(ids(InboxView::all()).await.len(), 6);
        let mine = InboxView {
            owner: Some("G13579135".into()),
            ..InboxView::of(StateFilter::Open)
        };
        assert_eq!(ids(mine).await, [id(1)]);
        let unassigned = InboxView {
            unowned: true,
            ..InboxView::of(StateFilter::Open)
        };
        assert_eq!(ids(unassigned).await, [id(5), id(0)]);
        assert_eq!(
            ids(InboxView::of(StateFilter::One(TaskState::Rejected))).await,
            [id(4)]
        );
        // Keyset paging within a view.
        let open = InboxView::of(StateFilter::Open);
        let first = store
            .inbox_view(&ods(GPC001), &open, 2, None)
            .await
            .unwrap();
        let last = first.last().unwrap();
        let next = store
            .inbox_view(
                &ods(GPC001),
                &open,
                2,
                Some((last.received_at, last.id.clone())),
            )
            .await
            .unwrap();
        let next: Vec<String> = next.iter().map(|t| t.id.clone()).collect();
        assert_eq!(next, [id(1), id(0)]);
    }

    fn at_second(c: TaskChange, seconds: i64) -> TaskChange {
        TaskChange {
            at: at(seconds),
            ..c
        }
    }

    /// A cancellation from the task's sender, as it arrives in an OrderResponse.
    fn arriving_cancel(identifier: &str, seconds: i64) -> TaskChange {
        TaskChange {
            change: Change::Cancel,
            by: actor("G11111116", "Mrs Melissa PARSONS", "Y00001"),
            party: Party::Sender,
            text: Some("Sent in error".to_owned()),
            expected_version: None,
            at: at(seconds),
            wire: Wire::Incoming(ReceivedUpdate {
                identifier: identifier.to_owned(),
                body: format!(r#"{{"resourceType":"OrderResponse","id":"{identifier}"}}"#),
            }),
        }
    }

    fn changed(outcome: ChangeOutcome) -> (ReceivedTask, TimelineEntry) {
        match outcome {
            ChangeOutcome::Changed { task, entry } => (task, entry),
            other => panic!("not applied: {other:?}"),
        }
    }

    /// Every change of the receiver but a note queues one update for the
    /// task's sender, in its own transaction, under its own identifier;
    /// a note, an arriving change and a refused change queue none.
    pub async fn each_change_the_sender_hears_of_queues_one_update(backend: &dyn Backend) {
        let store = backend.open().await;
        let t = task(GPC001, HUB_ASID, &["queued"], at(0));
        create(&*store, &t).await;
        let to_ross = Change::Assign {
            to: Owner {
                sds_user_id: "G50000001".into(),
                name: "Mrs Helen ROSS".into(),
            },
        };
        let changes = [
            at_second(by(gilbert(), Change::Take, None, Some(1)), 10),
            at_second(by(gilbert(), to_ross, Some("Over to Helen"), None), 20),
            at_second(
                by(ross(), Change::Note, Some("Called the patient"), None),
                30,
            ),
            at_second(by(ross(), Change::Complete, None, None), 40),
        ];
        let mut entries = Vec::new();
        for c in &changes {
            entries.push(changed(change(&*store, &t.id, c.clone()).await).1);
        }
        // Refused: nothing queued.
        let refused = change(&*store, &t.id, by(ross(), Change::Take, None, None)).await;
        assert!(
            matches!(refused, ChangeOutcome::Refused { .. }),
            "{refused:?}"
        );

        let updates = store.task_updates(&ods(GPC001), &t.id).await.unwrap();
        let versions: Vec<u32> = updates.iter().map(|u| u.entry.version).collect();
        assert_eq!(versions, [2, 3, 5], "the note (4) stays here");
        for (update, i) in updates.iter().zip([0, 1, 3]) {
            assert_eq!(update.identifier, changes[i].wire.identifier());
            assert_eq!(update.entry, entries[i]);
            assert_eq!(update.tenant, ods(GPC001));
            assert_eq!(update.task_id, t.id);
            assert_eq!(update.to_ods, ods("Y00001"));
            assert_eq!(update.to_asid, asid(HUB_ASID));
            assert_eq!(update.created_at, changes[i].at);
            assert_eq!(update.status, UpdateStatus::Pending);
            assert_eq!(update.attempts, 0);
            assert_eq!(update.next_attempt_at, Some(changes[i].at));
            assert_eq!(
                (update.http_status, &update.detail, update.finished_at),
                (None, &None, None)
            );
        }
        assert_eq!(
            updates[1].entry.owner.as_ref().unwrap().sds_user_id,
            "G50000001"
        );
        // The timeline is unchanged for its readers.
        assert_eq!(store.timeline(&ods(GPC001), &t.id).await.unwrap(), entries);

        // A rejection queues one; a cancellation that arrived queues none.
        let rejected = task(GPC001, HUB_ASID, &["rejected"], at(1));
        create(&*store, &rejected).await;
        changed(
            change(
                &*store,
                &rejected.id,
                by(gilbert(), Change::Reject, Some("Not ours"), None),
            )
            .await,
        );
        let rejects = store
            .task_updates(&ods(GPC001), &rejected.id)
            .await
            .unwrap();
        assert_eq!(rejects.len(), 1);
        assert_eq!(rejects[0].entry.state, TaskState::Rejected);
        let cancelled = task(GPC001, HUB_ASID, &["cancelled"], at(2));
        create(&*store, &cancelled).await;
        changed(
            change(
                &*store,
                &cancelled.id,
                arriving_cancel("urn:uuid:c-queued", 50),
            )
            .await,
        );
        assert_eq!(
            store
                .task_updates(&ods(GPC001), &cancelled.id)
                .await
                .unwrap(),
            vec![]
        );
        // Per tenant.
        assert_eq!(
            store.task_updates(&ods(R1A14), &t.id).await.unwrap(),
            vec![]
        );
        // Written with the change: still there after a reopen.
        drop(store);
        let store = backend.open().await;
        assert_eq!(
            store.task_updates(&ods(GPC001), &t.id).await.unwrap(),
            updates
        );
    }

    /// An update is claimed when due, by one worker at a time, and only
    /// once every lower version of its task is delivered or refused; a
    /// worker that lost its lease cannot record its attempt.
    pub async fn updates_are_claimed_in_version_order_under_a_lease(backend: &dyn Backend) {
        let store = backend.open().await;
        let a = task(GPC001, HUB_ASID, &["a"], at(0));
        let b = task(GPC001, HUB_ASID, &["b"], at(0));
        create(&*store, &a).await;
        create(&*store, &b).await;
        changed(
            change(
                &*store,
                &a.id,
                at_second(by(gilbert(), Change::Take, None, None), 100),
            )
            .await,
        );
        changed(
            change(
                &*store,
                &b.id,
                at_second(by(ross(), Change::Take, None, None), 101),
            )
            .await,
        );
        changed(
            change(
                &*store,
                &a.id,
                at_second(by(gilbert(), Change::Complete, None, None), 102),
            )
            .await,
        );
        let key = |u: &OutgoingUpdate| (u.task_id.clone(), u.entry.version);
        let keys = |us: &[OutgoingUpdate]| us.iter().map(key).collect::<Vec<_>>();
        assert_eq!(store.next_update_due().await.unwrap(), Some(at(100)));

        // Nothing is due before its time.
        assert_eq!(
            store
                .claim_updates("w1", at(99), at(130), 10)
                .await
                .unwrap(),
            vec![]
        );
        let first = store
            .claim_updates("w1", at(200), at(230), 10)
            .await
            .unwrap();
        assert_eq!(
            keys(&first),
            [(a.id.clone(), 2), (b.id.clone(), 2)],
            "a's 3 waits for its 2"
        );
        // A claimed update is what was queued, with the change it reports.
        let queued_a = store.task_updates(&ods(GPC001), &a.id).await.unwrap();
        let queued_b = store.task_updates(&ods(GPC001), &b.id).await.unwrap();
        assert_eq!(first, [queued_a[0].clone(), queued_b[0].clone()]);
        assert_eq!(
            first[0].entry,
            store.timeline(&ods(GPC001), &a.id).await.unwrap()[0]
        );
        // Leased: not claimed again, and due only when the lease runs out.
        assert_eq!(
            store
                .claim_updates("w2", at(210), at(240), 10)
                .await
                .unwrap(),
            vec![]
        );
        assert_eq!(store.next_update_due().await.unwrap(), Some(at(230)));

        // a's 2 delivered: its 3 may go.
        let mut delivered = first[0].clone();
        delivered.status = UpdateStatus::Delivered;
        delivered.attempts = 1;
        delivered.next_attempt_at = None;
        delivered.http_status = Some(201);
        delivered.finished_at = Some(at(201));
        assert!(store.finish_update("w1", &delivered).await.unwrap());
        let second = store
            .claim_updates("w2", at(210), at(240), 10)
            .await
            .unwrap();
        assert_eq!(keys(&second), [(a.id.clone(), 3)]);
        // b's 2 failed: retried later.
        let mut retry = first[1].clone();
        retry.attempts = 1;
        retry.next_attempt_at = Some(at(300));
        retry.http_status = Some(503);
        retry.detail = Some("the sender's system is unavailable".to_owned());
        assert!(store.finish_update("w1", &retry).await.unwrap());
        assert_eq!(store.next_update_due().await.unwrap(), Some(at(240)));

        // w2 died: after its lease, w3 takes a's 3 over, and w2's late
        // answer is not recorded.
        assert_eq!(
            store
                .claim_updates("w3", at(239), at(280), 10)
                .await
                .unwrap(),
            vec![]
        );
        let taken = store
            .claim_updates("w3", at(250), at(280), 1)
            .await
            .unwrap();
        assert_eq!(keys(&taken), [(a.id.clone(), 3)]);
        let mut late = second[0].clone();
        late.status = UpdateStatus::Delivered;
        late.attempts = 1;
        assert!(!store.finish_update("w2", &late).await.unwrap());
        let mut refused = taken[0].clone();
        refused.status = UpdateStatus::Refused;
        refused.attempts = 1;
        refused.next_attempt_at = None;
        refused.http_status = Some(422);
        refused.detail = Some("REFERENCE_NOT_FOUND: no such task".to_owned());
        refused.finished_at = Some(at(251));
        assert!(store.finish_update("w3", &refused).await.unwrap());
        assert!(
            !store.finish_update("w3", &refused).await.unwrap(),
            "the lease was released"
        );
        assert_eq!(
            store.task_updates(&ods(GPC001), &a.id).await.unwrap(),
            [delivered, refused]
        );

        // b's retry: due at its time, with what the last attempt left.
        assert_eq!(store.next_update_due().await.unwrap(), Some(at(300)));
        assert_eq!(
            store
                .claim_updates("w1", at(299), at(330), 10)
                .await
                .unwrap(),
            vec![]
        );
        let again = store
            .claim_updates("w1", at(300), at(330), 10)
            .await
            .unwrap();
        assert_eq!(again, [retry.clone()]);
        let mut done = retry;
        done.status = UpdateStatus::Delivered;
        done.attempts = 2;
        done.next_attempt_at = None;
        done.http_status = Some(200);
        done.detail = None;
        done.finished_at = Some(at(301));
        assert!(store.finish_update("w1", &done).await.unwrap());
        assert_eq!(store.next_update_due().await.unwrap(), None);
        assert_eq!(
            store
                .claim_updates("w1", at(9999), at(10000), 10)
                .await
                .unwrap(),
            vec![]
        );
        drop(store);
        let store = backend.open().await;
        assert_eq!(
            store.task_updates(&ods(GPC001), &b.id).await.unwrap(),
            [done]
        );
    }

    /// An update that arrives again is answered as the first time, with
    /// the body it came with, and changes nothing; even when the change
    /// it made left the task final. Identifiers are per tenant.
    pub async fn an_arriving_update_applied_before_is_a_repeat(backend: &dyn Backend) {
        let store = backend.open().await;
        let t = task(GPC001, HUB_ASID, &["repeat"], at(0));
        create(&*store, &t).await;
        changed(change(&*store, &t.id, by(gilbert(), Change::Take, None, None)).await);
        let cancel = arriving_cancel("urn:uuid:repeat-1", 200);
        let (cancelled, entry) = changed(change(&*store, &t.id, cancel.clone()).await);
        assert_eq!(
            (cancelled.life.state, cancelled.life.version),
            (TaskState::Cancelled, 3)
        );
        assert_eq!(entry.party, Party::Sender);

        let again = change(&*store, &t.id, at_second(cancel.clone(), 300)).await;
        let Wire::Incoming(received) = &cancel.wire else {
            unreachable!()
        };
        assert_eq!(
            again,
            ChangeOutcome::Repeat {
                task: cancelled.clone(),
                entry: entry.clone(),
                body: received.body.clone(),
            }
        );
        // Another identifier is a new cancellation, refused by the rules.
        let other = change(&*store, &t.id, arriving_cancel("urn:uuid:repeat-2", 300)).await;
        assert!(
            matches!(
                other,
                ChangeOutcome::Refused {
                    refusal: Refusal::AlreadyFinal(TaskState::Cancelled),
                    ..
                }
            ),
            "{other:?}"
        );
        assert_eq!(store.timeline(&ods(GPC001), &t.id).await.unwrap().len(), 2);
        assert_eq!(
            store.get_task(&ods(GPC001), &t.id).await.unwrap(),
            Some(cancelled)
        );
        assert_eq!(
            store.task_updates(&ods(GPC001), &t.id).await.unwrap().len(),
            1
        );

        // The same identifier at another organisation is not a repeat.
        let theirs = task(R1A14, HUB_ASID, &["repeat"], at(0));
        create(&*store, &theirs).await;
        let applied = store
            .change_task(&ods(R1A14), &theirs.id, cancel.clone())
            .await
            .unwrap()
            .unwrap();
        assert!(
            matches!(applied, ChangeOutcome::Changed { .. }),
            "{applied:?}"
        );
        // A repeat of an unknown task is no task at all.
        assert_eq!(
            store
                .change_task(&ods(GPC001), "no-such-id", cancel)
                .await
                .unwrap(),
            None
        );
        drop(store);
        let store = backend.open().await;
        let after_reopen = change(&*store, &t.id, arriving_cancel("urn:uuid:repeat-1", 400)).await;
        assert!(
            matches!(after_reopen, ChangeOutcome::Repeat { .. }),
            "{after_reopen:?}"
        );
    }

    /// Workers of two instances claiming at once: every due update is
    /// claimed, and by one worker only.
    pub async fn concurrent_claims_never_share_an_update(backend: &dyn Backend) {
        let stores = [backend.open().await, backend.open().await];
        let mut expected = HashSet::new();
        for i in 0..40 {
            let t = task(GPC001, HUB_ASID, &[&format!("claim-{i}")], at(i));
            create(&*stores[0], &t).await;
            let c = by(gilbert(), Change::Take, None, None);
            expected.insert(c.wire.identifier().to_owned());
            changed(change(&*stores[i as usize % 2], &t.id, c).await);
        }
        let workers: Vec<_> = (0..8)
            .map(|w| {
                let store = Arc::clone(&stores[w % 2]);
                tokio::spawn(async move {
                    let mut mine = Vec::new();
                    loop {
                        let claimed = store
                            .claim_updates(&format!("w{w}"), at(1000), at(5000), 3)
                            .await
                            .unwrap();
                        if claimed.is_empty() {
                            return mine;
                        }
                        mine.extend(claimed.into_iter().map(|u| u.identifier));
                    }
                })
            })
            .collect();
        let mut seen = HashSet::new();
        for worker in futures_join(workers).await {
            for id in worker {
                assert!(seen.insert(id.clone()), "{id} claimed twice");
            }
        }
        assert_eq!(seen, expected);
    }

    /// Instances starting together on new storage: each migrates once
    /// between them, all write the same reference data at once (as every
    /// instance seeding a new database does), and all read it back once.
    pub async fn stores_opened_together_seed_once(backend: &dyn Backend) {
        let expected = gpc_directory::demo_region();
        let opened = tokio::join!(
            backend.open(),
            backend.open(),
            backend.open(),
            backend.open()
        );
        let stores = [opened.0, opened.1, opened.2, opened.3];
        let seeded = tokio::join!(
            stores[0].upsert_reference(&expected),
            stores[1].upsert_reference(&expected),
            stores[2].upsert_reference(&expected),
            stores[3].upsert_reference(&expected),
        );
        for result in [seeded.0, seeded.1, seeded.2, seeded.3] {
            result.unwrap();
        }
        for store in &stores {
            assert_eq!(store.reference_data().await.unwrap(), expected);
        }
    }

    fn session(key: &str, start: i64, idle_secs: i64, max_secs: i64) -> WebSession {
        WebSession {
            key: key.into(),
            user: format!(r#"{{"sds_user_id":"{key}-user"}}"#),
            created_at: at(start),
            idle_until: at(start + idle_secs),
            expires_at: at(start + max_secs),
        }
    }

    /// A session made through one store is found through a second open on
    /// the same storage (another instance), and after a reopen (a restart);
    /// ending it through either ends it for both.
    pub async fn a_session_is_known_to_every_instance_until_it_ends(backend: &dyn Backend) {
        let a = backend.open().await;
        let b = backend.open().await;
        let idle = Duration::from_secs(60);
        a.start_session(&session("k1", 0, 60, 3600)).await.unwrap();
        let found = b.resume_session("k1", at(10), idle).await.unwrap().unwrap();
        assert_eq!(found.user, r#"{"sds_user_id":"k1-user"}"#);
        assert_eq!(found.created_at, at(0));
        assert_eq!(found.idle_until, at(70), "a request moves the idle end on");
        assert_eq!(found.expires_at, at(3600));
        assert!(
            b.resume_session("other", at(10), idle)
                .await
                .unwrap()
                .is_none()
        );
        drop(a);
        drop(b);
        let c = backend.open().await;
        assert!(
            c.resume_session("k1", at(20), idle)
                .await
                .unwrap()
                .is_some()
        );
        let d = backend.open().await;
        assert!(d.end_session("k1").await.unwrap());
        assert!(
            c.resume_session("k1", at(21), idle)
                .await
                .unwrap()
                .is_none()
        );
        assert!(!d.end_session("k1").await.unwrap());
    }

    /// Idle and absolute expiry: requests keep a session alive up to its
    /// absolute end and no further; a pause longer than the idle time ends it.
    pub async fn sessions_end_when_idle_and_at_their_absolute_end(backend: &dyn Backend) {
        let store = backend.open().await;
        let idle = Duration::from_secs(60);
        store
            .start_session(&session("busy", 0, 60, 100))
            .await
            .unwrap();
        store
            .start_session(&session("idle", 0, 60, 3600))
            .await
            .unwrap();
        for t in [50, 90] {
            let s = store
                .resume_session("busy", at(t), idle)
                .await
                .unwrap()
                .unwrap();
            assert!(s.idle_until <= at(100), "never past the absolute end");
        }
        assert!(
            store
                .resume_session("busy", at(100), idle)
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            store
                .resume_session("idle", at(60), idle)
                .await
                .unwrap()
                .is_none()
        );
        // An ended session stays ended, even if asked again "earlier".
        assert!(
            store
                .resume_session("idle", at(30), idle)
                .await
                .unwrap()
                .is_none()
        );
    }

    /// A pending sign-in is taken once, through any instance, and not after it expires.
    pub async fn a_sign_in_is_taken_once_and_not_after_it_expires(backend: &dyn Backend) {
        let a = backend.open().await;
        let b = backend.open().await;
        for (key, expires) in [("p1", 300), ("p2", 300)] {
            a.save_sign_in(&PendingSignIn {
                key: key.into(),
                body: format!("body of {key}"),
                expires_at: at(expires),
            })
            .await
            .unwrap();
        }
        let taken = b.take_sign_in("p1", at(10)).await.unwrap().unwrap();
        assert_eq!(taken.body, "body of p1");
        assert!(
            a.take_sign_in("p1", at(11)).await.unwrap().is_none(),
            "used once"
        );
        assert!(
            b.take_sign_in("p2", at(300)).await.unwrap().is_none(),
            "expired"
        );
        assert!(
            b.take_sign_in("p2", at(10)).await.unwrap().is_none(),
            "and gone"
        );
    }
}

/// The one list of tests, so that no backend can miss one.
macro_rules! every_test {
    ($suite:ident; $backend:path) => {
        $suite!($backend;
            reference_data_is_seeded_once,
            reference_upserts_update_by_key_and_keep_the_rest,
            reference_is_read_by_index_and_versioned,
            create_then_get_round_trips_every_field,
            create_stores_its_audit_record,
            a_duplicate_by_any_key_returns_the_first_task,
            one_key_twice_in_a_task_is_one_key,
            a_task_without_keys_is_always_created,
            the_same_key_from_another_sender_or_tenant_is_created,
            concurrent_duplicates_store_exactly_one,
            concurrent_duplicates_through_two_stores_store_exactly_one,
            crossed_keys_from_concurrent_creates_store_one_task,
            concurrent_distinct_creates_are_all_stored,
            a_failing_task_does_not_fail_its_batch,
            inbox_is_newest_first_paged_and_per_tenant,
            audit_is_queued_then_flushed_and_filtered,
            audit_records_of_one_instant_read_newest_written_first,
            tasks_and_audit_persist_across_reopen,
            ssp_audit_round_trips_and_filters,
            stores_opened_together_seed_once,
            changes_apply_in_turn_with_their_timeline,
            a_stale_or_foreign_change_writes_nothing,
            concurrent_takes_through_two_stores_have_one_winner,
            inbox_views_follow_state_and_owner,
            each_change_the_sender_hears_of_queues_one_update,
            updates_are_claimed_in_version_order_under_a_lease,
            an_arriving_update_applied_before_is_a_repeat,
            concurrent_claims_never_share_an_update,
            a_session_is_known_to_every_instance_until_it_ends,
            sessions_end_when_idle_and_at_their_absolute_end,
            a_sign_in_is_taken_once_and_not_after_it_expires,
        );
    };
}

mod sqlite {
    use super::Backend;
    use gpc_store::{SqliteStore, Store};
    use std::sync::Arc;
    use tempfile::TempDir;

    struct Sqlite(TempDir);

    #[async_trait::async_trait]
    impl Backend for Sqlite {
        async fn open(&self) -> Arc<dyn Store> {
            Arc::new(SqliteStore::open(self.0.path()).expect("open the SQLite store"))
        }
    }

    async fn backend(_test: &str) -> Option<Box<dyn Backend>> {
        Some(Box::new(Sqlite(tempfile::tempdir().unwrap())))
    }

    every_test!(conformance_suite; backend);
}

mod postgres {
    use super::Backend;
    use gpc_store::test_support::TestDatabase;
    use gpc_store::{PostgresStore, Store};
    use std::sync::Arc;

    /// Each test has a database of its own, dropped at its end.
    struct Postgres(TestDatabase);

    #[async_trait::async_trait]
    impl Backend for Postgres {
        async fn open(&self) -> Arc<dyn Store> {
            Arc::new(
                PostgresStore::connect(self.0.url())
                    .await
                    .expect("open the PostgreSQL store"),
            )
        }
    }

    async fn backend(test: &str) -> Option<Box<dyn Backend>> {
        let db = TestDatabase::create(test).await?;
        Some(Box::new(Postgres(db)))
    }

    every_test!(conformance_suite; backend);
}
