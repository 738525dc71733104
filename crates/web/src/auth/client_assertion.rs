//! `private_key_jwt` (RFC 7523, OpenID Connect Core §9), which the
//! relying-party crate does not build: a client assertion signed RS256 with
//! the client's key, `iss` = `sub` = the client id, `aud` = the token
//! endpoint, a new `jti`, and a life of one minute (CIS2 takes at most five).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use openidconnect::core::{CoreJsonWebKeySet, CoreJwsSigningAlgorithm, CoreRsaPrivateSigningKey};
use openidconnect::{JsonWebKeyId, PrivateSigningKey};
use serde_json::json;
use sha2::{Digest, Sha256};

pub const ASSERTION_TYPE: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const LIFETIME_SECONDS: i64 = 60;

pub struct ClientKey {
    key: CoreRsaPrivateSigningKey,
    kid: String,
}

impl ClientKey {
    /// An RSA private key in PKCS#1 PEM ("BEGIN RSA PRIVATE KEY"). Its key
    /// id is derived from the PEM, so a new key is a new `kid` and the
    /// provider's cached JWKS cannot hide it.
    pub fn from_pem(pem: &str) -> Result<Self, String> {
        let digest = Sha256::digest(pem.trim().as_bytes());
        let kid = URL_SAFE_NO_PAD.encode(&digest[..12]);
        let key = CoreRsaPrivateSigningKey::from_pem(pem, Some(JsonWebKeyId::new(kid.clone())))
            .map_err(|e| format!("the OpenID Connect private key is not an RSA PEM key: {e}"))?;
        Ok(Self { key, kid })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key, as `/auth/jwks.json` publishes it.
    pub fn jwks(&self) -> CoreJsonWebKeySet {
        CoreJsonWebKeySet::new(vec![self.key.as_verification_key()])
    }

    pub fn assertion(
        &self,
        client_id: &str,
        token_endpoint: &str,
        now: i64,
    ) -> Result<String, String> {
        let header = json!({"alg": "RS256", "typ": "JWT", "kid": self.kid});
        let claims = json!({
            "iss": client_id,
            "sub": client_id,
            "aud": token_endpoint,
            "jti": uuid::Uuid::new_v4().to_string(),
            "iat": now,
            "exp": now + LIFETIME_SECONDS,
        });
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self
            .key
            .sign(
                &CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
                input.as_bytes(),
            )
            .map_err(|e| format!("the client assertion could not be signed: {e}"))?;
        Ok(format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature)))
    }
}
