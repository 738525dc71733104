//! The sender's outbox: durable before the first attempt, claimed under a
//! lease by one worker at a time, every attempt recorded. Written once
//! against `Arc<dyn Outbox>` and run on every backend, as
//! `store_conformance.rs` is; the PostgreSQL run needs `TEST_DATABASE_URL`.

// A test crate sees every dev-dependency of its package, and uses only some.
#![allow(unused_crate_dependencies)]
// Helpers outside `#[test]` functions panic on purpose too: a failure is the test's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gpc_domain::sent::{Attempt, SendStatus, SentTask};
use gpc_domain::task::TaskType;
use gpc_store::outbox::Outbox;
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
