//! The configuration file of a part run on its own (`gpc-tasks provider`,
//! `ssp`, `directory`): where it listens, where its data lives, and the URLs
//! of the other parts. Environment variables override the file, so that
//! secrets and per-host URLs need not be written into it.

use gpc_server::ssp::SspConfig;
use gpc_server::tls::{ClientTls, SenderCerts, SenderTls, ServerTls};
use gpc_server::{ConsumerConfig, Parts, ServerConfig};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The file, as written. Every field is optional but `listen`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub listen: Option<SocketAddr>,
    pub public_url: Option<String>,
    pub data_dir: Option<PathBuf>,
    /// PostgreSQL instead of SQLite in `data_dir` (better set by DATABASE_URL:
    /// it may carry a password).
    pub database_url: Option<String>,
    #[serde(default)]
    pub urls: Urls,
    pub tls: Option<TlsSection>,
    #[serde(default)]
    pub ssp: SspSection,
    /// When present, this part also sends (a provider's task updates back
    /// to the tasks' senders), through `urls.ssp` and `urls.directory`.
    pub consumer: Option<ConsumerSection>,
    /// Where `/metrics`, `/livez` and `/readyz` are served; off when unset.
    pub metrics_listen: Option<SocketAddr>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsumerSection {
    /// `{ODS}.pem` and `{ODS}.key` for every organisation it sends for; needs `tls.ca`.
    pub certs_dir: Option<PathBuf>,
}

