//! The sender's outbox: durable before the first attempt, claimed under a
//! lease by one worker at a time, every attempt recorded.

use gpc_domain::sent::{Attempt, SendStatus, SentTask};
use gpc_domain::task::TaskType;
use gpc_store::outbox::{Outbox, SqliteOutbox};
use jiff::{SignedDuration, Timestamp};

fn task(id: &str, created_at: Timestamp) -> SentTask {
    SentTask {
        id: id.to_owned(),
        created_at,
        updated_at: created_at,
        from_ods: "Y00001".into(),
        from_name: "North Lincolnshire Extended Access Hub".into(),
        from_asid: "200000000370".into(),
        user_sds_id: "G11111116".into(),
        user_id: "3".into(),
        user_name: "Mrs Melissa PARSONS".into(),
        user_role_code: "R0260".into(),
        user_role_display: "General Medical Practitioner".into(),
        nhs_number: "9476719931".into(),
        patient_name: "Mrs Minnie DAWES".into(),
        to_ods: "GPC001".into(),
        to_name: "GP Connect Demonstrator".into(),
        to_telephone: "01632 960001".into(),
        to_address: "1 Road, Scunthorpe, DN1 1AA".into(),
        endpoint: "http://127.0.0.1:1/GPC001/DSTU2/1".into(),
        to_asid: "200000000359".into(),
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
    }
}

fn secs(n: i64) -> SignedDuration {
    SignedDuration::from_secs(n)
}

#[tokio::test]
async fn a_task_round_trips_and_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let now = Timestamp::now();
    let t = task("a", now);
    {
        let outbox = SqliteOutbox::open(dir.path()).unwrap();
        outbox.enqueue(&t).await.unwrap();
    }
    let outbox = SqliteOutbox::open(dir.path()).unwrap();
    assert_eq!(outbox.get("a").await.unwrap(), Some(t));
    assert_eq!(outbox.get("nope").await.unwrap(), None);
}

#[tokio::test]
async fn claims_are_exclusive_until_the_lease_runs_out() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = SqliteOutbox::open(dir.path()).unwrap();
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

#[tokio::test]
async fn only_a_resting_failure_can_be_requeued() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = SqliteOutbox::open(dir.path()).unwrap();
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

#[tokio::test]
async fn list_is_per_sender_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = SqliteOutbox::open(dir.path()).unwrap();
    let now = Timestamp::now();
    for (i, id) in ["old", "mid", "new"].iter().enumerate() {
        outbox
            .enqueue(&task(id, now + secs(i as i64)))
            .await
            .unwrap();
    }
    let mut other = task("other", now);
    other.from_ods = "GPC001".into();
    outbox.enqueue(&other).await.unwrap();
    let ids: Vec<String> = outbox
        .list("Y00001", 10)
        .await
        .unwrap()
        .into_iter()
        .map(|t| t.id)
        .collect();
    assert_eq!(ids, ["new", "mid", "old"]);
    assert_eq!(outbox.list("Y00001", 2).await.unwrap().len(), 2);
    assert_eq!(outbox.list("GPC001", 10).await.unwrap().len(), 1);
}
