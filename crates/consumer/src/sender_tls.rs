//! The TLS of the engine's requests: on the Spine every hop is mutually
//! authenticated, so each request presents the certificate of the
//! organisation it is sent for. Reading the files is the caller's (the
//! server crate holds the PEM code); this crate keeps one pooled client per
//! organisation, made on the first request for it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Where the TLS configuration of an organisation's requests comes from.
pub trait SenderTls: Send + Sync + std::fmt::Debug {
    /// What requests sent for the organisation `ods` trust and present; an
    /// error says, in words for the person sending, what is missing.
    fn client_config(&self, ods: &str) -> Result<rustls::ClientConfig, String>;
}

/// One client per sending organisation, made when first needed. A failure
/// is not kept, so that a certificate added later is found at the next try.
#[derive(Clone)]
pub(crate) struct ClientsByOrganisation {
    tls: Arc<dyn SenderTls>,
    clients: Arc<Mutex<HashMap<String, reqwest::Client>>>,
}

impl ClientsByOrganisation {
    pub(crate) fn new(tls: Arc<dyn SenderTls>) -> Self {
        Self {
            tls,
            clients: Arc::default(),
        }
    }

    pub(crate) fn get(
        &self,
        ods: &str,
        make: impl FnOnce(rustls::ClientConfig) -> Result<reqwest::Client, String>,
    ) -> Result<reqwest::Client, String> {
        // Held while the first client of an organisation is made (two small
        // files read), so that concurrent first sends make it once; a
        // poisoned map only ever held complete entries.
        let mut clients = self
            .clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(client) = clients.get(ods) {
            return Ok(client.clone());
        }
        let client = make(self.tls.client_config(ods)?)?;
        clients.insert(ods.to_owned(), client.clone());
        Ok(client)
    }
}

/// What a failed TLS handshake was about, when the error chain says: the
/// other side refused the certificate presented (an alert), or its own
/// certificate is not trusted.
pub(crate) fn tls_refusal(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut current = Some(error);
    while let Some(e) = current {
        let rustls_error = e.downcast_ref::<rustls::Error>().or_else(|| {
            e.downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        });
        match rustls_error {
            Some(rustls::Error::AlertReceived(alert)) => {
                return Some(format!("it refused the TLS connection ({alert:?})"));
            }
            Some(rustls::Error::InvalidCertificate(why)) => {
                return Some(format!("its certificate is not trusted ({why:?})"));
            }
            _ => {}
        }
        current = e.source();
    }
    None
}
