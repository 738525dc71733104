//! Development certificates: a CA, and for each system a certificate and key
//! usable both as a server and as a client, valid for `localhost` and
//! `127.0.0.1`. `gpc-tasks certs` and the tests use the same code.
//!
//! A system's certificate carries its ASID as the subject common name (the
//! organisation's ODS code goes in the organisational unit); the SSP's
//! carries [`SSP_COMMON_NAME`]. The SSP maps a client certificate to an ASID
//! by that common name.

use jiff::civil::Date;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};
use std::path::{Path, PathBuf};

/// The subject common name of the SSP's own certificate.
pub const SSP_COMMON_NAME: &str = "spine-security-proxy";
/// File names inside the output folder.
pub const CA_FILE: &str = "ca.pem";
pub const SSP_NAME: &str = "ssp";

/// The dates a certificate is valid between (UTC, inclusive).
#[derive(Debug, Clone, Copy)]
pub struct Validity {
    pub not_before: Date,
    pub not_after: Date,
}

impl Validity {
    /// From yesterday, so that a clock slightly behind still accepts it, for
    /// two years: long enough for a development setup, short enough to notice.
    pub fn current() -> Self {
        let today = jiff::Timestamp::now()
            .to_zoned(jiff::tz::TimeZone::UTC)
            .date();
        Self {
            not_before: today.yesterday().unwrap_or(today),
            not_after: today
                .checked_add(jiff::Span::new().years(2))
                .unwrap_or(today),
        }
    }

    /// Long past: for testing that expired certificates are refused.
    pub fn expired() -> Self {
        Self {
            not_before: jiff::civil::date(2020, 1, 1),
            not_after: jiff::civil::date(2021, 1, 1),
        }
    }

    fn apply(self, params: &mut CertificateParams) -> Result<(), String> {
        let convert = |d: Date| {
            let month = u8::try_from(d.month()).map_err(|e| e.to_string())?;
            let day = u8::try_from(d.day()).map_err(|e| e.to_string())?;
            Ok::<_, String>(rcgen::date_time_ymd(i32::from(d.year()), month, day))
        };
        params.not_before = convert(self.not_before)?;
        params.not_after = convert(self.not_after)?;
        Ok(())
    }
}

/// A certificate and its private key, PEM encoded.
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
    der: Vec<u8>,
}

impl Issued {
    pub fn der(&self) -> &[u8] {
        &self.der
    }
}

/// A development certificate authority, held in memory.
pub struct DevCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

fn err(e: rcgen::Error) -> String {
    format!("certificate generation failed: {e}")
}

impl DevCa {
    pub fn new(common_name: &str) -> Result<Self, String> {
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, common_name);
        name.push(DnType::OrganizationName, "gpc-tasks development");
        params.distinguished_name = name;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        Validity::current().apply(&mut params)?;
        let key = KeyPair::generate().map_err(err)?;
        let issuer = CertifiedIssuer::self_signed(params, key).map_err(err)?;
        Ok(Self { issuer })
    }

    pub fn cert_pem(&self) -> String {
        self.issuer.pem()
    }

    pub fn der(&self) -> &[u8] {
        self.issuer.der()
    }

    /// A certificate for one system, for both server and client use.
    pub fn issue(
        &self,
        common_name: &str,
        unit: Option<&str>,
        validity: Validity,
    ) -> Result<Issued, String> {
        let mut params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .map_err(err)?;
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, common_name);
        if let Some(unit) = unit {
            name.push(DnType::OrganizationalUnitName, unit);
        }
        params.distinguished_name = name;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        validity.apply(&mut params)?;
        let key = KeyPair::generate().map_err(err)?;
        let cert = params.signed_by(&key, &self.issuer).map_err(err)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            der: cert.der().to_vec(),
        })
    }
}

/// Where a system's certificate and key were written.
#[derive(Debug, Clone)]
pub struct Written {
    /// `ssp`, or the organisation's ODS code.
    pub name: String,
    pub common_name: String,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Writes a new development set into `out`: see [`DevCa::write_set`]. The
/// CA's key is not kept, so running again replaces the whole set.
pub fn write_development_set(
    out: &Path,
    systems: &[(String, String)],
) -> Result<Vec<Written>, String> {
    DevCa::new("gpc-tasks development CA")?.write_set(out, systems)
}

impl DevCa {
    /// Writes `ca.pem`, then `{name}.pem` and `{name}.key` for the SSP and for
    /// every `(ODS code, ASID)` given.
    pub fn write_set(
        &self,
        out: &Path,
        systems: &[(String, String)],
    ) -> Result<Vec<Written>, String> {
        std::fs::create_dir_all(out)
            .map_err(|e| format!("cannot create {}: {e}", out.display()))?;
        write(&out.join(CA_FILE), &self.cert_pem(), false)?;
        let mut wanted = vec![(SSP_NAME, SSP_COMMON_NAME, None)];
        wanted.extend(
            systems
                .iter()
                .map(|(ods, asid)| (ods.as_str(), asid.as_str(), Some(ods.as_str()))),
        );
        let mut written = Vec::new();
        for (name, common_name, unit) in wanted {
            let issued = self.issue(common_name, unit, Validity::current())?;
            written.push(issued.write(out, name, common_name)?);
        }
        Ok(written)
    }
}

impl Issued {
    /// Writes `{name}.pem` and `{name}.key` (private to the owner) into `out`.
    pub fn write(&self, out: &Path, name: &str, common_name: &str) -> Result<Written, String> {
        let cert = out.join(format!("{name}.pem"));
        let key = out.join(format!("{name}.key"));
        write(&cert, &self.cert_pem, false)?;
        write(&key, &self.key_pem, true)?;
        Ok(Written {
            name: name.to_owned(),
            common_name: common_name.to_owned(),
            cert,
            key,
        })
    }
}

fn write(path: &Path, contents: &str, secret: bool) -> Result<(), String> {
    use std::io::Write as _;
    let fail = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    // A key readable by others would let any local user act as that system,
    // so it is created private and an older file's mode is not kept.
    #[cfg(unix)]
    if secret {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(fail(e)),
            _ => {}
        }
    }
    #[cfg(not(unix))]
    let _ = secret;
    let mut file = options.open(path).map_err(fail)?;
    file.write_all(contents.as_bytes()).map_err(fail)
}
