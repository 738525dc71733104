//! What only the PostgreSQL backend has: notifications between instances,
//! its schema versions, its bulk path, and the choice of backend by
//! `open_store` and `open_outbox`. Needs `TEST_DATABASE_URL`, like the
//! PostgreSQL half of the conformance suites.

// A test crate sees every dev-dependency of its package, and uses only some.
#![allow(unused_crate_dependencies)]
// Helpers outside `#[test]` functions panic on purpose too: a failure is the test's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{asid, at, audit_for, delivered, key, ods, task};
use gpc_domain::lifecycle::{Actor, Change, Party, TaskChange};
use gpc_domain::sent::{SendStatus, SentTask};
use gpc_domain::task::{ReceivedEvent, TaskType};
use gpc_store::outbox::{Outbox, PostgresOutbox, SentEvent};
use gpc_store::test_support::TestDatabase;
use gpc_store::{
    ChangeOutcome, CreateOutcome, PostgresStore, Store, StoreError, open_outbox, open_store,
};
use std::time::Duration;
use tokio::sync::broadcast;
use tokio::time::timeout;

const GPC001: &str = "GPC001";
const HUB_ASID: &str = "200000000370";

/// The next event. That nothing was announced in between is shown by
/// announcing something else and finding it next: a listener hears
/// notifications in the order their transactions committed.
async fn next<T: Clone>(events: &mut broadcast::Receiver<T>) -> T {
    timeout(Duration::from_secs(120), events.recv())
        .await
        .expect("an event within 120 s")
        .expect("an open channel")
}

