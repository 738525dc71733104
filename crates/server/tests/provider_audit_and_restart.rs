//! Every provider request is audited; accepted tasks survive a restart.

// A test crate sees every dev-dependency of its package, and uses only some.
#![allow(unused_crate_dependencies)]
// Helpers outside `#[test]` functions panic on purpose too: a failure is the test's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gpc_domain::audit::AuditFilter;
use gpc_store::Store;
use gpc_testkit::*;

#[tokio::test]
async fn accepted_and_refused_requests_are_audited() {
    let s = TestServer::start().await;
    let (status, _, created) = send(s.post_order("GPC001", GPC001_ASID, &dawes_order())).await;
    assert_eq!(status, 201);
    let (status, _, _) = send(s.get("/Patient/999", READ_PATIENT)).await;
    assert_eq!(status, 404);
    // A refused token: no practitioner recorded.
    let mut h = headers(METADATA, GPC001_ASID, "x");
    h.insert("authorization", "Bearer nope".parse().unwrap());
    let (status, _, _) = send(
        s.client
            .get(format!("{}/metadata", s.root("GPC001")))
            .headers(h),
    )
    .await;
    assert_eq!(status, 400);
    let dir = s.stop().await;

    let store = gpc_store::SqliteStore::open(dir.path()).unwrap();
    let records = store
        .audit(AuditFilter {
            tenant: Some("GPC001".into()),
            since: None,
            limit: 0,
        })
        .await
        .unwrap();
    assert_eq!(records.len(), 3, "{records:?}");
    // Newest first.
    let (bad_token, not_found, create) = (&records[0], &records[1], &records[2]);
    assert_eq!(create.status, 201);
    assert_eq!(create.task_id.as_deref(), created["id"].as_str());
    assert_eq!(create.interaction.as_deref(), Some(CREATE));
    assert_eq!(create.from_asid.as_deref(), Some(Y00001_ASID));
    assert_eq!(create.to_asid.as_deref(), Some(GPC001_ASID));
    assert_eq!(create.practitioner_sds_id.as_deref(), Some("G11111116"));
    assert_eq!(create.organisation_ods.as_deref(), Some("Y00001"));
    assert!(
        create
            .trace_id
            .as_deref()
            .is_some_and(|t| uuid::Uuid::parse_str(t).is_ok())
    );
    assert_eq!(not_found.status, 404);
    assert_eq!(not_found.error_code.as_deref(), Some("PATIENT_NOT_FOUND"));
    assert_eq!(bad_token.status, 400);
    assert_eq!(bad_token.error_code.as_deref(), Some("BAD_REQUEST"));
    assert_eq!(bad_token.practitioner_sds_id, None);
    // Since a time after everything: nothing.
    let later = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(60);
    let none = store
        .audit(AuditFilter {
            tenant: None,
            since: Some(later),
            limit: 0,
        })
        .await
        .unwrap();
    assert!(none.is_empty());
}

#[tokio::test]
async fn tasks_survive_a_restart_and_the_demo_region_is_not_reloaded() {
    let s = TestServer::start().await;
    let order = dawes_order();
    let (status, _, created) = send(s.post_order("GPC001", GPC001_ASID, &order)).await;
    assert_eq!(status, 201);
    let dir = s.stop().await;

    let s = TestServer::start_in(dir).await;
    // The retry after the restart finds the same task.
    let (status, _, again) = send(s.post_order("GPC001", GPC001_ASID, &order)).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["id"], created["id"]);
    let store = gpc_store::SqliteStore::open(s.dir.path()).unwrap();
    let data = store.reference_data().await.unwrap();
    assert_eq!(data.organisations.len(), 13);
    assert_eq!(data.patients.len(), 16);
    assert_eq!(
        store
            .count_tasks(&gpc_domain::OdsCode::parse("GPC001").unwrap())
            .await
            .unwrap(),
        1
    );
}