/// Where the other parts are.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Urls {
    /// Base under which the providers' roots live (`{provider}/{ODS}/DSTU2/1`):
    /// the endpoints SDS lists and the only targets the SSP forwards to.
    pub provider: Option<String>,
    /// The Spine Security Proxy (`{ssp}/{target URL}`), for consumers.
    pub ssp: Option<String>,
    /// The server hosting the directory APIs, for consumers.
    pub directory: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSection {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: Option<PathBuf>,
    #[serde(default)]
    pub allow_clients: Vec<String>,
    /// The CA this part trusts when it sends (`[consumer]`).
    pub ca: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SspSection {
    pub timeout_ms: Option<u64>,
    pub ca: Option<PathBuf>,
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
}

impl ConfigFile {
    pub fn read(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the configuration {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Applies the environment: GPC_LISTEN, GPC_METRICS_LISTEN, GPC_PUBLIC_URL, GPC_DATA_DIR, DATABASE_URL,
    /// GPC_PROVIDER_URL, GPC_SSP_URL, GPC_DIRECTORY_URL, GPC_TLS_CERT,
    /// GPC_TLS_KEY and GPC_SSP_CLIENT_KEY win over the file.
    pub fn with_env(mut self, env: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        if let Some(v) = env("GPC_LISTEN") {
            self.listen = Some(
                v.parse()
                    .map_err(|_| format!("GPC_LISTEN '{v}' is not an address:port"))?,
            );
        }
        if let Some(v) = env("GPC_METRICS_LISTEN") {
            self.metrics_listen = Some(
                v.parse()
                    .map_err(|_| format!("GPC_METRICS_LISTEN '{v}' is not an address:port"))?,
            );
        }
        if let Some(v) = env("GPC_PUBLIC_URL") {
            self.public_url = Some(v);
        }
        if let Some(v) = env("GPC_DATA_DIR") {
            self.data_dir = Some(v.into());
        }
        if let Some(v) = env("DATABASE_URL") {
            self.database_url = Some(v);
        }
        if let Some(v) = env("GPC_PROVIDER_URL") {
            self.urls.provider = Some(v);
        }
        if let Some(v) = env("GPC_SSP_URL") {
            self.urls.ssp = Some(v);
        }
        if let Some(v) = env("GPC_DIRECTORY_URL") {
            self.urls.directory = Some(v);
        }
        match (env("GPC_TLS_CERT"), env("GPC_TLS_KEY"), self.tls.as_mut()) {
            (cert, key, Some(tls)) => {
                if let Some(c) = cert {
                    tls.cert = c.into();
                }
                if let Some(k) = key {
                    tls.key = k.into();
                }
            }
            (Some(cert), Some(key), None) => {
                self.tls = Some(TlsSection {
                    cert: cert.into(),
                    key: key.into(),
                    client_ca: None,
                    allow_clients: Vec::new(),
                    ca: None,
                });
            }
            (None, None, None) => {}
            _ => return Err("GPC_TLS_CERT and GPC_TLS_KEY go together".into()),
        }
        if let Some(v) = env("GPC_SSP_CLIENT_KEY") {
            self.ssp.client_key = Some(v.into());
        }
        Ok(self)
    }

    /// The server configuration of `parts`.
    pub fn server_config(mut self, parts: Parts) -> Result<ServerConfig, String> {
        let listen = self
            .listen
            .ok_or("the configuration must set `listen` (address:port)")?;
        if (parts.ssp || parts.directory) && !parts.provider && self.urls.provider.is_none() {
            return Err(
                "the configuration must set urls.provider: the base of the providers' endpoints"
                    .into(),
            );
        }
        let consumer = match self.consumer.take() {
            None => None,
            Some(section) => Some(self.consumer_config(section)?),
        };
        let client_tls = match (self.ssp.ca, self.ssp.client_cert, self.ssp.client_key) {
            (None, None, None) => None,
            (Some(ca), None, None) => Some(ClientTls { ca, identity: None }),
            (Some(ca), Some(cert), Some(key)) => Some(ClientTls {
                ca,
                identity: Some((cert, key)),
            }),
            _ => {
                return Err(
                    "ssp.client_cert and ssp.client_key go together, and need ssp.ca".into(),
                );
            }
        };
        Ok(ServerConfig {
            listen,
            public_url: self.public_url,
            data_dir: self.data_dir.unwrap_or_else(|| PathBuf::from("./data")),
            tls: self.tls.map(|t| ServerTls {
                cert: t.cert,
                key: t.key,
                client_ca: t.client_ca,
                allowed_client_subjects: t.allow_clients,
            }),
            ssp: SspConfig {
                provider_base: self.urls.provider,
                timeout: Duration::from_millis(self.ssp.timeout_ms.unwrap_or(10_000)),
                client_tls,
            },
            parts,
            consumer,
            database_url: self.database_url,
            limits: gpc_server::limits::Limits::from_env()?,
            seed: Some(gpc_directory::demo_region()),
            // The parts run apart have no web UI.
            auth: gpc_web::AuthMode::Demo,
            sessions: gpc_web::SessionLimits::default(),
            metrics_listen: self.metrics_listen,
        })
    }
}

impl ConfigFile {
    /// The sending side of a part: the directory is asked with the part's own certificate.
    fn consumer_config(&self, section: ConsumerSection) -> Result<ConsumerConfig, String> {
        let tls = self.tls.as_ref();
        let ca = tls.and_then(|t| t.ca.clone());
        let tls = match (ca, section.certs_dir) {
            (None, None) => None,
            (None, Some(_)) => return Err("consumer.certs_dir needs tls.ca".into()),
            (Some(ca), certs_dir) => Some(SenderTls {
                ca,
                certs: certs_dir.map_or(SenderCerts::None, SenderCerts::Folder),
                directory_identity: tls.map(|t| (t.cert.clone(), t.key.clone())),
            }),
        };
        Ok(ConsumerConfig {
            ssp_url: self.urls.ssp.clone(),
            directory_url: self.urls.directory.clone(),
            tls,
            ..ConsumerConfig::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
listen = "127.0.0.1:8082"
data_dir = "/var/lib/gpc-ssp"

[urls]
provider = "https://provider.example:8443"

[ssp]
timeout_ms = 2500
ca = "/etc/gpc/ca.pem"
client_cert = "/etc/gpc/ssp.pem"
client_key = "/etc/gpc/ssp.key"
"#;

    #[test]
    fn a_file_becomes_a_server_config() {
        let file: ConfigFile = toml::from_str(FILE).unwrap();
        let config = file.server_config(Parts::SSP).unwrap();
        assert_eq!(config.listen.port(), 8082);
        assert_eq!(config.data_dir, PathBuf::from("/var/lib/gpc-ssp"));
        assert_eq!(
            config.ssp.provider_base.as_deref(),
            Some("https://provider.example:8443")
        );
        assert_eq!(config.ssp.timeout, Duration::from_millis(2500));
        let tls = config.ssp.client_tls.unwrap();
        assert_eq!(tls.identity.unwrap().1, PathBuf::from("/etc/gpc/ssp.key"));
        assert_eq!(config.parts, Parts::SSP);
        assert_eq!(config.metrics_listen, None, "off unless asked for");
    }

    #[test]
    fn environment_overrides_the_file() {
        let file: ConfigFile = toml::from_str(FILE).unwrap();
        let env = |k: &str| match k {
            "GPC_PROVIDER_URL" => Some("http://10.0.0.5:8081".to_owned()),
            "GPC_SSP_CLIENT_KEY" => Some("/run/secrets/ssp.key".to_owned()),
            "GPC_LISTEN" => Some("0.0.0.0:9000".to_owned()),
            "GPC_METRICS_LISTEN" => Some("127.0.0.1:9100".to_owned()),
            _ => None,
        };
        let config = file
            .with_env(env)
            .unwrap()
            .server_config(Parts::SSP)
            .unwrap();
        assert_eq!(
            config.ssp.provider_base.as_deref(),
            Some("http://10.0.0.5:8081")
        );
        assert_eq!(config.listen.port(), 9000);
        assert_eq!(config.metrics_listen.map(|a| a.port()), Some(9100));
        assert_eq!(
            config.ssp.client_tls.unwrap().identity.unwrap().1,
            PathBuf::from("/run/secrets/ssp.key")
        );
    }

    #[test]
    fn a_provider_that_sends_its_updates_over_mutual_tls() {
        let file: ConfigFile = toml::from_str(
            r#"
listen = "127.0.0.1:8081"
[urls]
ssp = "https://ssp.example:8443/ssp"
directory = "https://directory.example:8443"
[tls]
cert = "/etc/gpc/GPC001.pem"
key = "/etc/gpc/GPC001.key"
ca = "/etc/gpc/ca.pem"
[consumer]
certs_dir = "/etc/gpc/senders"
"#,
        )
        .unwrap();
        let consumer = file
            .server_config(Parts::PROVIDER)
            .unwrap()
            .consumer
            .unwrap();
        assert_eq!(
            consumer.ssp_url.as_deref(),
            Some("https://ssp.example:8443/ssp")
        );
        let tls = consumer.tls.unwrap();
        assert_eq!(tls.ca, PathBuf::from("/etc/gpc/ca.pem"));
        assert!(matches!(&tls.certs, SenderCerts::Folder(d) if d == Path::new("/etc/gpc/senders")));
        assert_eq!(
            tls.directory_identity.unwrap().0,
            PathBuf::from("/etc/gpc/GPC001.pem")
        );
        let no_ca: ConfigFile =
            toml::from_str("listen = \"127.0.0.1:1\"\n[consumer]\ncerts_dir = \"/x\"").unwrap();
        let err = no_ca.server_config(Parts::PROVIDER).unwrap_err();
        assert!(err.contains("tls.ca"), "{err}");
        let without: ConfigFile = toml::from_str(FILE).unwrap();
        assert!(
            without
                .server_config(Parts::SSP)
                .unwrap()
                .consumer
                .is_none()
        );
    }

    #[test]
    fn mistakes_are_named() {
        assert!(toml::from_str::<ConfigFile>("listen = \"x\"").is_err());
        let unknown = toml::from_str::<ConfigFile>("listen = \"127.0.0.1:1\"\nlisten_port = 3");
        assert!(unknown.unwrap_err().to_string().contains("listen_port"));
        let no_provider: ConfigFile = toml::from_str("listen = \"127.0.0.1:1\"").unwrap();
        let err = no_provider.server_config(Parts::SSP).unwrap_err();
        assert!(err.contains("urls.provider"), "{err}");
        let no_listen = ConfigFile::default()
            .server_config(Parts::PROVIDER)
            .unwrap_err();
        assert!(no_listen.contains("listen"), "{no_listen}");
    }
}