/// A change of a received task made through one instance (or a CLI
/// process) reaches the live pages of every other; a refused change
/// announces nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_on_one_instance_is_announced_on_another() {
    let Some(db) = TestDatabase::create("changed_events").await else {
        return;
    };
    let a = PostgresStore::connect(db.url()).await.unwrap();
    let b = PostgresStore::connect(db.url()).await.unwrap();
    let mut on_b = b.changed_events_ready().await.unwrap();
    let t = task(GPC001, HUB_ASID, &["changed"], at(0));
    a.create_task(t.clone(), audit_for(&t, 201)).await.unwrap();
    let by = Actor {
        sds_user_id: "G13579135".into(),
        name: "Dr Nichole GILBERT".into(),
        role_code: "R0260".into(),
        role_display: "General Medical Practitioner".into(),
        organisation: ods(GPC001),
    };
    let take = TaskChange {
        change: Change::Take,
        by,
        party: Party::Receiver,
        text: None,
        expected_version: Some(1),
        at: at(1),
        wire: gpc_domain::updates::Wire::outgoing(),
    };
    let applied = a
        .change_task(&ods(GPC001), &t.id, take.clone())
        .await
        .unwrap();
    assert!(
        matches!(applied, Some(ChangeOutcome::Changed { .. })),
        "{applied:?}"
    );
    assert_eq!(
        next(&mut on_b).await,
        ReceivedEvent {
            tenant: ods(GPC001),
            task_id: t.id.clone(),
        }
    );
    let refused = a
        .change_task(&ods(GPC001), &t.id, take.clone())
        .await
        .unwrap();
    assert!(
        matches!(refused, Some(ChangeOutcome::Refused { .. })),
        "{refused:?}"
    );
    // The refusal announced nothing: the next change heard is another task's.
    let marker = task(GPC001, HUB_ASID, &["marker"], at(2));
    a.create_task(marker.clone(), audit_for(&marker, 201))
        .await
        .unwrap();
    let take_marker = TaskChange {
        wire: gpc_domain::updates::Wire::outgoing(),
        ..take
    };
    a.change_task(&ods(GPC001), &marker.id, take_marker)
        .await
        .unwrap();
    assert_eq!(
        next(&mut on_b).await,
        ReceivedEvent {
            tenant: ods(GPC001),
            task_id: marker.id.clone(),
        }
    );
    // Whether the sender heard is part of the task's page, wherever it is open.
    let now = at(2);
    let claimed = a.claim_updates("worker-a", now, at(60), 10).await.unwrap();
    assert_eq!(claimed.len(), 2, "the two takes' updates: {claimed:?}");
    let finished = |mut update: gpc_domain::updates::OutgoingUpdate| {
        update.status = gpc_domain::updates::UpdateStatus::Delivered;
        update.attempts = 1;
        update.next_attempt_at = None;
        update.finished_at = Some(now);
        update.http_status = Some(201);
        update
    };
    let (mine, others): (Vec<_>, Vec<_>) = claimed.into_iter().partition(|u| u.task_id == t.id);
    let update = finished(mine.into_iter().next().unwrap());
    assert!(a.finish_update("worker-a", &update).await.unwrap());
    assert_eq!(
        next(&mut on_b).await,
        ReceivedEvent {
            tenant: ods(GPC001),
            task_id: t.id.clone(),
        }
    );
    // An attempt whose lease was lost records and announces nothing: the
    // next heard is the marker's update.
    assert!(!a.finish_update("worker-b", &update).await.unwrap());
    let marker_update = finished(others.into_iter().next().unwrap());
    assert!(a.finish_update("worker-a", &marker_update).await.unwrap());
    assert_eq!(
        next(&mut on_b).await,
        ReceivedEvent {
            tenant: ods(GPC001),
            task_id: marker.id.clone(),
        }
    );
    let store: &dyn Store = &b;
    assert!(store.changed_events().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_created_on_one_instance_is_announced_on_another() {
    let Some(db) = TestDatabase::create("received_events").await else {
        return;
    };
    let a = PostgresStore::connect(db.url()).await.unwrap();
    let b = PostgresStore::connect(db.url()).await.unwrap();
    let mut on_b = b.received_events_ready().await.unwrap();
    let mut on_a = a.received_events_ready().await.unwrap();

    let t = task(GPC001, HUB_ASID, &["k"], at(0));
    a.create_task(t.clone(), audit_for(&t, 201)).await.unwrap();
    let expected = ReceivedEvent {
        tenant: ods(GPC001),
        task_id: t.id.clone(),
    };
    assert_eq!(next(&mut on_b).await, expected);
    // The creating instance hears its own create too: one feed for both.
    assert_eq!(next(&mut on_a).await, expected);
    // And the task is there for B to read.
    assert_eq!(
        b.get_task(&ods(GPC001), &t.id).await.unwrap(),
        Some(delivered(&t))
    );

    // A repeat stores nothing and announces nothing.
    let repeat = task(GPC001, HUB_ASID, &["k"], at(1));
    assert!(
        !b.create_task(repeat.clone(), audit_for(&repeat, 201))
            .await
            .unwrap()
            .is_created()
    );
    // Nor does a create that fails (its transaction rolls back).
    let mut clash = task(GPC001, HUB_ASID, &["other"], at(2));
    clash.id = t.id.clone();
    assert!(
        b.create_task(clash.clone(), audit_for(&clash, 201))
            .await
            .is_err()
    );

    // An explicit announcement, for tasks stored another way; heard next,
    // so neither the repeat nor the failed create announced anything.
    a.notify_received(&ods("R1A14"), "x").await;
    assert_eq!(
        next(&mut on_b).await,
        ReceivedEvent {
            tenant: ods("R1A14"),
            task_id: "x".to_owned(),
        }
    );
    // Through the trait, as the server holds it.
    let store: &dyn Store = &b;
    assert!(store.received_events().is_some());
}

/// The race behind idempotency across instances: a create whose key is
/// held by a transaction not yet committed waits for it, then returns the
/// task it committed, or stores its own if that transaction rolled back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_waits_for_an_uncommitted_holder_of_its_key() {
    let Some(db) = TestDatabase::create("uncommitted_holder").await else {
        return;
    };
    let store = std::sync::Arc::new(PostgresStore::connect(db.url()).await.unwrap());
    let template = task(GPC001, HUB_ASID, &["template"], at(0));
    store
        .create_task(template.clone(), audit_for(&template, 201))
        .await
        .unwrap();
    for commit in [true, false] {
        let held_key = format!("held-{commit}");
        let held_id = format!("other-instance-{commit}");
        // Another instance's create, stopped before its commit.
        let mut other = db.connect().await;
        let tx = other.transaction().await.unwrap();
        tx.execute(
            "INSERT INTO tasks SELECT $1, version_id, tenant, sender_asid, idempotency_keys, \
             provider_identifier, patient_id, nhs_number, patient_name, source_org_id, \
             task_type, text, received_at, sender_ods, sender_name, practitioner_sds_id, \
             practitioner_name, role_code, role_display, trace_id, resource \
             FROM tasks WHERE id = $2",
            &[&held_id, &template.id],
        )
        .await
        .unwrap();
        tx.execute(
            "INSERT INTO task_identifiers (tenant, sender_asid, system, value, task_id) \
             VALUES ($1, $2, $3, $4, $5)",
            &[
                &GPC001,
                &HUB_ASID,
                &common::CONSUMER_SYSTEM,
                &held_key,
                &held_id,
            ],
        )
        .await
        .unwrap();

        let mine = task(GPC001, HUB_ASID, &[&held_key], at(1));
        let create = {
            let (store, mine) = (std::sync::Arc::clone(&store), mine.clone());
            tokio::spawn(
                async move { store.create_task(mine.clone(), audit_for(&mine, 201)).await },
            )
        };
        // Until the create is seen waiting on the holder's lock.
        let watcher = db.connect().await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        loop {
            let waiting: i64 = watcher
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity \
                     WHERE datname = current_database() AND wait_event_type = 'Lock'",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            if waiting > 0 {
                break;
            }
            assert!(
                !create.is_finished(),
                "the create did not wait for the holder"
            );
            assert!(
                tokio::time::Instant::now() < deadline,
                "the create never waited for the holder's lock"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(!create.is_finished(), "the create waits for the holder");
        if commit {
            tx.commit().await.unwrap();
        } else {
            tx.rollback().await.unwrap();
        }
        let outcome = timeout(Duration::from_secs(120), create)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if commit {
            assert!(!outcome.is_created());
            assert_eq!(outcome.task().id, held_id);
        } else {
            assert_eq!(outcome, gpc_store::CreateOutcome::Created(delivered(&mine)));
        }
    }
}

#[tokio::test]
async fn a_failed_create_reports_no_stored_value() {
    let Some(db) = TestDatabase::create("error_text").await else {
        return;
    };
    let store = PostgresStore::connect(db.url()).await.unwrap();
    let t = task(GPC001, HUB_ASID, &[], at(0));
    store
        .create_task(t.clone(), audit_for(&t, 201))
        .await
        .unwrap();
    let mut clash = task(GPC001, HUB_ASID, &[], at(1));
    clash.id = t.id.clone();
    let err = store
        .create_task(clash.clone(), audit_for(&clash, 201))
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, StoreError::Other(_)), "{message}");
    for value in [&t.id, &t.nhs_number.as_digits(), &t.patient_name, &t.text] {
        assert!(!message.contains(value.as_str()), "{message}");
    }
}

