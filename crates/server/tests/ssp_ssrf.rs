//! The SSP never forwards anywhere but under the endpoint registered for
//! `Ssp-To`. The registered providers live on a decoy listener here, so that
//! anything forwarded, to the right place or not, would show up as a hit.
//! Requests are written byte for byte: an HTTP client would normalise `..`
//! and percent-encoded dots away before they reached the SSP.

// A test crate sees every dev-dependency of its package, and uses only some.
#![allow(unused_crate_dependencies)]
// Helpers outside `#[test]` functions panic on purpose too: a failure is the test's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod ssp_support;

use gpc_server::ServerConfig;
use gpc_server::ssp::SspConfig;
use gpc_testkit::*;
use ssp_support::*;
use std::time::Duration;

async fn ssp_in_front_of(decoy: &Decoy) -> TestServer {
    let config = ServerConfig {
        ssp: SspConfig {
            provider_base: Some(format!("http://127.0.0.1:{}", decoy.port)),
            timeout: Duration::from_millis(300),
            ..SspConfig::default()
        },
        ..ServerConfig::default()
    };
    TestServer::start_with(tempfile::tempdir().unwrap(), config).await
}

/// `GET /ssp/{target}` with valid Y00001 → GPC001 metadata headers.
async fn attempt(s: &TestServer, target: &str) -> RawAnswer {
    let head = format!(
        "GET /ssp/{target} HTTP/1.1\r\nHost: {}\r\n{}",
        authority(&s.base),
        header_lines(&hub_to_gpc001(METADATA))
    );
    raw_request(authority(&s.base), &head, b"").await
}

#[tokio::test]
async fn ssrf_attempts_are_refused_and_never_forwarded() {
    let decoy = Decoy::start().await;
    let s = ssp_in_front_of(&decoy).await;
    let d = decoy.port;
    let other_port = closed_port().await;
    let ssp_port = authority(&s.base).rsplit(':').next().unwrap().to_owned();
    let attempts = [
        // userinfo
        format!("http://user:pass@127.0.0.1:{d}/GPC001/DSTU2/1/metadata"),
        format!("http://127.0.0.1:{d}@evil.example/GPC001/DSTU2/1/metadata"),
        // other hosts
        format!("http://localhost:{d}/GPC001/DSTU2/1/metadata"),
        format!("http://127.0.0.2:{d}/GPC001/DSTU2/1/metadata"),
        "http://evil.example/GPC001/DSTU2/1/metadata".to_owned(),
        // other ports, including the SSP's own
        format!("http://127.0.0.1:{other_port}/GPC001/DSTU2/1/metadata"),
        format!("http://127.0.0.1:{ssp_port}/GPC001/DSTU2/1/metadata"),
        "http://127.0.0.1/GPC001/DSTU2/1/metadata".to_owned(),
        // dot segments, raw and percent-encoded
        format!("http://127.0.0.1:{d}/GPC001/DSTU2/1/../../../R1A14/DSTU2/1/metadata"),
        format!("http://127.0.0.1:{d}/GPC001/DSTU2/1/../../../admin"),
        format!("http://127.0.0.1:{d}/GPC001/DSTU2/1/%2e%2e/%2e%2e/%2e%2e/admin"),
        format!("http://127.0.0.1:{d}/GPC001/DSTU2/1/%2E%2E/metadata"),
        format!("http://127.0.0.1:{d}/GPC001/DSTU2/1/./metadata"),
        // encoded separators
        format!("http://127.0.0.1:{d}/GPC001/DSTU2/1/..%2F..%2F..%2Fadmin"),
        format!("http://127.0.0.1:{d}/GPC001%2FDSTU2%2F1/metadata"),
        format!("http://127.0.0.1:{d}/GPC001/DSTU2/1/..%5C..%5Cadmin"),
        // IPv6 forms of loopback
        format!("http://[::1]:{d}/GPC001/DSTU2/1/metadata"),
        format!("http://[::ffff:127.0.0.1]:{d}/GPC001/DSTU2/1/metadata"),
        // scheme change
        format!("https://127.0.0.1:{d}/GPC001/DSTU2/1/metadata"),
        "file:///etc/passwd".to_owned(),
        // path prefix tricks
        format!("http://127.0.0.1:{d}/GPC0011/DSTU2/1/metadata"),
        format!("http://127.0.0.1:{d}/GPC001/DSTU2/10/metadata"),
        format!("http://127.0.0.1:{d}//GPC001/DSTU2/1/metadata"),
    ];
    for target in &attempts {
        let answer = attempt(&s, target).await;
        let body = answer.json();
        assert_eq!(answer.status, 400, "{target}: {body}");
        assert_eq!(
            error_code(&body),
            "ENDPOINT_VARIES_FROM_TARGETURL",
            "{target}: {body}"
        );
        assert!(
            body["issue"][0]["diagnostics"]
                .as_str()
                .unwrap()
                .starts_with("ENDPOINT_VARIES_FROM_TARGETURL: ")
        );
    }
    // A raw backslash is not even a valid request target: the HTTP layer
    // refuses it before the SSP sees it.
    let answer = attempt(
        &s,
        &format!("http://127.0.0.1:{d}/GPC001/DSTU2/1\\..\\admin"),
    )
    .await;
    assert_eq!(answer.status, 400);

    assert_eq!(
        decoy.settled_hits().await,
        0,
        "an attempt reached the decoy"
    );

    // The decoy does count what is forwarded: the legitimate target times out there.
    let answer = attempt(&s, &format!("http://127.0.0.1:{d}/GPC001/DSTU2/1/metadata")).await;
    assert_eq!(answer.status, 504, "{:?}", answer.json());
    assert_eq!(decoy.settled_hits().await, 1);
}
