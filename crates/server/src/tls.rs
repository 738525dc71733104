//! HTTPS, optionally with client certificates (mutual TLS): rustls with the
//! ring provider. [`serve`] runs any axum `Router` over TLS and hands each
//! request the verified client certificate's common name as a
//! [`PeerCertificate`] extension, which the SSP maps to an ASID.

pub mod certs;
mod sender;
mod subject;

use axum::Router;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::net::TcpListener;

pub use sender::{SenderCerts, SenderTls};
pub use subject::common_name;

/// The files of a server that speaks HTTPS.
#[derive(Debug, Clone, Default)]
pub struct ServerTls {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// When set, every client must present a certificate signed by this CA.
    pub client_ca: Option<PathBuf>,
    /// When not empty, only client certificates whose subject common name is
    /// listed are accepted (e.g. a provider that accepts only the SSP).
    pub allowed_client_subjects: Vec<String>,
}

/// What a client trusts, and the certificate it presents, if any.
#[derive(Debug, Clone, Default)]
pub struct ClientTls {
    pub ca: PathBuf,
    /// Certificate and key presented to servers that ask for one.
    pub identity: Option<(PathBuf, PathBuf)>,
}

/// The verified client certificate of the connection a request came on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCertificate {
    /// The subject common name; `None` when it has none in text form.
    pub common_name: Option<String>,
}

/// The only crypto provider used: ring, explicitly, so that no process-wide
/// default has to be installed and aws-lc-rs is never needed.
pub fn crypto() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read certificates from {}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("no certificate in {}", path.display()));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_file(path)
        .map_err(|e| format!("cannot read a private key from {}: {e}", path.display()))
}

fn read_roots(path: &Path) -> Result<Arc<RootCertStore>, String> {
    let mut roots = RootCertStore::empty();
    for cert in read_certs(path)? {
        roots
            .add(cert)
            .map_err(|e| format!("{} is not a usable CA certificate: {e}", path.display()))?;
    }
    Ok(Arc::new(roots))
}

/// The rustls configuration of an HTTPS server.
pub fn server_config(tls: &ServerTls) -> Result<Arc<rustls::ServerConfig>, String> {
    let builder = rustls::ServerConfig::builder_with_provider(crypto())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))?;
    let builder = match &tls.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(read_roots(ca)?, crypto())
                .build()
                .map_err(|e| format!("cannot verify clients with {}: {e}", ca.display()))?;
            let verifier: Arc<dyn ClientCertVerifier> = if tls.allowed_client_subjects.is_empty() {
                verifier
            } else {
                Arc::new(AllowedSubjects {
                    inner: verifier,
                    allowed: tls.allowed_client_subjects.clone(),
                })
            };
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(read_certs(&tls.cert)?, read_key(&tls.key)?)
        .map_err(|e| {
            format!(
                "{} and {} do not make a usable identity: {e}",
                tls.cert.display(),
                tls.key.display()
            )
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The rustls configuration of an HTTPS client: trusts only `tls.ca`.
pub fn client_config(tls: &ClientTls) -> Result<rustls::ClientConfig, String> {
    let builder = rustls::ClientConfig::builder_with_provider(crypto())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))?
        .with_root_certificates(read_roots(&tls.ca)?);
    match &tls.identity {
        None => Ok(builder.with_no_client_auth()),
        Some((cert, key)) => builder
            .with_client_auth_cert(read_certs(cert)?, read_key(key)?)
            .map_err(|e| {
                format!(
                    "{} and {} do not make a usable identity: {e}",
                    cert.display(),
                    key.display()
                )
            }),
    }
}

/// Refuses, during the handshake, client certificates whose subject common
/// name is not listed, after the CA's own checks (chain, validity) pass.
#[derive(Debug)]
struct AllowedSubjects {
    inner: Arc<dyn ClientCertVerifier>,
    allowed: Vec<String>,
}

impl ClientCertVerifier for AllowedSubjects {
    fn offer_client_auth(&self) -> bool {
        self.inner.offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        match common_name(end_entity) {
            Some(cn) if self.allowed.contains(&cn) => Ok(verified),
            _ => Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            )),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Serves `router` over TLS on `listener` until `shutdown` resolves, then
/// lets in-flight requests finish (for a bounded time), with the default
/// [`Limits`](crate::limits::Limits).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    config: Arc<rustls::ServerConfig>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    let limits = crate::limits::Limits::default();
    crate::connections::serve(listener, router, Some(config), &limits, shutdown).await
}