/// Nothing was announced since the last event heard: a task enqueued now,
/// `marker`, is what is heard next.
async fn nothing_announced(
    outbox: &PostgresOutbox,
    events: &mut broadcast::Receiver<SentEvent>,
    marker: &str,
) {
    outbox.enqueue(&sent(marker)).await.unwrap();
    assert_eq!(next(events).await.task_id, marker);
}

fn sent(id: &str) -> SentTask {
    let now = jiff::Timestamp::now();
    SentTask {
        id: id.to_owned(),
        created_at: now,
        updated_at: now,
        from_ods: gpc_domain::OdsCode::parse("Y00001").unwrap(),
        from_name: "Hub".into(),
        from_asid: gpc_domain::Asid::parse("200000000370"),
        user_sds_id: "G11111116".into(),
        user_id: "3".into(),
        user_name: "Mrs Melissa PARSONS".into(),
        user_role_code: "R0260".into(),
        user_role_display: "General Medical Practitioner".into(),
        nhs_number: gpc_domain::NhsNumber::parse("9476719931").unwrap(),
        patient_name: "Mrs Minnie DAWES".into(),
        to_ods: gpc_domain::OdsCode::parse("GPC001").unwrap(),
        to_name: "GP Connect Demonstrator".into(),
        to_telephone: "01632 960001".into(),
        to_address: "1 Road".into(),
        endpoint: "http://127.0.0.1:1/GPC001/DSTU2/1".into(),
        to_asid: gpc_domain::Asid::parse("200000000359"),
        task_type: TaskType::InformationOnly,
        text: "For information".into(),
        identifier: format!("urn:uuid:{}", uuid::Uuid::new_v4()),
        status: SendStatus::Queued,
        attempts: 0,
        cycle_attempts: 0,
        next_attempt_at: Some(now),
        provider_task_id: None,
        delivered_at: None,
        reason: None,
        remote: None,
        cancellation: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_of_a_sent_task_is_announced_on_every_instance() {
    let Some(db) = TestDatabase::create("sent_events").await else {
        return;
    };
    let a = PostgresOutbox::connect(db.url()).await.unwrap();
    let b = PostgresOutbox::connect(db.url()).await.unwrap();
    let mut on_b = b.sent_events_ready().await.unwrap();
    let event = SentEvent {
        from_ods: gpc_domain::OdsCode::parse("Y00001").unwrap(),
        task_id: "s1".to_owned(),
    };
    let t = sent("s1");
    a.enqueue(&t).await.unwrap();
    assert_eq!(next(&mut on_b).await, event);

    let now = t.created_at;
    let claimed = a
        .claim_due("a", now, now + jiff::SignedDuration::from_secs(30), 1)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    // A claim changes only the lease: nothing to show.
    nothing_announced(&a, &mut on_b, "m1").await;
    let mut sending = claimed[0].clone();
    sending.status = SendStatus::Sending;
    assert!(a.mark("a", &sending).await.unwrap());
    assert_eq!(next(&mut on_b).await, event);
    // A refused write announces nothing.
    assert!(!b.mark("b", &sending).await.unwrap());
    nothing_announced(&a, &mut on_b, "m2").await;
    let outbox: &dyn Outbox = &b;
    assert!(outbox.sent_events().is_some());
}

/// A change the recipient reports and the sender's cancellation reach the
/// pages of every instance; what changes nothing (a repeat, a refused
/// request, a claim, a write without the lease) announces nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reported_changes_and_cancellations_are_announced_on_every_instance() {
    use gpc_domain::lifecycle::{Owner, TaskState, TimelineEntry};
    use gpc_domain::updates::{
        Cancellation, ReceivedUpdate, RemoteState, RemoteUpdate, UpdateStatus,
    };
    let Some(db) = TestDatabase::create("sent_update_events").await else {
        return;
    };
    let a = PostgresOutbox::connect(db.url()).await.unwrap();
    let b = PostgresOutbox::connect(db.url()).await.unwrap();
    let mut on_b = b.sent_events_ready().await.unwrap();
    let event = SentEvent {
        from_ods: gpc_domain::OdsCode::parse("Y00001").unwrap(),
        task_id: "s2".to_owned(),
    };
    let mut t = sent("s2");
    let now = t.created_at;
    t.status = SendStatus::Delivered;
    t.next_attempt_at = None;
    t.provider_task_id = Some("p-s2".into());
    t.delivered_at = Some(now);
    t.remote = Some(RemoteState {
        state: TaskState::Received,
        version: 1,
        owner: None,
        at: now,
    });
    a.enqueue(&t).await.unwrap();
    assert_eq!(next(&mut on_b).await, event);

    let by = Actor {
        sds_user_id: "G13579135".into(),
        name: "Dr Nichole GILBERT".into(),
        role_code: "R0260".into(),
        role_display: "General Medical Practitioner".into(),
        organisation: ods(GPC001),
    };
    let take = RemoteUpdate {
        entry: TimelineEntry {
            version: 2,
            at: now,
            by: by.clone(),
            party: Party::Receiver,
            state: TaskState::Accepted,
            owner: Some(Owner {
                sds_user_id: by.sds_user_id.clone(),
                name: by.name.clone(),
            }),
            note: None,
        },
        received: Some(ReceivedUpdate {
            identifier: "urn:uuid:take-s2".into(),
            body: "{}".into(),
        }),
    };
    a.apply_remote("s2", &take).await.unwrap().unwrap();
    assert_eq!(next(&mut on_b).await, event);
    a.apply_remote("s2", &take).await.unwrap().unwrap();
    nothing_announced(&a, &mut on_b, "m3").await;

    let cancellation = Cancellation {
        identifier: "urn:uuid:cancel-s2".into(),
        reason: "Sent in error".into(),
        by: Actor {
            organisation: gpc_domain::OdsCode::parse("Y00001").unwrap(),
            ..by
        },
        requested_at: now,
        seen_version: 2,
        status: UpdateStatus::Pending,
        attempts: 0,
        next_attempt_at: Some(now),
        http_status: None,
        detail: None,
        finished_at: None,
    };
    a.request_cancel("s2", &cancellation)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(next(&mut on_b).await, event);
    assert!(
        a.request_cancel("s2", &cancellation)
            .await
            .unwrap()
            .is_none()
    );
    let claimed = a
        .claim_cancellations("a", now, now + jiff::SignedDuration::from_secs(30), 10)
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    nothing_announced(&a, &mut on_b, "m4").await;
    let mut finished = claimed[0].clone();
    if let Some(c) = finished.cancellation.as_mut() {
        c.attempts = 1;
        c.next_attempt_at = Some(now + jiff::SignedDuration::from_secs(1));
    }
    assert!(!b.finish_cancellation("b", &finished, None).await.unwrap());
    nothing_announced(&a, &mut on_b, "m5").await;
    assert!(a.finish_cancellation("a", &finished, None).await.unwrap());
    assert_eq!(next(&mut on_b).await, event);
}

#[tokio::test]
async fn schema_versions_are_recorded_and_a_newer_database_is_refused() {
    let Some(db) = TestDatabase::create("versions").await else {
        return;
    };
    drop(PostgresStore::connect(db.url()).await.unwrap());
    drop(PostgresOutbox::connect(db.url()).await.unwrap());
    let client = db.connect().await;
    let rows = client
        .query(
            "SELECT component, version FROM schema_migrations ORDER BY component, version",
            &[],
        )
        .await
        .unwrap();
    let versions: Vec<(String, i32)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        versions,
        [
            ("outbox".to_owned(), 1),
            ("outbox".to_owned(), 2),
            ("outbox".to_owned(), 3),
            ("store".to_owned(), 1),
            ("store".to_owned(), 2),
            ("store".to_owned(), 3),
            ("store".to_owned(), 4),
            ("store".to_owned(), 5),
            ("store".to_owned(), 6)
        ]
    );
    // A second start finds nothing to do.
    drop(PostgresStore::connect(db.url()).await.unwrap());
    client
        .execute(
            "INSERT INTO schema_migrations (component, version, applied_at) \
             VALUES ('store', 99, 0)",
            &[],
        )
        .await
        .unwrap();
    match PostgresStore::connect(db.url()).await {
        Err(StoreError::Other(m)) => assert!(m.contains("newer"), "{m}"),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("a newer database was opened"),
    }
}

