//! Sign-in through a real OpenID Provider (sign-in.md §2, §4): the npm
//! package `oidc-provider`, started by each test from `tests/oidc/start.js`
//! with CIS2-shaped users, and made to misbehave on purpose where a check
//! of the ID token is under test.

#![allow(unused_crate_dependencies)]
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::oidc::{Agent, Provider, free_port, test_client_key};
use common::{Browser, Spine, World};
use gpc_server::ServerConfig;
use gpc_web::{AuthMode, ClientKey, OidcConfig};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

const CLIENT: &str = "gpc-tasks";
const SECRET: &str = "a-client-secret-for-tests";

struct SignIn {
    world: World,
    _op: Provider,
    web: String,
}

/// The web UI in oidc mode against a provider started with `tamper`;
/// `key` makes the client authenticate with `private_key_jwt`.
async fn start(tamper: &str, key: bool) -> SignIn {
    let port = free_port();
    let web = format!("http://127.0.0.1:{port}");
    let mut client = json!({
        "client_id": CLIENT,
        "redirect_uris": [format!("{web}/auth/callback")],
        "post_logout_redirect_uris": [format!("{web}/auth/signed-out")],
    });
    if key {
        client["token_endpoint_auth_method"] = json!("private_key_jwt");
        client["jwks_uri"] = json!(format!("{web}/auth/jwks.json"));
    } else {
        client["client_secret"] = json!(SECRET);
    }
    let op = Provider::start(json!([client]), tamper).await;
    let private_key = key.then(|| {
        Arc::new(ClientKey::from_pem(&std::fs::read_to_string(test_client_key()).unwrap()).unwrap())
    });
    let auth = AuthMode::Oidc(OidcConfig {
        issuer: op.issuer.clone(),
        client_id: CLIENT.into(),
        client_secret: (!key).then(|| SECRET.to_owned()),
        private_key,
        redirect_url: format!("{web}/auth/callback"),
        scopes: OidcConfig::default_scopes(),
        timeout: Duration::from_secs(2),
    });
    let spine = Spine::serve_with(
        format!("127.0.0.1:{port}").parse().unwrap(),
        tempfile::tempdir().unwrap(),
        None,
        ServerConfig {
            auth,
            ..ServerConfig::default()
        },
    )
    .await;
    SignIn {
        world: World::over(spine).await,
        _op: op,
        web,
    }
}

/// Logs `login` in; returns the agent and the callback's answer.
async fn callback_as(s: &SignIn, login: &str) -> (Agent, common::oidc::Answer) {
    let mut agent = Agent::default();
    let callback = agent.log_in(&s.web, login).await;
    let answer = agent.get(&callback).await;
    (agent, answer)
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
        out.location().starts_with(&s._op.issuer),
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
