//! The sender's outbox: durable before the first attempt, claimed under a
//! lease by one worker at a time, every attempt recorded. Written once
//! against `Arc<dyn Outbox>` and run on every backend, as
//! `store_conformance.rs` is; the PostgreSQL run needs `TEST_DATABASE_URL`.

// A test crate sees every dev-dependency of its package, and uses only some.
#![allow(unused_crate_dependencies)]
// Helpers outside `#[test]` functions panic on purpose too: a failure is the test's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gpc_domain::lifecycle::{Actor, Owner, Party, TaskState, TimelineEntry};
use gpc_domain::sent::{Attempt, SendStatus, SentTask};
use gpc_domain::task::TaskType;
use gpc_domain::updates::{Cancellation, ReceivedUpdate, RemoteState, RemoteUpdate, UpdateStatus};
use gpc_store::outbox::{Outbox, RemoteOutcome};
use jiff::{SignedDuration, Timestamp};
use std::collections::HashSet;
use std::sync::Arc;

/// One test's own storage. `open` may be called again, after the previous
/// outbox is dropped or while it is open (a second instance).
#[async_trait::async_trait]
pub trait Backend: Send + Sync {
    async fn open(&self) -> Arc<dyn Outbox>;
}

macro_rules! outbox_suite {
    ($backend:path) => {
        outbox_suite!($backend;
            a_task_round_trips_and_survives_reopening,
            claims_are_exclusive_until_the_lease_runs_out,
            only_a_resting_failure_can_be_requeued,
            list_is_per_sender_newest_first,
            concurrent_claims_never_share_a_task,
            a_task_left_by_a_dead_instance_is_taken_over_by_another,
            remote_state_round_trips_with_a_cancellation,
            reported_changes_apply_once_and_in_version_order,
            a_cancellation_is_asked_only_of_an_open_delivered_task,
            cancellations_are_claimed_under_a_lease_and_finished,
            a_late_answer_to_a_cancellation_leaves_the_newer_state,
            reported_changes_at_once_each_get_their_own_answer,
            waiting_counts_what_is_still_to_be_sent,
        );
    };
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

    fn task(id: &str, created_at: Timestamp) -> SentTask {
        SentTask {
            id: id.to_owned(),
            created_at,
            updated_at: created_at,
            from_ods: gpc_domain::OdsCode::parse("Y00001").unwrap(),
            from_name: "North Lincolnshire Extended Access Hub".into(),
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
            to_address: "1 Road, Scunthorpe, DN1 1AA".into(),
            endpoint: "http://127.0.0.1:1/GPC001/DSTU2/1".into(),
            to_asid: gpc_domain::Asid::parse("200000000359"),
            task_type: TaskType::ActionNeeded,
            text: "Please review".into(),
            identifier: format!("urn:uuid:{}", uuid::Uuid::new_v4()),
            status: SendStatus::Queued,
            attempts: 0,
            cycle_attempts: 0,
            next_attempt_at: Some(created_at),
            provider_task_id: None,
            delivered_at: None,
            reason: None,
            remote: None,
            cancellation: None,
        }
    }

    fn secs(n: i64) -> SignedDuration {
        SignedDuration::from_secs(n)
    }

    fn ods(code: &str) -> gpc_domain::OdsCode {
        gpc_domain::OdsCode::parse(code).unwrap()
    }

    /// A task the recipient holds as `provider_task_id`, delivered at `at`.
    fn delivered(id: &str, provider_task_id: &str, at: Timestamp) -> SentTask {
        SentTask {
            status: SendStatus::Delivered,
            attempts: 1,
            cycle_attempts: 1,
            next_attempt_at: None,
            provider_task_id: Some(provider_task_id.to_owned()),
            delivered_at: Some(at),
            remote: Some(RemoteState {
                state: TaskState::Received,
                version: 1,
                owner: None,
                at,
            }),
            ..task(id, at)
        }
    }

    fn gilbert() -> Actor {
        Actor {
            sds_user_id: "G13579135".into(),
            name: "Dr Nichole GILBERT".into(),
            role_code: "R0260".into(),
            role_display: "General Medical Practitioner".into(),
            organisation: ods("GPC001"),
        }
    }

    fn parsons() -> Actor {
        Actor {
            sds_user_id: "G11111116".into(),
            name: "Mrs Melissa PARSONS".into(),
            role_code: "R0260".into(),
            role_display: "General Medical Practitioner".into(),
            organisation: ods("Y00001"),
        }
    }

    /// A change the recipient made at version `version`.
    fn entry(version: u32, state: TaskState, at: Timestamp) -> TimelineEntry {
        let owned = matches!(state, TaskState::Accepted | TaskState::Completed);
        TimelineEntry {
            version,
            at,
            by: gilbert(),
            party: Party::Receiver,
            state,
            owner: owned.then(|| Owner {
                sds_user_id: "G13579135".into(),
                name: "Dr Nichole GILBERT".into(),
            }),
            note: (state == TaskState::Completed).then(|| "Booked a review".to_owned()),
        }
    }

    /// As it arrives in an OrderResponse with `identifier`.
    fn posted(entry: TimelineEntry, identifier: &str) -> RemoteUpdate {
        RemoteUpdate {
            entry,
            received: Some(ReceivedUpdate {
                identifier: identifier.to_owned(),
                body: format!(r#"{{"resourceType":"OrderResponse","id":"{identifier}"}}"#),
            }),
        }
    }

    fn remote_of(e: &TimelineEntry) -> RemoteState {
        RemoteState {
            state: e.state,
            version: e.version,
            owner: e.owner.clone(),
            at: e.at,
        }
    }

    /// The sender's cancellation, asked for at `at`.
    fn cancellation(at: Timestamp) -> Cancellation {
        Cancellation {
            identifier: format!("urn:uuid:{}", uuid::Uuid::new_v4()),
            reason: "Sent to the wrong practice".into(),
            by: parsons(),
            requested_at: at,
            seen_version: 1,
            status: UpdateStatus::Pending,
            attempts: 0,
            next_attempt_at: Some(at),
            http_status: None,
            detail: None,
            finished_at: None,
        }
    }

    pub async fn a_task_round_trips_and_survives_reopening(backend: &dyn Backend) {
        let now = Timestamp::now();
        let t = task("a", now);
        {
            let outbox = backend.open().await;
            outbox.enqueue(&t).await.unwrap();
        }
        let outbox = backend.open().await;
        assert_eq!(outbox.get("a").await.unwrap(), Some(t));
        assert_eq!(outbox.get("nope").await.unwrap(), None);
    }

    pub async fn claims_are_exclusive_until_the_lease_runs_out(backend: &dyn Backend) {
        let outbox = backend.open().await;
        let now = Timestamp::now();
        outbox.enqueue(&task("due", now)).await.unwrap();
        let mut later = task("later", now);
        later.next_attempt_at = Some(now + secs(60));
        outbox.enqueue(&later).await.unwrap();

        let claimed = outbox
            .claim_due("w1", now, now + secs(30), 10)
            .await
            .unwrap();
        assert_eq!(
            claimed.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(),
            ["due"]
        );
        // Another worker gets nothing while the lease holds.
        assert!(
            outbox
                .claim_due("w2", now, now + secs(30), 10)
                .await
                .unwrap()
                .is_empty()
        );
        let mut sending = claimed[0].clone();
        sending.status = SendStatus::Sending;
        sending.next_attempt_at = None;
        assert!(outbox.mark("w1", &sending).await.unwrap());
        assert!(
            !outbox.mark("w2", &sending).await.unwrap(),
            "not w2's lease"
        );
        assert!(
            outbox
                .claim_due("w2", now + secs(10), now + secs(40), 10)
                .await
                .unwrap()
                .is_empty()
        );
        // w1 died: after the lease, w2 takes the task over.
        let taken = outbox
            .claim_due("w2", now + secs(31), now + secs(60), 10)
            .await
            .unwrap();
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].status, SendStatus::Sending);
        // w1's late answer is refused; w2's is recorded.
        let mut done = taken[0].clone();
        done.status = SendStatus::Delivered;
        done.attempts = 1;
        done.provider_task_id = Some("p1".into());
        let attempt = Attempt {
            task_id: "due".into(),
            number: 1,
            started_at: now,
            finished_at: now,
            outcome: SendStatus::Delivered,
            http_status: Some(201),
            detail: "ok".into(),
        };
        assert!(!outbox.finish_attempt("w1", &done, &attempt).await.unwrap());
        assert!(outbox.finish_attempt("w2", &done, &attempt).await.unwrap());
        assert_eq!(
            outbox.get("due").await.unwrap().unwrap().status,
            SendStatus::Delivered
        );
        assert_eq!(outbox.attempts("due").await.unwrap(), vec![attempt]);
        // Delivered tasks are never claimed again.
        assert!(
            outbox
                .claim_due("w3", now + secs(3600), now + secs(3700), 10)
                .await
                .unwrap()
                .iter()
                .all(|t| t.id != "due")
        );
    }

    pub async fn only_a_resting_failure_can_be_requeued(backend: &dyn Backend) {
        let outbox = backend.open().await;
        let now = Timestamp::now();
        let mut failed = task("f", now);
        failed.status = SendStatus::Failed;
        failed.next_attempt_at = None;
        failed.cycle_attempts = 4;
        failed.attempts = 4;
        failed.reason = Some("down".into());
        outbox.enqueue(&failed).await.unwrap();
        outbox.enqueue(&task("q", now)).await.unwrap();
        assert!(outbox.requeue("q", now).await.unwrap().is_none());
        let again = outbox.requeue("f", now).await.unwrap().unwrap();
        assert_eq!(again.status, SendStatus::Queued);
        assert_eq!(again.cycle_attempts, 0);
        assert_eq!(again.attempts, 4, "the attempt history is kept");
        assert_eq!(again.reason, None);
        assert!(
            outbox.requeue("f", now).await.unwrap().is_none(),
            "already queued"
        );
        assert_eq!(outbox.next_due().await.unwrap(), Some(now));
    }

    pub async fn list_is_per_sender_newest_first(backend: &dyn Backend) {
        let outbox = backend.open().await;
        let now = Timestamp::now();
        for (i, id) in ["old", "mid", "new"].iter().enumerate() {
            outbox
                .enqueue(&task(id, now + secs(i as i64)))
                .await
                .unwrap();
        }
        let mut other = task("other", now);
        other.from_ods = gpc_domain::OdsCode::parse("GPC001").unwrap();
        outbox.enqueue(&other).await.unwrap();
        let ids: Vec<String> = outbox
            .list(&gpc_domain::OdsCode::parse("Y00001").unwrap(), 10)
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.id)
            .collect();
        assert_eq!(ids, ["new", "mid", "old"]);
        assert_eq!(
            outbox
                .list(&gpc_domain::OdsCode::parse("Y00001").unwrap(), 2)
                .await
                .unwrap()
                .len(),
            2
        );
        assert_eq!(
            outbox
                .list(&gpc_domain::OdsCode::parse("GPC001").unwrap(), 10)
                .await
                .unwrap()
                .len(),
            1
        );
    }

    /// Workers on several instances claiming at once: every due task is
    /// claimed, and by one worker only.
    pub async fn concurrent_claims_never_share_a_task(backend: &dyn Backend) {
        let outboxes = [backend.open().await, backend.open().await];
        let now = Timestamp::now();
        let ids: Vec<String> = (0..60).map(|i| format!("t{i:02}")).collect();
        for id in &ids {
            outboxes[0].enqueue(&task(id, now)).await.unwrap();
        }
        let workers: Vec<_> = (0..6)
            .map(|w| {
                let outbox = Arc::clone(&outboxes[w % 2]);
                tokio::spawn(async move {
                    let mut mine = Vec::new();
                    loop {
                        let claimed = outbox
                            .claim_due(&format!("w{w}"), now, now + secs(60), 4)
                            .await
                            .unwrap();
                        if claimed.is_empty() {
                            return mine;
                        }
                        mine.extend(claimed.into_iter().map(|t| t.id));
                    }
                })
            })
            .collect();
        let mut seen = HashSet::new();
        for worker in workers {
            for id in worker.await.unwrap() {
                assert!(seen.insert(id.clone()), "{id} claimed twice");
            }
        }
        assert_eq!(seen.len(), ids.len());
    }

    /// Instance A claims a task and dies; instance B takes it over once the
    /// lease has run out, and A's late answer is refused.
    pub async fn a_task_left_by_a_dead_instance_is_taken_over_by_another(backend: &dyn Backend) {
        let a = backend.open().await;
        let b = backend.open().await;
        let now = Timestamp::now();
        a.enqueue(&task("left", now)).await.unwrap();
        let claimed = a.claim_due("a", now, now + secs(30), 10).await.unwrap();
        assert_eq!(claimed.len(), 1);
        let mut sending = claimed[0].clone();
        sending.status = SendStatus::Sending;
        sending.next_attempt_at = None;
        assert!(a.mark("a", &sending).await.unwrap());
        assert!(
            b.claim_due("b", now + secs(29), now + secs(60), 10)
                .await
                .unwrap()
                .is_empty()
        );
        drop(a);
        let taken = b
            .claim_due("b", now + secs(31), now + secs(90), 10)
            .await
            .unwrap();
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].status, SendStatus::Sending, "as A left it");
        let mut done = taken[0].clone();
        done.status = SendStatus::Delivered;
        done.attempts = 1;
        let attempt = Attempt {
            task_id: "left".into(),
            number: 1,
            started_at: now + secs(31),
            finished_at: now + secs(32),
            outcome: SendStatus::Delivered,
            http_status: Some(201),
            detail: "ok".into(),
        };
        let a_again = backend.open().await;
        assert!(!a_again.finish_attempt("a", &done, &attempt).await.unwrap());
        assert!(b.finish_attempt("b", &done, &attempt).await.unwrap());
        assert_eq!(
            a_again.get("left").await.unwrap().unwrap().status,
            SendStatus::Delivered
        );
        assert_eq!(a_again.attempts("left").await.unwrap(), vec![attempt]);
    }

    /// What is written with a task comes back, the recipient's state and
    /// a cancellation included, every field of them.
    pub async fn remote_state_round_trips_with_a_cancellation(backend: &dyn Backend) {
        let now = Timestamp::now();
        let mut t = delivered("rt", "p-rt", now);
        t.remote = Some(remote_of(&entry(2, TaskState::Accepted, now + secs(1))));
        let mut c = cancellation(now + secs(2));
        c.status = UpdateStatus::Refused;
        c.attempts = 3;
        c.next_attempt_at = None;
        c.http_status = Some(409);
        c.detail = Some("the task was completed at 10:40".into());
        c.finished_at = Some(now + secs(3));
        t.cancellation = Some(c);
        {
            let outbox = backend.open().await;
            outbox.enqueue(&t).await.unwrap();
        }
        let outbox = backend.open().await;
        assert_eq!(outbox.get("rt").await.unwrap(), Some(t.clone()));
        assert_eq!(outbox.list(&ods("Y00001"), 10).await.unwrap(), [t.clone()]);
        // A task marked delivered by its worker keeps what it was given.
        let mut queued = task("rt2", now);
        outbox.enqueue(&queued).await.unwrap();
        let claimed = outbox
            .claim_due("w", now, now + secs(30), 10)
            .await
            .unwrap();
        assert_eq!(claimed, [queued.clone()]);
        queued = SentTask {
            id: "rt2".into(),
            identifier: queued.identifier.clone(),
            ..delivered("rt2", "p-rt2", now)
        };
        let attempt = Attempt {
            task_id: "rt2".into(),
            number: 1,
            started_at: now,
            finished_at: now,
            outcome: SendStatus::Delivered,
            http_status: Some(201),
            detail: "ok".into(),
        };
        assert!(outbox.finish_attempt("w", &queued, &attempt).await.unwrap());
        assert_eq!(outbox.get("rt2").await.unwrap(), Some(queued));
    }

    /// Changes the recipient reports: the highest version wins, an older
    /// one arriving late and a repeat change nothing, and a repeat gets
    /// the body it was first answered with.
    pub async fn reported_changes_apply_once_and_in_version_order(backend: &dyn Backend) {
        let outbox = backend.open().await;
        let now = Timestamp::now();
        let t = delivered("d", "p-1", now);
        outbox.enqueue(&t).await.unwrap();
        let mut sending = task("s", now);
        sending.provider_task_id = Some("p-2".into());
        sending.status = SendStatus::Sending;
        outbox.enqueue(&sending).await.unwrap();

        assert_eq!(
            outbox.find_delivered(&ods("Y00001"), "p-1").await.unwrap(),
            Some(t.clone())
        );
        assert_eq!(
            outbox.find_delivered(&ods("R1A14"), "p-1").await.unwrap(),
            None
        );
        assert_eq!(
            outbox.find_delivered(&ods("Y00001"), "p-2").await.unwrap(),
            None,
            "not delivered"
        );
        assert_eq!(
            outbox.find_delivered(&ods("Y00001"), "p-3").await.unwrap(),
            None
        );

        let taken = entry(2, TaskState::Accepted, now + secs(10));
        let take = posted(taken.clone(), "urn:uuid:take");
        let applied = outbox.apply_remote("d", &take).await.unwrap().unwrap();
        let after_take = SentTask {
            remote: Some(remote_of(&taken)),
            ..t.clone()
        };
        assert_eq!(applied, RemoteOutcome::Applied(after_take.clone()));
        assert_eq!(outbox.get("d").await.unwrap(), Some(after_take.clone()));

        let body = take.received.as_ref().unwrap().body.clone();
        assert_eq!(
            outbox.apply_remote("d", &take).await.unwrap(),
            Some(RemoteOutcome::Repeat {
                task: after_take.clone(),
                body: body.clone()
            })
        );
        // A repeat is known by its identifier, whatever it says.
        let mut altered = take.clone();
        altered.entry.version = 9;
        assert!(matches!(
            outbox.apply_remote("d", &altered).await.unwrap(),
            Some(RemoteOutcome::Repeat { .. })
        ));

        // Out of order: 4 arrives before 3.
        let done = entry(4, TaskState::Completed, now + secs(40));
        let applied = outbox
            .apply_remote("d", &posted(done.clone(), "urn:uuid:done"))
            .await
            .unwrap()
            .unwrap();
        let after_done = SentTask {
            remote: Some(remote_of(&done)),
            ..t.clone()
        };
        assert_eq!(applied, RemoteOutcome::Applied(after_done.clone()));
        let reassigned = entry(3, TaskState::Accepted, now + secs(30));
        assert_eq!(
            outbox
                .apply_remote("d", &posted(reassigned.clone(), "urn:uuid:assign"))
                .await
                .unwrap(),
            Some(RemoteOutcome::Late(after_done.clone()))
        );
        // The same version again under another identifier is late too.
        assert_eq!(
            outbox
                .apply_remote("d", &posted(done.clone(), "urn:uuid:done-again"))
                .await
                .unwrap(),
            Some(RemoteOutcome::Late(after_done.clone()))
        );
        // A late arrival was not kept: arriving again, it is late again.
        assert_eq!(
            outbox
                .apply_remote("d", &posted(reassigned, "urn:uuid:assign"))
                .await
                .unwrap(),
            Some(RemoteOutcome::Late(after_done.clone()))
        );
        assert_eq!(outbox.apply_remote("nope", &take).await.unwrap(), None);

        assert_eq!(outbox.sent_timeline("d").await.unwrap(), [taken, done]);
        assert_eq!(outbox.sent_timeline("s").await.unwrap(), vec![]);
        drop(outbox);
        let outbox = backend.open().await;
        assert_eq!(outbox.get("d").await.unwrap(), Some(after_done.clone()));
        assert_eq!(
            outbox.apply_remote("d", &take).await.unwrap(),
            Some(RemoteOutcome::Repeat {
                task: after_done,
                body
            })
        );
    }

    /// Many reported changes at once (the SQLite outbox writes them in
    /// groups): each gets the answer it would get alone, a repeat among them
    /// included, and all that were applied are kept.
    pub async fn reported_changes_at_once_each_get_their_own_answer(backend: &dyn Backend) {
        let outbox = backend.open().await;
        let now = Timestamp::now();
        for i in 0..40 {
            outbox
                .enqueue(&delivered(&format!("d{i}"), &format!("p-{i}"), now))
                .await
                .unwrap();
        }
        let mut calls = tokio::task::JoinSet::new();
        for i in 0..40 {
            for (n, identifier) in [(0, format!("urn:uuid:a{i}")), (1, format!("urn:uuid:a{i}"))] {
                let outbox = outbox.clone();
                let update = posted(entry(2, TaskState::Accepted, now + secs(1)), &identifier);
                calls.spawn(
                    async move { (i, n, outbox.apply_remote(&format!("d{i}"), &update).await) },
                );
            }
        }
        calls.spawn({
            let outbox = outbox.clone();
            let update = posted(entry(2, TaskState::Accepted, now), "urn:uuid:none");
            async move { (99, 0, outbox.apply_remote("missing", &update).await) }
        });
        let mut applied = vec![0; 40];
        let mut repeats = vec![0; 40];
        while let Some(done) = calls.join_next().await {
            let (i, _, outcome) = done.unwrap();
            match outcome.unwrap() {
                Some(RemoteOutcome::Applied(t)) => {
                    assert_eq!(t.remote.unwrap().version, 2);
                    applied[i] += 1;
                }
                Some(RemoteOutcome::Repeat { .. }) => repeats[i] += 1,
                None => assert_eq!(i, 99),
                other => panic!("task {i}: {other:?}"),
            }
        }
        assert_eq!(applied, vec![1; 40], "each task applied once");
        assert_eq!(repeats, vec![1; 40], "each second copy a repeat");
        for i in 0..40 {
            let id = format!("d{i}");
            assert_eq!(
                outbox
                    .get(&id)
                    .await
                    .unwrap()
                    .unwrap()
                    .remote
                    .unwrap()
                    .version,
                2
            );
            assert_eq!(outbox.sent_timeline(&id).await.unwrap().len(), 1);
        }
    }

    /// `gpc_outbox_depth{kind="task"}`: queued (due or not), being sent,
    /// failed with a retry to come, and pending cancellations; not what is
    /// delivered, rejected or failed for good.
    pub async fn waiting_counts_what_is_still_to_be_sent(backend: &dyn Backend) {
        let outbox = backend.open().await;
        let now = Timestamp::now();
        assert_eq!(outbox.waiting().await.unwrap(), 0);
        let mut later = task("later", now);
        later.next_attempt_at = Some(now + secs(60));
        let mut retry = task("retry", now);
        retry.status = SendStatus::Failed;
        retry.next_attempt_at = Some(now + secs(5));
        let mut given_up = task("given-up", now);
        given_up.status = SendStatus::Failed;
        given_up.next_attempt_at = None;
        let mut refused = task("refused", now);
        refused.status = SendStatus::Rejected;
        refused.next_attempt_at = None;
        let open = delivered("open", "p-open", now);
        let done = delivered("done", "p-done", now);
        for t in [
            &task("due", now),
            &later,
            &retry,
            &given_up,
            &refused,
            &open,
            &done,
        ] {
            outbox.enqueue(t).await.unwrap();
        }
        assert_eq!(outbox.waiting().await.unwrap(), 3, "due, later, retry");
        outbox
            .request_cancel("open", &cancellation(now))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(outbox.waiting().await.unwrap(), 4, "and the cancellation");
        let claimed = outbox
            .claim_due("w", now, now + secs(30), 10)
            .await
            .unwrap();
        assert!(claimed.iter().any(|t| t.id == "due"));
        assert_eq!(
            outbox.waiting().await.unwrap(),
            4,
            "a claimed task still waits"
        );
    }

    /// A cancellation is stored only for a delivered task whose recipient
    /// has not closed it, once; a refused request writes nothing.
    pub async fn a_cancellation_is_asked_only_of_an_open_delivered_task(backend: &dyn Backend) {
        let outbox = backend.open().await;
        let now = Timestamp::now();
        let queued = task("q", now);
        let mut done = delivered("done", "p-done", now);
        done.remote = Some(remote_of(&entry(3, TaskState::Completed, now)));
        let mut rejected = delivered("rej", "p-rej", now);
        rejected.remote = Some(remote_of(&entry(2, TaskState::Rejected, now)));
        let mut owned = delivered("open", "p-open", now);
        owned.remote = Some(remote_of(&entry(2, TaskState::Accepted, now)));
        for t in [&queued, &done, &rejected, &owned] {
            outbox.enqueue(t).await.unwrap();
        }
        let c = cancellation(now + secs(5));
        for id in ["q", "done", "rej", "nope"] {
            assert_eq!(outbox.request_cancel(id, &c).await.unwrap(), None, "{id}");
        }
        assert_eq!(outbox.get("q").await.unwrap(), Some(queued));
        assert_eq!(outbox.get("done").await.unwrap(), Some(done));
        assert_eq!(outbox.get("rej").await.unwrap(), Some(rejected));

        let asked = outbox.request_cancel("open", &c).await.unwrap().unwrap();
        let expected = SentTask {
            updated_at: c.requested_at,
            cancellation: Some(c.clone()),
            ..owned
        };
        assert_eq!(asked, expected);
        assert_eq!(outbox.get("open").await.unwrap(), Some(expected.clone()));
        // Once only.
        let second = cancellation(now + secs(6));
        assert_eq!(outbox.request_cancel("open", &second).await.unwrap(), None);
        assert_eq!(outbox.get("open").await.unwrap(), Some(expected));
        // A freshly delivered task (received) may be cancelled too.
        outbox
            .enqueue(&delivered("fresh", "p-fresh", now))
            .await
            .unwrap();
        assert!(
            outbox
                .request_cancel("fresh", &second)
                .await
                .unwrap()
                .is_some()
        );
    }

    /// A cancellation is sent as a task is: claimed when due by one worker
    /// under a lease, retried, and finished with the receiver's answer,
    /// which becomes the task's state when it cancelled the task.
    pub async fn cancellations_are_claimed_under_a_lease_and_finished(backend: &dyn Backend) {
        let outbox = backend.open().await;
        let now = Timestamp::now();
        outbox.enqueue(&delivered("c", "p-c", now)).await.unwrap();
        outbox
            .enqueue(&delivered("other", "p-other", now))
            .await
            .unwrap();
        assert_eq!(outbox.next_due().await.unwrap(), None);
        let c = cancellation(now + secs(5));
        outbox.request_cancel("c", &c).await.unwrap().unwrap();
        assert_eq!(outbox.next_due().await.unwrap(), Some(now + secs(5)));

        assert!(
            outbox
                .claim_cancellations("w1", now + secs(4), now + secs(30), 10)
                .await
                .unwrap()
                .is_empty()
        );
        let claimed = outbox
            .claim_cancellations("w1", now + secs(5), now + secs(30), 10)
            .await
            .unwrap();
        assert_eq!(claimed.len(), 1);
        assert_eq!(claimed[0].id, "c");
        assert_eq!(claimed[0].cancellation.as_ref(), Some(&c));
        // Leased: nobody else gets it, and it is not a delivery to make.
        assert!(
            outbox
                .claim_cancellations("w2", now + secs(10), now + secs(40), 10)
                .await
                .unwrap()
                .is_empty()
        );
        assert!(
            outbox
                .claim_due("w2", now + secs(10), now + secs(40), 10)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(outbox.next_due().await.unwrap(), Some(now + secs(30)));

        // The receiver could not be reached: retried in a minute.
        let mut retry = claimed[0].clone();
        let rc = retry.cancellation.as_mut().unwrap();
        rc.attempts = 1;
        rc.next_attempt_at = Some(now + secs(60));
        rc.detail = Some("connection refused".into());
        retry.updated_at = now + secs(6);
        assert!(
            outbox
                .finish_cancellation("w1", &retry, None)
                .await
                .unwrap()
        );
        assert_eq!(outbox.get("c").await.unwrap(), Some(retry.clone()));
        assert_eq!(outbox.next_due().await.unwrap(), Some(now + secs(60)));
        assert!(
            outbox
                .claim_cancellations("w2", now + secs(59), now + secs(90), 10)
                .await
                .unwrap()
                .is_empty()
        );
        let again = outbox
            .claim_cancellations("w2", now + secs(60), now + secs(90), 10)
            .await
            .unwrap();
        assert_eq!(again, [retry.clone()]);

        // Cancelled by the receiver at version 2; w1 holds no lease now.
        let mut finished = retry;
        let fc = finished.cancellation.as_mut().unwrap();
        fc.status = UpdateStatus::Delivered;
        fc.attempts = 2;
        fc.next_attempt_at = None;
        fc.http_status = Some(201);
        fc.detail = None;
        fc.finished_at = Some(now + secs(61));
        let cancelled = TimelineEntry {
            version: 2,
            at: now + secs(61),
            by: parsons(),
            party: Party::Sender,
            state: TaskState::Cancelled,
            owner: None,
            note: Some(c.reason.clone()),
        };
        assert!(
            !outbox
                .finish_cancellation("w1", &finished, Some(&cancelled))
                .await
                .unwrap()
        );
        assert!(
            outbox
                .finish_cancellation("w2", &finished, Some(&cancelled))
                .await
                .unwrap()
        );
        let expected = SentTask {
            remote: Some(remote_of(&cancelled)),
            ..finished.clone()
        };
        assert_eq!(outbox.get("c").await.unwrap(), Some(expected.clone()));
        assert_eq!(outbox.sent_timeline("c").await.unwrap(), [cancelled]);
        assert!(
            !outbox
                .finish_cancellation("w2", &finished, None)
                .await
                .unwrap(),
            "released"
        );
        assert_eq!(outbox.next_due().await.unwrap(), None);
        assert!(
            outbox
                .claim_cancellations("w3", now + secs(3600), now + secs(3700), 10)
                .await
                .unwrap()
                .is_empty()
        );
        // A final task is cancelled no more.
        assert_eq!(
            outbox
                .request_cancel("c", &cancellation(now))
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            outbox.get("other").await.unwrap().unwrap().cancellation,
            None
        );
    }

    /// An update the recipient sent while the cancellation was on its way
    /// stays: the cancellation's answer does not take the state back.
    pub async fn a_late_answer_to_a_cancellation_leaves_the_newer_state(backend: &dyn Backend) {
        let outbox = backend.open().await;
        let now = Timestamp::now();
        outbox.enqueue(&delivered("l", "p-l", now)).await.unwrap();
        let c = cancellation(now);
        outbox.request_cancel("l", &c).await.unwrap().unwrap();
        let claimed = outbox
            .claim_cancellations("w", now, now + secs(30), 10)
            .await
            .unwrap();
        assert_eq!(claimed.len(), 1);
        // Meanwhile the practice completed the task (version 3).
        let done = entry(3, TaskState::Completed, now + secs(1));
        outbox
            .apply_remote("l", &posted(done.clone(), "urn:uuid:late-done"))
            .await
            .unwrap();
        // An answer at or below the version held is not applied.
        let mut finished = claimed[0].clone();
        let fc = finished.cancellation.as_mut().unwrap();
        fc.status = UpdateStatus::Refused;
        fc.attempts = 1;
        fc.next_attempt_at = None;
        fc.http_status = Some(409);
        fc.detail = Some("the task was completed at 10:40".into());
        fc.finished_at = Some(now + secs(2));
        let stale = TimelineEntry {
            version: 3,
            party: Party::Sender,
            state: TaskState::Cancelled,
            ..done.clone()
        };
        assert!(
            outbox
                .finish_cancellation("w", &finished, Some(&stale))
                .await
                .unwrap()
        );
        let stored = outbox.get("l").await.unwrap().unwrap();
        assert_eq!(stored.remote, Some(remote_of(&done)));
        assert_eq!(stored.cancellation, finished.cancellation);
        assert_eq!(outbox.sent_timeline("l").await.unwrap(), [done]);
    }
}

