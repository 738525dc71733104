//! How people sign in (sign-in.md §1): the demo picker, or OpenID Connect
//! against any provider with discovery, in the shape of NHS CIS2.

mod client_assertion;
pub(crate) mod oidc;

pub use client_assertion::ClientKey;
use std::sync::Arc;
use std::time::Duration;

/// The sign-in a deployment offers.
#[derive(Clone, Default)]
pub enum AuthMode {
    /// Anyone picks any user of the demo region.
    #[default]
    Demo,
    Oidc(OidcConfig),
}

/// The relying party's registration with its provider.
#[derive(Clone)]
pub struct OidcConfig {
    /// The provider's issuer; discovery is at `{issuer}/.well-known/openid-configuration`.
    pub issuer: String,
    pub client_id: String,
    /// Client authentication by secret (`GPC_OIDC_CLIENT_SECRET`) ...
    pub client_secret: Option<String>,
    /// ... or by `private_key_jwt` with this key (its public half at `/auth/jwks.json`).
    pub private_key: Option<Arc<ClientKey>>,
    pub redirect_url: String,
    pub scopes: Vec<String>,
    /// Longest wait for one answer of the provider; then a 503 page.
    pub timeout: Duration,
}

impl OidcConfig {
    /// CIS2's scopes for a user's roles and the role chosen at log-in.
    pub fn default_scopes() -> Vec<String> {
        [
            "openid",
            "profile",
            "nationalrbacaccess",
            "associatedorgs",
            "selectedrole",
        ]
        .map(str::to_owned)
        .to_vec()
    }
}

/// Redacted: the secret and the key stay out of logs.
impl std::fmt::Debug for OidcConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcConfig")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "…"))
            .field("private_key", &self.private_key.as_ref().map(|k| k.kid()))
            .field("redirect_url", &self.redirect_url)
            .field("scopes", &self.scopes)
            .finish()
    }
}

impl std::fmt::Debug for AuthMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AuthMode::Demo => f.write_str("Demo"),
            AuthMode::Oidc(c) => c.fmt(f),
        }
    }
}

impl AuthMode {
    pub fn oidc(&self) -> Option<&OidcConfig> {
        match self {
            AuthMode::Oidc(c) => Some(c),
            AuthMode::Demo => None,
        }
    }

    pub fn sign_in_path(&self) -> &'static str {
        match self {
            AuthMode::Demo => "/sign-in",
            AuthMode::Oidc(_) => "/auth/sign-in",
        }
    }
}