#[tokio::test]
async fn the_inbox_page_is_read_through_its_index() {
    let Some(db) = TestDatabase::create("inbox_index").await else {
        return;
    };
    drop(PostgresStore::connect(db.url()).await.unwrap());
    let client = db.connect().await;
    // On an empty table the planner would rightly prefer a scan; what is
    // checked is that the keyset query can use the index at all.
    client
        .batch_execute("SET enable_seqscan = off")
        .await
        .unwrap();
    let plan: Vec<String> = client
        .query(
            "EXPLAIN SELECT id FROM tasks WHERE tenant = $1 AND (received_at, id) < ($2, $3) \
             ORDER BY received_at DESC, id DESC LIMIT 50",
            &[&GPC001, &0i64, &"x"],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let plan = plan.join("\n");
    assert!(plan.contains("tasks_inbox"), "{plan}");
    assert!(!plan.contains("Sort"), "{plan}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_insert_stores_every_task_and_keeps_the_first_holder_of_a_key() {
    let Some(db) = TestDatabase::create("bulk").await else {
        return;
    };
    let store = PostgresStore::connect(db.url()).await.unwrap();
    let first = task(GPC001, HUB_ASID, &["shared"], at(0));
    let mut tasks = vec![first.clone()];
    tasks.extend((1..5000).map(|i| task(GPC001, HUB_ASID, &[&format!("k{i}")], at(i))));
    tasks.push(task(GPC001, HUB_ASID, &["shared"], at(6000)));
    store.bulk_insert(tasks).await.unwrap();
    assert_eq!(store.count_tasks(&ods(GPC001)).await.unwrap(), 5001);
    assert_eq!(
        store
            .find_by_identifier(&ods(GPC001), &asid(HUB_ASID), &key("shared"))
            .await
            .unwrap(),
        Some(delivered(&first))
    );
}

#[tokio::test]
async fn open_store_and_open_outbox_choose_the_backend() {
    let dir = tempfile::tempdir().unwrap();
    let store = open_store(None, dir.path()).await.unwrap();
    assert!(store.received_events().is_none());
    assert!(dir.path().join(gpc_store::DATABASE_FILE).is_file());
    let outbox = open_outbox(None, dir.path()).await.unwrap();
    assert!(outbox.sent_events().is_none());
    assert!(dir.path().join(gpc_store::outbox::OUTBOX_FILE).is_file());

    let Some(db) = TestDatabase::create("open").await else {
        return;
    };
    let empty = tempfile::tempdir().unwrap();
    let store = open_store(Some(db.url()), empty.path()).await.unwrap();
    assert!(store.received_events().is_some());
    let outbox = open_outbox(Some(db.url()), empty.path()).await.unwrap();
    assert!(outbox.sent_events().is_some());
    // PostgreSQL leaves the data directory alone.
    assert_eq!(std::fs::read_dir(empty.path()).unwrap().count(), 0);
    assert!(matches!(
        open_store(Some("postgres://[::1"), empty.path()).await,
        Err(StoreError::Other(_))
    ));
}

/// Runs `create` up to its first wait, with no waker: by then it has
/// queued itself for the group commit.
fn queue(
    mut create: std::pin::Pin<
        Box<dyn Future<Output = Result<CreateOutcome, StoreError>> + Send + '_>,
    >,
) -> std::pin::Pin<Box<dyn Future<Output = Result<CreateOutcome, StoreError>> + Send + '_>> {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    assert!(
        create.as_mut().poll(&mut cx).is_pending(),
        "a create answered while the keys' table was locked"
    );
    create
}

