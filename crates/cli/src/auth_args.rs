//! How `serve` signs people in (sign-in.md §1): flags, or the `[auth]`
//! section of a TOML file (`--auth-config`), flags winning; the client secret
//! only from the environment (`GPC_OIDC_CLIENT_SECRET`), never a file.

use gpc_web::{AuthMode, ClientKey, OidcConfig, SessionLimits};
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(clap::Args, Debug, Default)]
pub struct AuthArgs {
    /// A TOML file whose `[auth]` section configures sign-in (see README).
    #[arg(long, env = "GPC_AUTH_CONFIG")]
    pub auth_config: Option<PathBuf>,
    /// demo (the picker of the demo region) or oidc.
    #[arg(long, env = "GPC_AUTH")]
    pub auth: Option<String>,
    #[arg(long, env = "GPC_OIDC_ISSUER")]
    pub oidc_issuer: Option<String>,
    #[arg(long, env = "GPC_OIDC_CLIENT_ID")]
    pub oidc_client_id: Option<String>,
    /// This server's `/auth/callback`, as registered with the provider.
    #[arg(long, env = "GPC_OIDC_REDIRECT_URL")]
    pub oidc_redirect_url: Option<String>,
    /// RSA key (PKCS#1 PEM) for `private_key_jwt`; its public key is served at /auth/jwks.json.
    #[arg(long, env = "GPC_OIDC_PRIVATE_KEY")]
    pub oidc_private_key: Option<PathBuf>,
    /// Scopes, comma-separated (default: CIS2's).
    #[arg(long, env = "GPC_OIDC_SCOPES", value_delimiter = ',')]
    pub oidc_scopes: Option<Vec<String>>,
}

/// `[auth]` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSection {
    pub mode: Option<String>,
    pub issuer: Option<String>,
    pub client_id: Option<String>,
    pub redirect_url: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub private_key: Option<PathBuf>,
    pub session_idle_minutes: Option<u64>,
    pub session_max_hours: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
struct AuthFile {
    #[serde(default)]
    auth: AuthSection,
}

impl AuthArgs {
    pub fn config(self) -> Result<(AuthMode, SessionLimits), String> {
        let file = match &self.auth_config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                toml::from_str::<AuthFile>(&text)
                    .map_err(|e| format!("{}: {e}", path.display()))?
                    .auth
            }
            None => AuthSection::default(),
        };
        let secret = std::env::var("GPC_OIDC_CLIENT_SECRET")
            .ok()
            .filter(|s| !s.is_empty());
        resolve(self, file, secret)
    }
}

fn resolve(
    args: AuthArgs,
    file: AuthSection,
    secret: Option<String>,
) -> Result<(AuthMode, SessionLimits), String> {
    let defaults = SessionLimits::default();
    let limits = SessionLimits {
        idle: file
            .session_idle_minutes
            .map_or(defaults.idle, |m| Duration::from_secs(m * 60)),
        max: file
            .session_max_hours
            .map_or(defaults.max, |h| Duration::from_secs(h * 3600)),
    };
    let mode = args.auth.or(file.mode).unwrap_or_else(|| "demo".into());
    match mode.as_str() {
        "demo" => Ok((AuthMode::Demo, limits)),
        "oidc" => {
            let need = |v: Option<String>, what: &str| {
                v.ok_or_else(|| format!("--auth oidc needs {what}"))
            };
            let private_key = match args.oidc_private_key.or(file.private_key) {
                Some(path) => {
                    let pem = std::fs::read_to_string(&path)
                        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                    Some(Arc::new(ClientKey::from_pem(&pem)?))
                }
                None => None,
            };
            if private_key.is_none() && secret.is_none() {
                return Err(
                    "--auth oidc needs GPC_OIDC_CLIENT_SECRET or --oidc-private-key".into(),
                );
            }
            Ok((
                AuthMode::Oidc(OidcConfig {
                    issuer: need(args.oidc_issuer.or(file.issuer), "--oidc-issuer")?,
                    client_id: need(args.oidc_client_id.or(file.client_id), "--oidc-client-id")?,
                    redirect_url: need(
                        args.oidc_redirect_url.or(file.redirect_url),
                        "--oidc-redirect-url",
                    )?,
                    // With a key, the key: CIS2 takes one client authentication.
                    client_secret: if private_key.is_some() { None } else { secret },
                    private_key,
                    scopes: args
                        .oidc_scopes
                        .or(file.scopes)
                        .unwrap_or_else(OidcConfig::default_scopes),
                    timeout: Duration::from_secs(5),
                }),
                limits,
            ))
        }
        other => Err(format!("--auth is demo or oidc, not {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_the_file_and_oidc_needs_its_settings() {
        let file: AuthFile = toml::from_str(
            "[auth]\nmode = \"oidc\"\nissuer = \"https://file.example\"\nclient_id = \"from-file\"\n\
             redirect_url = \"https://tasks.example/auth/callback\"\nsession_idle_minutes = 5\n",
        )
        .unwrap();
        let args = AuthArgs {
            oidc_client_id: Some("from-flag".into()),
            ..AuthArgs::default()
        };
        let (mode, limits) = resolve(args, file.auth, Some("s3cret".into())).unwrap();
        let AuthMode::Oidc(c) = mode else {
            panic!("oidc mode expected")
        };
        assert_eq!(c.client_id, "from-flag");
        assert_eq!(c.issuer, "https://file.example");
        assert_eq!(c.client_secret.as_deref(), Some("s3cret"));
        assert_eq!(c.scopes, OidcConfig::default_scopes());
        assert_eq!(limits.idle, Duration::from_secs(300));
        let no_secret = AuthArgs {
            auth: Some("oidc".into()),
            oidc_issuer: Some("https://x".into()),
            oidc_client_id: Some("c".into()),
            oidc_redirect_url: Some("https://y/auth/callback".into()),
            ..AuthArgs::default()
        };
        let err = resolve(no_secret, AuthSection::default(), None).unwrap_err();
        assert!(err.contains("GPC_OIDC_CLIENT_SECRET"), "{err}");
        let demo = resolve(AuthArgs::default(), AuthSection::default(), None).unwrap();
        assert!(matches!(demo.0, AuthMode::Demo));
    }
}
