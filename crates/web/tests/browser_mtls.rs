//! The web UI's engine over mutual TLS: a clinician in headless Chromium
//! sends a task, and the engine presents the hub's certificate to an SSP and
//! a directory that require one (with the providers behind them, on a server
//! of their own); and a sending organisation without a certificate in the
//! folder has its task Failed with that reason, then delivered once the
//! certificate is there.

// A test crate sees every dev-dependency of its package, and uses only some.
#![allow(unused_crate_dependencies)]
// Helpers outside `#[test]` functions panic on purpose too: a failure is the test's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::webdriver::{Driver, screenshot};
use common::{PATIENCE, Spine, World};
use gpc_consumer::{SendRequest, Who};
use gpc_domain::audit::SspAuditFilter;
use gpc_domain::sent::{SendStatus, SentTask};
use gpc_domain::task::TaskType;
use gpc_server::ssp::SspConfig;
use gpc_server::tls::certs::{CA_FILE, DevCa};
use gpc_server::tls::{ClientTls, SenderCerts, SenderTls, ServerTls};
use gpc_server::{ConsumerConfig, ServerConfig};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Y00001, the extended access hub.
const HUB_ASID: &str = "200000000370";

/// A CA and a certificate for the SSP and for every demo organisation with
/// a Spine system, as `gpc-tasks certs` writes them.
fn certs(dir: &Path) {
    let systems: Vec<(String, String)> = gpc_directory::demo_region()
        .organisations
        .into_iter()
        .filter_map(|o| Some((o.ods.as_str().to_owned(), o.asid?.as_str().to_owned())))
        .collect();
    DevCa::new("test CA")
        .unwrap()
        .write_set(dir, &systems)
        .unwrap();
}

fn pair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    )
}

fn copy_pair(from: &Path, to: &Path, name: &str) {
    let (cert, key) = pair(from, name);
    let (to_cert, to_key) = pair(to, name);
    std::fs::copy(cert, to_cert).unwrap();
    std::fs::copy(key, to_key).unwrap();
}

/// The SSP, the directory APIs and the providers on one HTTPS server that
/// requires a client certificate of the CA.
async fn spine(certs: &Path) -> Spine {
    let (cert, key) = pair(certs, "ssp");
    let ca = certs.join(CA_FILE);
    let spine = Spine::start_with(
        "127.0.0.1:0".parse().unwrap(),
        tempfile::tempdir().unwrap(),
        ServerConfig {
            tls: Some(ServerTls {
                cert,
                key,
                client_ca: Some(ca.clone()),
                allowed_client_subjects: Vec::new(),
            }),
            ssp: SspConfig {
                client_tls: Some(ClientTls {
                    ca,
                    identity: Some(pair(certs, "ssp")),
                }),
                ..SspConfig::default()
            },
            ..ServerConfig::default()
        },
    )
    .await;
    assert!(spine.base.starts_with("https://"), "{}", spine.base);
    spine
}

/// The web UI and its engine, sending through `spine` with the
/// certificates in `sender_certs`.
async fn web_over(spine: &Spine, ca: PathBuf, sender_certs: &Path) -> World {
    let consumer = ConsumerConfig {
        ssp_url: Some(format!("{}/ssp", spine.base)),
        directory_url: Some(spine.base.clone()),
        tls: Some(SenderTls {
            ca,
            certs: SenderCerts::Folder(sender_certs.to_owned()),
            directory_identity: Some(pair(sender_certs, "GPC001")),
        }),
        ..ConsumerConfig::default()
    };
    let web = Spine::serve_with(
        "127.0.0.1:0".parse().unwrap(),
        tempfile::tempdir().unwrap(),
        None,
        ServerConfig {
            consumer: Some(consumer),
            ..ServerConfig::default()
        },
    )
    .await;
    World::over(web).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clinician_sends_over_mutual_tls_from_the_browser() {
    let dir = tempfile::tempdir().unwrap();
    certs(dir.path());
    let spine = spine(dir.path()).await;
    let world = web_over(&spine, dir.path().join(CA_FILE), dir.path()).await;
    let driver = Driver::start().await;
    let web = world.web.clone();

    driver.sign_in_demo(&web, "Y00001", "G11111116").await;
    driver
        .find_patient(&web, "9476719931", "DAWES, Minnie (Mrs)")
        .await;
    driver.click("label[for=task_type-2]").await;
    driver
        .type_into("#details", "Please review, over mutual TLS.")
        .await;
    driver.click("button[value=send]").await;
    driver
        .wait_for_text("[data-testid=status]", "Delivered")
        .await;
    driver.wait_for_text("#task-attempts", "201").await;
    driver
        .screenshot(&screenshot("30-sent-task-delivered-over-mtls.png"))
        .await;

    let gpc001 = gpc_domain::OdsCode::parse("GPC001").unwrap();
    assert_eq!(spine.store.count_tasks(&gpc001).await.unwrap(), 1);
    // Every request went through the SSP as the hub, which the SSP holds to
    // the certificate it presented.
    let deadline = Instant::now() + PATIENCE;
    let audit = loop {
        let audit = spine
            .store
            .ssp_audit(SspAuditFilter {
                since: None,
                limit: 100,
            })
            .await
            .unwrap();
        // The patient, the two organisations, the Order.
        if audit.len() >= 4 || Instant::now() > deadline {
            break audit;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(audit.len(), 4, "{audit:?}");
    for record in audit {
        assert_eq!(record.from_asid.as_deref(), Some(HUB_ASID));
        assert!(record.refusal.is_none(), "{record:?}");
    }
}

async fn settled(world: &World, id: &str, done: impl Fn(&SentTask) -> bool) -> SentTask {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let task = world.engine.outbox().get(id).await.unwrap().unwrap();
        if done(&task) {
            return task;
        }
        assert!(Instant::now() < deadline, "gave up; last seen {task:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_organisation_without_a_certificate_fails_with_that_reason_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    certs(dir.path());
    let spine = spine(dir.path()).await;
    // The senders' folder lacks the hub.
    let senders = tempfile::tempdir().unwrap();
    copy_pair(dir.path(), senders.path(), "GPC001");
    let world = web_over(&spine, dir.path().join(CA_FILE), senders.path()).await;

    let task = world
        .engine
        .send(SendRequest {
            user: Who::Sds("G11111116".into()),
            from: Some("Y00001".into()),
            patient: "9476719931".into(),
            task_type: TaskType::ActionNeeded,
            text: "Please review.".into(),
            to: None,
        })
        .await
        .unwrap();
    let failed = settled(&world, &task.id, |t| {
        t.status == SendStatus::Failed && t.next_attempt_at.is_none()
    })
    .await;
    let reason = failed.reason.unwrap();
    assert!(reason.starts_with("No certificate for Y00001"), "{reason}");
    assert!(reason.contains("Y00001.pem and Y00001.key"), "{reason}");
    assert!(
        spine
            .store
            .ssp_audit(SspAuditFilter {
                since: None,
                limit: 10
            })
            .await
            .unwrap()
            .is_empty(),
        "nothing reached the SSP"
    );

    // The certificate is added; a retry delivers the same task.
    copy_pair(dir.path(), senders.path(), "Y00001");
    world.engine.retry(&task.id).await.unwrap();
    let delivered = settled(&world, &task.id, |t| t.status == SendStatus::Delivered).await;
    assert_eq!(delivered.identifier, task.identifier);
    let gpc001 = gpc_domain::OdsCode::parse("GPC001").unwrap();
    assert_eq!(spine.store.count_tasks(&gpc001).await.unwrap(), 1);
}
