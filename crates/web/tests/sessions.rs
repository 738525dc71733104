//! Sessions through the pages (sign-in.md §2.5), after a real sign-in at
//! the test OpenID Provider: one instance's session known to another on the
//! same PostgreSQL database and ended there for both (and a sign-in begun
//! on one finished on the other), a session that outlives a restart, idle
//! and absolute expiry observed by real requests, and the cookie's name and
//! flags over HTTP and HTTPS.

// A test crate sees every dev-dependency of its package, and uses only some.
#![allow(unused_crate_dependencies)]
// Helpers outside `#[test]` functions panic on purpose too: a failure is the test's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::oidc::{Agent, SignInWorld};
use common::{Browser, Spine};
use gpc_server::ServerConfig;
use gpc_server::tls::certs::{DevCa, Validity};
use gpc_server::tls::{ClientTls, ServerTls};
use gpc_store::test_support::TestDatabase;
use gpc_testkit::{PATIENCE, wait_for};
use gpc_web::SessionLimits;
use std::time::{Duration, Instant};

fn any_port() -> std::net::SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// Whether `cookie` lets its holder in at `base`: the sign-in page's
/// redirect is the answer to a request without a live session.
async fn signed_in(base: &str, cookie: &str) -> bool {
    let page = Browser::holding(base, cookie).get("/patient").await;
    match page.status.as_u16() {
        200 => {
            page.assert_contains("Aisha OKAFOR");
            true
        }
        303 => {
            assert_eq!(page.location(), "/auth/sign-in");
            false
        }
        other => panic!("/patient answered {other}: {}", page.body),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_made_on_one_instance_works_on_another_and_ends_on_both() {
    let Some(db) = TestDatabase::create("web_sessions").await else {
        return;
    };
    let a = SignInWorld::start(
        "",
        false,
        ServerConfig {
            database_url: Some(db.url().to_owned()),
            ..ServerConfig::default()
        },
    )
    .await;
    // A second instance of the same deployment: same database, same registration.
    let b = Spine::serve_with(
        any_port(),
        tempfile::tempdir().unwrap(),
        None,
        a.config.clone(),
    )
    .await;
    let cookie = a.session_of("hub.clinician").await;
    assert!(signed_in(&b.base, &cookie).await, "B knows A's session");
    assert!(signed_in(&a.web, &cookie).await);

    let out = Browser::holding(&b.base, &cookie)
        .post("/auth/sign-out", &[])
        .await;
    assert_eq!(out.status, 303);
    assert!(
        out.location().starts_with(&a.op.issuer),
        "{}",
        out.location()
    );
    assert!(
        !signed_in(&a.web, &cookie).await,
        "signed out on B, so on A"
    );
    assert!(!signed_in(&b.base, &cookie).await);
}

/// What the callback must match is in the database too: a sign-in started
/// on one instance finishes on another, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_started_on_one_instance_finishes_on_another() {
    let Some(db) = TestDatabase::create("web_sign_ins").await else {
        return;
    };
    let a = SignInWorld::start(
        "",
        false,
        ServerConfig {
            database_url: Some(db.url().to_owned()),
            ..ServerConfig::default()
        },
    )
    .await;
    let b = Spine::serve_with(
        any_port(),
        tempfile::tempdir().unwrap(),
        None,
        a.config.clone(),
    )
    .await;
    let mut agent = Agent::default();
    let callback = agent.log_in(&a.web, "hub.clinician").await;
    let on_b = callback.replacen(&a.web, &b.base, 1);
    agent.share_cookies(&a.web, &b.base);
    let answer = agent.get(&on_b).await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    let session = agent.cookie(&b.base, "gpc_session").expect("a session");
    assert!(signed_in(&a.web, &format!("gpc_session={session}")).await);
    // Taken once: the same callback on A, with the sign-in's cookie, is a replay.
    assert!(agent.cookie(&a.web, "gpc_sign_in").is_some());
    let again = agent.get(&callback).await;
    assert_eq!(again.status, 400, "{}", again.body);
    assert!(
        again.body.contains("expired or was already used"),
        "{}",
        again.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_signs_nobody_out() {
    let s = SignInWorld::start("", false, ServerConfig::default()).await;
    let cookie = s.session_of("hub.clinician").await;
    assert!(signed_in(&s.web, &cookie).await);
    let SignInWorld {
        world, op, config, ..
    } = s;
    let dir = world.spine.stop().await;
    let again = Spine::serve_with(any_port(), dir, None, config).await;
    assert!(signed_in(&again.base, &cookie).await, "the same session");
    drop(op);
}

const IDLE: Duration = Duration::from_secs(3);

fn limits(idle: Duration, max: Duration) -> ServerConfig {
    ServerConfig {
        sessions: SessionLimits { idle, max },
        ..ServerConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_ends_after_its_idle_time_without_a_request() {
    let s = SignInWorld::start("", false, limits(IDLE, Duration::from_secs(3600))).await;
    let cookie = s.session_of("hub.clinician").await;
    // Requests more often than the idle time keep it for longer than that.
    let first = Instant::now();
    let mut answered = first;
    while answered.duration_since(first) < 2 * IDLE {
        assert!(signed_in(&s.web, &cookie).await, "ended while in use");
        answered = Instant::now();
        tokio::time::sleep(IDLE / 6).await;
    }
    // Then none for the idle time. Time is what is under test, so the test
    // waits for it: a poll would be a request, and would keep the session.
    // The last request was handled before `answered`, so the session's
    // idle end is before `answered + IDLE`.
    tokio::time::sleep_until((answered + IDLE + Duration::from_millis(200)).into()).await;
    assert!(!signed_in(&s.web, &cookie).await, "idle for {IDLE:?}");
    // Ended for good: signing in again is the way back.
    assert!(!signed_in(&s.web, &cookie).await);
    let again = s.session_of("hub.clinician").await;
    assert!(signed_in(&s.web, &again).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_in_use_ends_at_its_absolute_limit() {
    let max = Duration::from_secs(5);
    let s = SignInWorld::start("", false, limits(IDLE, max)).await;
    let before = Instant::now();
    let cookie = s.session_of("hub.clinician").await;
    let signed_in_by = Instant::now();
    // In use all the time (a request every 50 ms or so), until it ends.
    let mut last_in = signed_in_by;
    let ended = wait_for(PATIENCE, "the session to end at its limit", async || {
        if signed_in(&s.web, &cookie).await {
            last_in = Instant::now();
            Err(last_in.duration_since(before))
        } else {
            Ok(Instant::now())
        }
    })
    .await;
    assert!(
        ended.duration_since(before) >= max,
        "ended after {:?}, before its {max:?}",
        ended.duration_since(before)
    );
    assert!(
        last_in.duration_since(signed_in_by) >= IDLE,
        "it outlived its idle time by being used ({:?})",
        last_in.duration_since(signed_in_by)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_http_the_cookie_is_http_only_and_not_secure() {
    let s = SignInWorld::start("", false, ServerConfig::default()).await;
    let (_, answer) = s.callback_as("hub.clinician").await;
    let set = answer
        .set_cookies
        .iter()
        .find(|c| c.starts_with("gpc_session="))
        .unwrap_or_else(|| panic!("{:?}", answer.set_cookies));
    assert!(
        set.contains("; HttpOnly") && set.contains("; SameSite=Lax"),
        "{set}"
    );
    assert!(!set.contains("Secure"), "{set}");
}

/// The server as `serve --tls-cert --tls-key` runs it: HTTPS with a
/// certificate of a test CA, which the agent trusts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_https_the_cookies_are_secure_and_host_prefixed() {
    let certs = tempfile::tempdir().unwrap();
    let ca = DevCa::new("sessions test CA").unwrap();
    let issued = ca.issue("127.0.0.1", None, Validity::current()).unwrap();
    let ca_file = certs.path().join("ca.pem");
    std::fs::write(&ca_file, ca.cert_pem()).unwrap();
    let written = issued.write(certs.path(), "server", "127.0.0.1").unwrap();
    let tls = ServerTls {
        cert: written.cert,
        key: written.key,
        ..ServerTls::default()
    };
    let s = SignInWorld::start(
        "",
        false,
        ServerConfig {
            tls: Some(tls),
            ..ServerConfig::default()
        },
    )
    .await;
    assert!(s.web.starts_with("https://"), "{}", s.web);
    let client_tls = gpc_server::tls::client_config(&ClientTls {
        ca: ca_file,
        identity: None,
    })
    .unwrap();
    let http = reqwest::Client::builder()
        .use_preconfigured_tls(client_tls)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    let mut agent = Agent::with(http.clone());
    let start = agent.get(&format!("{}/auth/sign-in", s.web)).await;
    assert_eq!(start.status, 303, "{}", start.body);
    let pending = host_cookie(&start.set_cookies, "gpc_sign_in");
    assert!(pending.contains("; Secure"), "{pending}");

    let mut agent = Agent::with(http.clone());
    let callback = agent.log_in(&s.web, "hub.clinician").await;
    let answer = agent.get(&callback).await;
    assert_eq!(answer.status, 303, "{}", answer.body);
    let session = host_cookie(&answer.set_cookies, "gpc_session");
    assert!(session.contains("; Secure"), "{session}");
    let token = agent.cookie(&s.web, "__Host-gpc_session").unwrap();
    // The cookie under its HTTPS name lets its holder in; under the plain
    // name it does not.
    let page = agent.get(&format!("{}/patient", s.web)).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Aisha OKAFOR"));
    let plain = http
        .get(format!("{}/patient", s.web))
        .header("cookie", format!("gpc_session={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 303);
}

/// The `Set-Cookie` of `__Host-{name}`, checked for what the prefix
/// requires of it (Secure, `Path=/`, no Domain) and HttpOnly.
fn host_cookie<'a>(set_cookies: &'a [String], name: &str) -> &'a str {
    let set = set_cookies
        .iter()
        .find(|c| c.starts_with(&format!("__Host-{name}=")))
        .unwrap_or_else(|| panic!("no __Host-{name} in {set_cookies:?}"));
    assert!(
        set.contains("; Path=/;") || set.ends_with("; Path=/"),
        "{set}"
    );
    assert!(!set.to_ascii_lowercase().contains("domain="), "{set}");
    assert!(set.contains("; HttpOnly"), "{set}");
    assert!(set.contains("; SameSite=Lax"), "{set}");
    set
}