/// Holds off every insert of a key until the returned transaction ends.
async fn lock_the_keys(db: &TestDatabase) -> tokio_postgres::Client {
    let other = db.connect().await;
    other
        .batch_execute("BEGIN; LOCK TABLE task_identifiers IN EXCLUSIVE MODE")
        .await
        .unwrap();
    other
}

/// How many transactions wrote the tasks `ids` (rows written by one
/// transaction share its `xmin`).
async fn transactions_that_wrote(db: &TestDatabase, ids: &[String]) -> i64 {
    db.connect()
        .await
        .query_one(
            "SELECT count(DISTINCT xmin::text) FROM tasks WHERE id = ANY($1)",
            &[&ids],
        )
        .await
        .unwrap()
        .get(0)
}

/// Group commit: creates waiting at the same moment are written by a few
/// transactions, not one each; duplicates among them still make one task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creates_waiting_together_share_transactions_and_duplicates_among_them_make_one_task() {
    let Some(db) = TestDatabase::create("group_commit").await else {
        return;
    };
    let store = PostgresStore::connect(db.url()).await.unwrap();
    let distinct: Vec<_> = (0..40)
        .map(|i| task(GPC001, HUB_ASID, &[&format!("distinct-{i}")], at(i)))
        .collect();
    let repeats: Vec<_> = (0..5)
        .map(|i| task(GPC001, HUB_ASID, &["the-same-key"], at(100 + i)))
        .collect();
    let lock = lock_the_keys(&db).await;
    let queued: Vec<_> = distinct
        .iter()
        .chain(&repeats)
        .map(|t| queue(store.create_task(t.clone(), audit_for(t, 201))))
        .collect();
    lock.batch_execute("COMMIT").await.unwrap();
    let outcomes = futures_util::future::join_all(queued).await;
    let outcomes: Vec<CreateOutcome> = outcomes.into_iter().map(Result::unwrap).collect();

    for (t, outcome) in distinct.iter().zip(&outcomes) {
        assert_eq!(outcome, &CreateOutcome::Created(delivered(t)));
    }
    let of_repeats = &outcomes[distinct.len()..];
    let created: Vec<_> = of_repeats.iter().filter(|o| o.is_created()).collect();
    assert_eq!(created.len(), 1, "one of the repeats is stored");
    let first = created[0].task().id.clone();
    assert!(of_repeats.iter().all(|o| o.task().id == first));
    assert_eq!(store.count_tasks(&ods(GPC001)).await.unwrap(), 41);

    // Four batches at most were taken while the lock held them up, and
    // the rest were queued together behind them.
    let ids: Vec<String> = distinct.iter().map(|t| t.id.clone()).collect();
    let transactions = transactions_that_wrote(&db, &ids).await;
    assert!(
        (1..=8).contains(&transactions),
        "40 creates queued together took {transactions} transactions"
    );
}

