//! The sending side's certificates: the CA it trusts for the SSP, the
//! directory and providers, and the certificate it presents for each
//! organisation it sends for (CN = that organisation's ASID, as `gpc-tasks
//! certs` writes them).

use super::{ClientTls, client_config, read_roots};
use std::path::{Path, PathBuf};

/// What the sending engine trusts and presents.
#[derive(Debug, Clone)]
pub struct SenderTls {
    pub ca: PathBuf,
    pub certs: SenderCerts,
    /// Presented to the directory APIs, whose look-ups are the system's
    /// rather than one organisation's (`serve`: its own `--tls-cert`).
    pub directory_identity: Option<(PathBuf, PathBuf)>,
}

/// The certificate a request for an organisation presents.
#[derive(Debug, Clone)]
pub enum SenderCerts {
    /// None: a server that asks for one refuses the connection.
    None,
    /// The same for every request (the command line sends for one organisation).
    One { cert: PathBuf, key: PathBuf },
    /// `{ODS}.pem` and `{ODS}.key` in a folder, per organisation (`serve`).
    Folder(PathBuf),
}

impl SenderTls {
    /// The files of `ods`'s certificate, or why there are none.
    fn identity(&self, ods: &str) -> Result<Option<(PathBuf, PathBuf)>, String> {
        match &self.certs {
            SenderCerts::None => Ok(None),
            SenderCerts::One { cert, key } => Ok(Some((cert.clone(), key.clone()))),
            SenderCerts::Folder(dir) => folder_identity(dir, ods).map(Some),
        }
    }

    /// Reads the CA and the one certificate, if that is what is presented,
    /// so that a wrong path is an error at start rather than at the first send.
    pub fn check(&self) -> Result<(), String> {
        read_roots(&self.ca)?;
        if let SenderCerts::One { cert, key } = &self.certs {
            client_config(&ClientTls {
                ca: self.ca.clone(),
                identity: Some((cert.clone(), key.clone())),
            })?;
        }
        if let Some(identity) = &self.directory_identity {
            client_config(&ClientTls {
                ca: self.ca.clone(),
                identity: Some(identity.clone()),
            })?;
        }
        Ok(())
    }

    /// For each organisation of `organisations` that has no usable
    /// certificate in the folder, why not.
    pub fn missing<'a>(&self, organisations: impl IntoIterator<Item = &'a str>) -> Vec<String> {
        organisations
            .into_iter()
            .filter_map(|ods| self.client_config_for(ods).err())
            .collect()
    }

    fn client_config_for(&self, ods: &str) -> Result<rustls::ClientConfig, String> {
        client_config(&ClientTls {
            ca: self.ca.clone(),
            identity: self.identity(ods)?,
        })
    }

    /// The client TLS of the directory APIs.
    pub fn directory_config(&self) -> Result<rustls::ClientConfig, String> {
        let identity = match (&self.directory_identity, &self.certs) {
            (Some(identity), _) => Some(identity.clone()),
            (None, SenderCerts::One { cert, key }) => Some((cert.clone(), key.clone())),
            (None, _) => None,
        };
        client_config(&ClientTls {
            ca: self.ca.clone(),
            identity,
        })
    }
}

fn folder_identity(dir: &Path, ods: &str) -> Result<(PathBuf, PathBuf), String> {
    let cert = dir.join(format!("{ods}.pem"));
    let key = dir.join(format!("{ods}.key"));
    if !cert.is_file() || !key.is_file() {
        return Err(format!(
            "No certificate for {ods}: {} needs {ods}.pem and {ods}.key (gpc-tasks certs --out writes them)",
            dir.display()
        ));
    }
    Ok((cert, key))
}

impl gpc_consumer::SenderTls for SenderTls {
    fn client_config(&self, ods: &str) -> Result<rustls::ClientConfig, String> {
        self.client_config_for(ods)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::certs::DevCa;

    #[test]
    fn a_folder_gives_each_organisation_its_own_certificate_and_names_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let systems = [("GPC001".to_owned(), "200000000359".to_owned())];
        DevCa::new("test CA")
            .unwrap()
            .write_set(dir.path(), &systems)
            .unwrap();
        let tls = SenderTls {
            ca: dir.path().join(crate::tls::certs::CA_FILE),
            certs: SenderCerts::Folder(dir.path().to_owned()),
            directory_identity: None,
        };
        tls.check().unwrap();
        assert!(gpc_consumer::SenderTls::client_config(&tls, "GPC001").is_ok());
        let missing = tls.missing(["GPC001", "Y00001"]);
        assert_eq!(missing.len(), 1, "{missing:?}");
        assert!(
            missing[0].starts_with("No certificate for Y00001"),
            "{missing:?}"
        );
        assert!(
            missing[0].contains("Y00001.pem and Y00001.key"),
            "{missing:?}"
        );
    }
}
