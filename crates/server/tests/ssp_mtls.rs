//! Consumer → SSP → provider over mutual TLS, with certificates made by the
//! code behind `gpc-tasks certs`: the provider accepts only the SSP's
//! certificate, the SSP accepts any certificate of the CA and holds its
//! holder to the ASID the certificate names.

// A test crate sees every dev-dependency of its package, and uses only some.
#![allow(unused_crate_dependencies)]
// Helpers outside `#[test]` functions panic on purpose too: a failure is the test's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod ssp_support;

use gpc_server::ServerConfig;
use gpc_server::ssp::SspConfig;
use gpc_server::tls::certs::{DevCa, SSP_COMMON_NAME, Validity, Written};
use gpc_server::tls::{self, ClientTls, ServerTls};
use gpc_testkit::*;
use ssp_support::*;
use std::path::{Path, PathBuf};
use tempfile::TempDir;

struct Pki {
    dir: TempDir,
    ca: DevCa,
    written: Vec<Written>,
}

impl Pki {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ca = DevCa::new("test CA").unwrap();
        let systems = [("GPC001", GPC001_ASID), ("Y00001", Y00001_ASID)]
            .map(|(ods, asid)| (ods.to_owned(), asid.to_owned()));
        let written = ca.write_set(dir.path(), &systems).unwrap();
        Self { dir, ca, written }
    }

    fn ca_file(&self) -> PathBuf {
        self.dir.path().join(gpc_server::tls::certs::CA_FILE)
    }

    fn identity(&self, name: &str) -> (PathBuf, PathBuf) {
        let w = self.written.iter().find(|w| w.name == name).unwrap();
        (w.cert.clone(), w.key.clone())
    }

    fn server_tls(&self, name: &str, allowed: &[&str]) -> ServerTls {
        let (cert, key) = self.identity(name);
        ServerTls {
            cert,
            key,
            client_ca: Some(self.ca_file()),
            allowed_client_subjects: allowed.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    /// A reqwest client that trusts the CA and presents `identity`.
    fn client(&self, identity: Option<(PathBuf, PathBuf)>) -> reqwest::Client {
        https_client(&self.ca_file(), identity)
    }
}

fn https_client(ca: &Path, identity: Option<(PathBuf, PathBuf)>) -> reqwest::Client {
    let config = tls::client_config(&ClientTls {
        ca: ca.to_owned(),
        identity,
    })
    .unwrap();
    reqwest::Client::builder()
        .use_preconfigured_tls(config)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A provider that accepts only the SSP, and an SSP in front of it.
async fn provider_and_ssp(pki: &Pki) -> (TestServer, TestServer) {
    let provider = TestServer::start_with(
        tempfile::tempdir().unwrap(),
        ServerConfig {
            tls: Some(pki.server_tls("GPC001", &[SSP_COMMON_NAME])),
            ..ServerConfig::default()
        },
    )
    .await;
    assert!(provider.base.starts_with("https://"));
    let ssp = TestServer::start_with(
        tempfile::tempdir().unwrap(),
        ServerConfig {
            tls: Some(pki.server_tls("ssp", &[])),
            ssp: SspConfig {
                provider_base: Some(provider.base.clone()),
                client_tls: Some(ClientTls {
                    ca: pki.ca_file(),
                    identity: Some(pki.identity("ssp")),
                }),
                ..SspConfig::default()
            },
            ..ServerConfig::default()
        },
    )
    .await;
    (provider, ssp)
}

/// The server ended the handshake with `alert`: the client gets no answer.
fn assert_tls_refusal(result: reqwest::Result<reqwest::Response>, alert: &str) {
    let error = result.expect_err("refused");
    let mut chain = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        chain.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    assert!(
        chain.contains(&format!("received fatal alert: {alert}")),
        "{chain}"
    );
}

fn create_through(
    ssp: &TestServer,
    provider: &TestServer,
    client: &reqwest::Client,
) -> reqwest::RequestBuilder {
    client
        .post(ssp_url(
            &ssp.base,
            &format!("{}/Order", provider.root("GPC001")),
        ))
        .headers(hub_to_gpc001(CREATE))
        .header("content-type", JSON)
        .body(dawes_order().to_string())
}

#[tokio::test]
async fn a_task_goes_through_the_ssp_over_mutual_tls() {
    let pki = Pki::new();
    let (provider, ssp) = provider_and_ssp(&pki).await;
    let hub = pki.client(Some(pki.identity("Y00001")));
    let (status, headers, body) = send(create_through(&ssp, &provider, &hub)).await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().unwrap();
    assert_eq!(
        headers["location"],
        format!("{}/Order/{id}/_history/1", provider.root("GPC001")).as_str()
    );
}

#[tokio::test]
async fn the_provider_accepts_only_the_ssps_certificate() {
    let pki = Pki::new();
    let (provider, _ssp) = provider_and_ssp(&pki).await;
    let hub = pki.client(Some(pki.identity("Y00001")));
    let direct = hub
        .get(format!("{}/metadata", provider.root("GPC001")))
        .headers(hub_to_gpc001(METADATA))
        .send()
        .await;
    assert_tls_refusal(direct, "AccessDenied");
    // The SSP's certificate is let in.
    let as_ssp = pki.client(Some(pki.identity("ssp")));
    let (status, _, _) = send(
        as_ssp
            .get(format!("{}/metadata", provider.root("GPC001")))
            .headers(hub_to_gpc001(METADATA)),
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn clients_without_a_good_certificate_are_refused() {
    let pki = Pki::new();
    let (provider, ssp) = provider_and_ssp(&pki).await;

    // No certificate at all.
    let anonymous = pki.client(None);
    let refused = create_through(&ssp, &provider, &anonymous).send().await;
    assert_tls_refusal(refused, "CertificateRequired");

    // Signed by another CA, with the right ASID.
    let other_ca = DevCa::new("another CA").unwrap();
    let stranger = other_ca
        .issue(Y00001_ASID, Some("Y00001"), Validity::current())
        .unwrap()
        .write(pki.dir.path(), "stranger", Y00001_ASID)
        .unwrap();
    let client = pki.client(Some((stranger.cert, stranger.key)));
    assert_tls_refusal(
        create_through(&ssp, &provider, &client).send().await,
        "UnknownCA",
    );

    // Signed by the right CA, but expired.
    let expired = pki
        .ca
        .issue(Y00001_ASID, Some("Y00001"), Validity::expired())
        .unwrap()
        .write(pki.dir.path(), "expired", Y00001_ASID)
        .unwrap();
    let client = pki.client(Some((expired.cert, expired.key)));
    assert_tls_refusal(
        create_through(&ssp, &provider, &client).send().await,
        "CertificateExpired",
    );

    // The same path with a good certificate works.
    let hub = pki.client(Some(pki.identity("Y00001")));
    let (status, _, _) = send(create_through(&ssp, &provider, &hub)).await;
    assert_eq!(status, 201);
}

#[tokio::test]
async fn ssp_from_must_be_the_certificates_asid() {
    let pki = Pki::new();
    let (provider, ssp) = provider_and_ssp(&pki).await;
    // GPC001's certificate, Y00001's headers and token.
    let gpc = pki.client(Some(pki.identity("GPC001")));
    expect_refusal(
        create_through(&ssp, &provider, &gpc),
        403,
        "ASID_CHECK_FAILED_MESSAGESENDER",
        "forbidden",
    )
    .await;
    // The SSP's own certificate carries no ASID, so it cannot send through itself.
    let own = pki.client(Some(pki.identity("ssp")));
    expect_refusal(
        create_through(&ssp, &provider, &own),
        403,
        "ASID_CHECK_FAILED_MESSAGESENDER",
        "forbidden",
    )
    .await;
}

#[tokio::test]
async fn an_ssp_without_its_client_certificate_cannot_reach_the_provider() {
    let pki = Pki::new();
    let (provider, _) = provider_and_ssp(&pki).await;
    let bare_ssp = TestServer::start_with(
        tempfile::tempdir().unwrap(),
        ServerConfig {
            ssp: SspConfig {
                provider_base: Some(provider.base.clone()),
                client_tls: Some(ClientTls {
                    ca: pki.ca_file(),
                    identity: None,
                }),
                ..SspConfig::default()
            },
            ..ServerConfig::default()
        },
    )
    .await;
    expect_refusal(
        create_through(&bare_ssp, &provider, &client()),
        502,
        "ERROR_COMMUNICATING_TO_ENDPOINT",
        "transient",
    )
    .await;
}