/// A create that fails in a batch (here its task id is taken) fails alone:
/// the others of its batch are stored, and it leaves no key behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_failing_in_a_batch_fails_alone() {
    let Some(db) = TestDatabase::create("group_commit_failure").await else {
        return;
    };
    let store = PostgresStore::connect(db.url()).await.unwrap();
    let taken = task(GPC001, HUB_ASID, &["taken"], at(0));
    store
        .create_task(taken.clone(), audit_for(&taken, 201))
        .await
        .unwrap();
    let mut clash = task(GPC001, HUB_ASID, &["clash-key"], at(1));
    clash.id = taken.id.clone();
    let others: Vec<_> = (0..10)
        .map(|i| task(GPC001, HUB_ASID, &[&format!("other-{i}")], at(2 + i)))
        .collect();
    let lock = lock_the_keys(&db).await;
    let clash_create = queue(store.create_task(clash.clone(), audit_for(&clash, 201)));
    let queued: Vec<_> = others
        .iter()
        .map(|t| queue(store.create_task(t.clone(), audit_for(t, 201))))
        .collect();
    lock.batch_execute("COMMIT").await.unwrap();
    let (failed, outcomes) = tokio::join!(clash_create, futures_util::future::join_all(queued));
    assert!(matches!(failed, Err(StoreError::Other(_))), "{failed:?}");
    for (t, outcome) in others.iter().zip(outcomes) {
        assert_eq!(outcome.unwrap(), CreateOutcome::Created(delivered(t)));
    }
    assert_eq!(store.count_tasks(&ods(GPC001)).await.unwrap(), 11);
    let left: i64 = db
        .connect()
        .await
        .query_one(
            "SELECT count(*) FROM task_identifiers WHERE value = 'clash-key'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0, "the failed create's key was taken back");
}

