//! Sign-in through a real OpenID Provider (sign-in.md §2, §4): the npm
//! package `oidc-provider`, started by each test from `tests/oidc/start.js`
//! with CIS2-shaped users, and made to misbehave on purpose where a check
//! of the ID token is under test.

#![allow(unused_crate_dependencies)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::oidc::{Agent, CLIENT, SECRET, SignInWorld};
use common::{Browser, Spine, between};
use gpc_domain::OdsCode;
use gpc_domain::lifecycle::{Actor, Party};
use gpc_server::ServerConfig;
use gpc_testkit::{PATIENCE, wait_for};
use gpc_web::{AuthMode, OidcConfig};
use std::time::Duration;

/// The UI in oidc mode against a provider started with `tamper`; `key`
/// makes the client authenticate with `private_key_jwt`.
async fn start(tamper: &str, key: bool) -> SignInWorld {
    SignInWorld::start(tamper, key, ServerConfig::default()).await
}

/// Logs `login` in; returns the agent and the callback's answer.
async fn callback_as(s: &SignInWorld, login: &str) -> (Agent, common::oidc::Answer) {
    s.callback_as(login).await
}

fn assert_refused(
    answer: &common::oidc::Answer,
    status: u16,
    says: &str,
    agent: &Agent,
    web: &str,
) {
    assert_eq!(answer.status, status, "{}", answer.body);
    assert!(
        answer.body.contains(says),
        "{says:?} not in {}",
        answer.body
    );
    assert!(
        answer.body.contains(r#"href="/auth/sign-in""#),
        "a way to try again"
    );
    assert!(agent.cookie(web, "gpc_session").is_none(), "no session");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cis2_user_signs_in_sends_a_task_as_themself_and_signs_out() {
    let s = start("", false).await;
    let (agent, answer) = callback_as(&s, "hub.clinician").await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    assert_eq!(answer.location, format!("{}/patient", s.web));
    let session = agent
        .cookie(&s.web, "gpc_session")
        .expect("a session cookie");
    let mut browser = Browser::holding(&s.web, &format!("gpc_session={session}"));
    let page = browser.get("/patient").await;
    assert_eq!(page.status, 200, "{}", page.body);
    page.assert_contains("Aisha OKAFOR")
        .assert_contains("(Y00001)");
    // Not in the reference data, yet the sender of the task and its JWT.
    let path = browser
        .send("947 671 9931", "GPC001", "2", "Please review")
        .await;
    let id = path.trim_start_matches("/sent/");
    let sent = s.world.engine.outbox().get(id).await.unwrap().unwrap();
    assert_eq!(sent.user_sds_id, "555021935107");
    assert_eq!(sent.user_name, "Aisha OKAFOR");
    assert_eq!(sent.user_role_code, "S8000:G8000:R8000");
    assert_eq!(sent.from_ods.as_str(), "Y00001");
    browser
        .wait_for(&path, "Delivered to GP Connect Demonstrator")
        .await;
    // Sign-out ends the session and goes to the provider's end_session_endpoint.
    let out = browser.post("/auth/sign-out", &[]).await;
    assert_eq!(out.status, 303);
    assert!(
        out.location().starts_with(&s.op.issuer),
        "{}",
        out.location()
    );
    assert!(out.location().contains("post_logout_redirect_uri"));
    let after = Browser::holding(&s.web, &format!("gpc_session={session}"))
        .get("/patient")
        .await;
    assert_eq!(after.status, 303);
    assert_eq!(after.location(), "/auth/sign-in");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_key_jwt_is_accepted_by_the_provider() {
    let s = start("", true).await;
    let jwks = reqwest::get(format!("{}/auth/jwks.json", s.web))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        jwks.contains(r#""kty":"RSA""#) && !jwks.contains(r#""d":"#),
        "{jwks}"
    );
    let (agent, answer) = callback_as(&s, "two.roles").await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    let session = agent.cookie(&s.web, "gpc_session").unwrap();
    // The role selected at log-in, not the first.
    Browser::holding(&s.web, &format!("gpc_session={session}"))
        .get("/patient")
        .await
        .assert_contains("(Y00001)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_picker_does_not_exist_in_oidc_mode() {
    let s = start("", false).await;
    let mut b = Browser::new(&s.web);
    assert_eq!(b.get("/sign-in").await.status, 404);
    assert_eq!(
        b.post("/sign-in", &[("org", "GPC001"), ("user", "G13579135")])
            .await
            .status,
        404
    );
    let home = b.get("/patient").await;
    assert_eq!(home.location(), "/auth/sign-in");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_state_and_a_replayed_callback_are_refused() {
    let s = start("", false).await;
    let mut agent = Agent::default();
    let callback = agent.log_in(&s.web, "hub.clinician").await;
    let mut url = url::Url::parse(&callback).unwrap();
    let pairs: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "state" {
                "forged".into()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    url.query_pairs_mut().clear().extend_pairs(pairs);
    let answer = agent.get(url.as_str()).await;
    assert_refused(&answer, 400, "did not match this sign-in", &agent, &s.web);
    // The sign-in was used up by the forged attempt: the true callback is a replay now.
    let again = agent.get(&callback).await;
    assert_refused(&again, 400, "expired or was already used", &agent, &s.web);
}

async fn refused_by_check(tamper: &str, says: &str) {
    let s = start(tamper, false).await;
    let (agent, answer) = callback_as(&s, "hub.clinician").await;
    assert_refused(&answer, 400, says, &agent, &s.web);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_token_with_a_bad_signature_is_refused() {
    refused_by_check("bad-signature", "failed a check").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_token_from_another_issuer_is_refused() {
    refused_by_check("wrong-iss", "failed a check").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_token_for_another_audience_is_refused() {
    refused_by_check("wrong-aud", "failed a check").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_id_token_is_refused() {
    refused_by_check("expired", "failed a check").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_token_with_another_nonce_is_refused() {
    refused_by_check("wrong-nonce", "failed a check").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_without_a_role_is_refused() {
    let s = start("", false).await;
    let (agent, answer) = callback_as(&s, "no.role").await;
    assert_refused(&answer, 403, "no role selected", &agent, &s.web);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_of_an_organisation_not_served_is_refused() {
    let s = start("", false).await;
    let (agent, answer) = callback_as(&s, "elsewhere").await;
    assert_refused(
        &answer,
        403,
        "X99999, which this service does not serve",
        &agent,
        &s.web,
    );
}

/// A provider that takes the connection and never answers: a page within
/// the configured timeout (2 s here), not a hang.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_that_does_not_answer_is_a_503_page_within_seconds() {
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let issuer = format!("http://{}", silent.local_addr().unwrap());
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((conn, _)) = silent.accept().await {
            open.push(conn);
        }
    });
    let spine = Spine::serve_with(
        "127.0.0.1:0".parse().unwrap(),
        tempfile::tempdir().unwrap(),
        None,
        ServerConfig {
            auth: AuthMode::Oidc(OidcConfig {
                issuer,
                client_id: CLIENT.into(),
                client_secret: Some(SECRET.into()),
                private_key: None,
                redirect_url: "http://127.0.0.1:1/auth/callback".into(),
                scopes: OidcConfig::default_scopes(),
                timeout: Duration::from_secs(2),
            }),
            ..ServerConfig::default()
        },
    )
    .await;
    let started = std::time::Instant::now();
    let page = Browser::new(&spine.base).get("/auth/sign-in").await;
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(page.status, 503, "{}", page.body);
    page.assert_contains("could not be reached");
    held.abort();
}

/// Every audit record of `tenant` that names a practitioner from a valid
/// JWT: the ids it names.
async fn jwt_practitioners(s: &SignInWorld, tenant: &str) -> Vec<String> {
    s.world
        .spine
        .store
        .audit(gpc_domain::audit::AuditFilter {
            tenant: Some(tenant.into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_iter()
        .filter_map(|r| r.practitioner_sds_id)
        .collect()
}

/// sign-in.md §3: CIS2 users in no reference data, at the hub and at the
/// practice, are the practitioners of the JWTs the engine sends for them
/// (the task, the practice's update, the hub's cancellation) and the
/// authors of the changes they make.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_in_users_are_the_practitioners_of_the_jwts_and_the_authors_of_the_changes() {
    let s = start("", false).await;
    let gpc001 = OdsCode::parse("GPC001").unwrap();
    let hub = s.session_of("hub.clinician").await;
    let mut sender = Browser::holding(&s.web, &hub);
    let path = sender
        .send("947 671 9931", "GPC001", "2", "Please review")
        .await;
    let delivered = sender
        .wait_for(&path, "Delivered to GP Connect Demonstrator")
        .await;
    let task_id = between(&delivered.body, r#"data-testid="provider-task-id">"#, "<").to_owned();
    let task = s
        .world
        .spine
        .store
        .get_task(&gpc001, &task_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(task.provenance.practitioner_sds_id, "555021935107");
    assert_eq!(task.provenance.practitioner_name, "Aisha OKAFOR");
    assert_eq!(task.provenance.role_code, "S8000:G8000:R8000");

    // The practice's doctor takes it: the change is hers, and so is the
    // JWT of the update that tells the hub.
    let gp = s.session_of("practice.gp").await;
    let mut receiver = Browser::holding(&s.web, &gp);
    let taken = receiver
        .post(
            &format!("/received/{task_id}/change"),
            &[("action", "take"), ("version", "1"), ("text", "")],
        )
        .await;
    assert_eq!(taken.status, 303, "{}", taken.body);
    let priya = Actor {
        sds_user_id: "555021935501".into(),
        name: "Priya SHAH".into(),
        role_code: "S8000:G8000:R8000".into(),
        role_display: r#""Clinical":"Clinical Provision":"Clinical Practitioner Access Role""#
            .into(),
        organisation: gpc001.clone(),
    };
    let timeline = s
        .world
        .spine
        .store
        .timeline(&gpc001, &task_id)
        .await
        .unwrap();
    assert_eq!(timeline.last().unwrap().by, priya);
    assert_eq!(timeline.last().unwrap().party, Party::Receiver);
    let id = path.trim_start_matches("/sent/").to_owned();
    let outbox = s.world.engine.outbox().clone();
    let heard = wait_for(PATIENCE, "the hub to hear of the take", async || {
        let seen = outbox.sent_timeline(&id).await.unwrap();
        let updates = s
            .world
            .spine
            .store
            .task_updates(&gpc001, &task_id)
            .await
            .unwrap();
        seen.last().cloned().ok_or(updates)
    })
    .await;
    assert_eq!(heard.by.sds_user_id, priya.sds_user_id);
    assert_eq!(heard.by.name, priya.name);

    // The hub's clinician cancels it: the practice records her as the canceller.
    let cancelled = sender
        .post(&format!("{path}/cancel"), &[("reason", "Sent in error")])
        .await;
    assert_eq!(cancelled.status, 303, "{}", cancelled.body);
    let by = wait_for(
        PATIENCE,
        "the practice to record the cancellation",
        async || {
            let seen = s
                .world
                .spine
                .store
                .timeline(&gpc001, &task_id)
                .await
                .unwrap();
            match seen.last() {
                Some(e) if e.party == Party::Sender => Ok(e.by.clone()),
                _ => Err(seen.len()),
            }
        },
    )
    .await;
    assert_eq!(by.sds_user_id, "555021935107");
    assert_eq!(by.name, "Aisha OKAFOR");

    // Every JWT that reached the practice named the hub's clinician, and
    // every one that reached the hub the practice's doctor.
    let to_practice = jwt_practitioners(&s, "GPC001").await;
    assert!(!to_practice.is_empty());
    assert!(
        to_practice.iter().all(|p| p == "555021935107"),
        "{to_practice:?}"
    );
    let to_hub = jwt_practitioners(&s, "Y00001").await;
    assert!(!to_hub.is_empty());
    assert!(to_hub.iter().all(|p| p == "555021935501"), "{to_hub:?}");
}
