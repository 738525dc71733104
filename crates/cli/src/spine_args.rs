//! Command-line options for HTTPS / mutual TLS and for the SSP, turned into
//! the server's configuration. Kept apart so that every sub-command that
//! runs a server part can flatten the same options.

use gpc_server::ssp::SspConfig;
use gpc_server::tls::{ClientTls, ServerTls};
use std::path::PathBuf;
use std::time::Duration;

#[derive(clap::Args, Debug, Clone, Default)]
pub struct TlsArgs {
    /// Serve HTTPS with this certificate (PEM); plain HTTP without it.
    #[arg(long, env = "GPC_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, env = "GPC_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Require every client to present a certificate signed by this CA (mutual TLS).
    #[arg(long, env = "GPC_CLIENT_CA", requires = "tls_cert")]
    pub client_ca: Option<PathBuf>,
    /// Accept only client certificates with this subject common name; repeat
    /// for several (e.g. `spine-security-proxy` for a provider reached only
    /// through the SSP).
    #[arg(
        long = "allow-client",
        value_name = "COMMON_NAME",
        requires = "client_ca"
    )]
    pub allowed_clients: Vec<String>,
}

impl TlsArgs {
    pub fn config(&self) -> Option<ServerTls> {
        let (cert, key) = (self.tls_cert.clone()?, self.tls_key.clone()?);
        Some(ServerTls {
            cert,
            key,
            client_ca: self.client_ca.clone(),
            allowed_client_subjects: self.allowed_clients.clone(),
        })
    }
}

#[derive(clap::Args, Debug, Clone)]
pub struct SspArgs {
    /// Base URL under which the Spine registry (SDS) lists provider endpoints,
    /// `{base}/{ODS}/DSTU2/1`; the public URL by default.
    #[arg(long, env = "GPC_SPINE_PROVIDER_BASE")]
    pub spine_provider_base: Option<String>,
    /// How long the SSP waits for a provider's answer, in milliseconds.
    #[arg(long, default_value_t = 10_000, env = "GPC_SSP_TIMEOUT_MS")]
    pub ssp_timeout_ms: u64,
    /// CA the SSP trusts when it calls providers over HTTPS.
    #[arg(long, env = "GPC_SSP_CA")]
    pub ssp_ca: Option<PathBuf>,
    /// Certificate (PEM) the SSP presents to providers.
    #[arg(long, env = "GPC_SSP_CLIENT_CERT", requires_all = ["ssp_client_key", "ssp_ca"])]
    pub ssp_client_cert: Option<PathBuf>,
    /// The private key (PEM) of --ssp-client-cert.
    #[arg(long, env = "GPC_SSP_CLIENT_KEY", requires = "ssp_client_cert")]
    pub ssp_client_key: Option<PathBuf>,
}

impl SspArgs {
    pub fn config(&self) -> SspConfig {
        let identity = self
            .ssp_client_cert
            .clone()
            .zip(self.ssp_client_key.clone());
        SspConfig {
            provider_base: self.spine_provider_base.clone(),
            timeout: Duration::from_millis(self.ssp_timeout_ms),
            client_tls: self.ssp_ca.clone().map(|ca| ClientTls { ca, identity }),
        }
    }
}