/// Every task of batches too large for one notification is announced on
/// another instance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_task_of_a_large_batch_is_announced_on_another_instance() {
    let Some(db) = TestDatabase::create("group_commit_announce").await else {
        return;
    };
    let a = PostgresStore::connect(db.url()).await.unwrap();
    let b = PostgresStore::connect(db.url()).await.unwrap();
    let mut on_b = b.received_events_ready().await.unwrap();
    let tasks: Vec<_> = (0..300)
        .map(|i| task(GPC001, HUB_ASID, &[&format!("announced-{i}")], at(i)))
        .collect();
    let lock = lock_the_keys(&db).await;
    let queued: Vec<_> = tasks
        .iter()
        .map(|t| queue(a.create_task(t.clone(), audit_for(t, 201))))
        .collect();
    lock.batch_execute("COMMIT").await.unwrap();
    for outcome in futures_util::future::join_all(queued).await {
        assert!(outcome.unwrap().is_created());
    }
    let mut heard = std::collections::HashSet::new();
    while heard.len() < tasks.len() {
        let event = next(&mut on_b).await;
        assert_eq!(event.tenant, ods(GPC001));
        heard.insert(event.task_id);
    }
    let ids: std::collections::HashSet<String> = tasks.iter().map(|t| t.id.clone()).collect();
    assert_eq!(heard, ids);
}