mod sqlite {
    use super::Backend;
    use gpc_store::outbox::{Outbox, SqliteOutbox};
    use std::sync::Arc;
    use tempfile::TempDir;

    struct Sqlite(TempDir);

    #[async_trait::async_trait]
    impl Backend for Sqlite {
        async fn open(&self) -> Arc<dyn Outbox> {
            Arc::new(SqliteOutbox::open(self.0.path()).expect("open the SQLite outbox"))
        }
    }

    async fn backend(_test: &str) -> Option<Box<dyn Backend>> {
        Some(Box::new(Sqlite(tempfile::tempdir().unwrap())))
    }

    outbox_suite!(backend);
}

mod postgres {
    use super::Backend;
    use gpc_store::outbox::{Outbox, PostgresOutbox};
    use gpc_store::test_support::TestDatabase;
    use std::sync::Arc;

    /// Each test has a database of its own, dropped at its end.
    struct Postgres(TestDatabase);

    #[async_trait::async_trait]
    impl Backend for Postgres {
        async fn open(&self) -> Arc<dyn Outbox> {
            Arc::new(
                PostgresOutbox::connect(self.0.url())
                    .await
                    .expect("open the PostgreSQL outbox"),
            )
        }
    }

    async fn backend(test: &str) -> Option<Box<dyn Backend>> {
        let db = TestDatabase::create(test).await?;
        Some(Box::new(Postgres(db)))
    }

    outbox_suite!(backend);
}
