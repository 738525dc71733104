//! Who is signed in (sign-in.md §2.5). The browser holds only a random token
//! (HttpOnly, SameSite=Lax so that it comes with the provider's redirect to
//! the callback; over HTTPS also Secure and `__Host-`); the user it stands
//! for is in the database under the token's hash, so every instance knows
//! the session, a restart signs nobody out, and a copy of the table lets
//! nobody in. A session ends after `idle` without a request, after `max` in
//! all, and at sign-out.

use crate::App;
use axum::extract::FromRequestParts;
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use gpc_consumer::Who;
use gpc_domain::lifecycle::Actor;
use gpc_domain::reference::Practitioner;
use gpc_store::Store;
use gpc_store::sessions::WebSession;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;

/// The signed-in user, at the organisation of their role.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    pub sds_user_id: String,
    pub name: String,
    /// The role's display name.
    pub role: String,
    pub role_code: String,
    pub org_ods: gpc_domain::OdsCode,
    pub org_name: String,
    /// The practitioner's local id: the record's in the demo, the role
    /// profile's (CIS2 `person_roleid`) for a signed-in user.
    pub practitioner_id: String,
    pub title: String,
    pub given: String,
    pub family: String,
    /// Signed in through the OpenID provider, not picked from the reference data.
    pub from_sign_in: bool,
}

impl User {
    pub fn of(p: &Practitioner, org_name: &str) -> Self {
        User {
            sds_user_id: p.sds_user_id.clone(),
            name: p.display_name(),
            role: p.role_display.clone(),
            role_code: p.role_code.clone(),
            org_ods: p.organisation.clone(),
            org_name: org_name.to_owned(),
            practitioner_id: p.id.clone(),
            title: p.title.clone(),
            given: p.given.clone(),
            family: p.family.clone(),
            from_sign_in: false,
        }
    }

    /// The user as the engine's JWTs name them.
    pub fn who(&self) -> Who {
        if !self.from_sign_in {
            return Who::Sds(self.sds_user_id.clone());
        }
        Who::SignedIn(Practitioner {
            id: self.practitioner_id.clone(),
            sds_user_id: self.sds_user_id.clone(),
            title: self.title.clone(),
            given: self.given.clone(),
            family: self.family.clone(),
            organisation: self.org_ods.clone(),
            role_code: self.role_code.clone(),
            role_display: self.role.clone(),
        })
    }

    /// The user as a task change records them (task-lifecycle.md).
    pub fn actor(&self) -> Actor {
        Actor {
            sds_user_id: self.sds_user_id.clone(),
            name: self.name.clone(),
            role_code: self.role_code.clone(),
            role_display: self.role.clone(),
            organisation: self.org_ods.clone(),
        }
    }

    pub fn sign_out_path(&self) -> &'static str {
        if self.from_sign_in {
            "/auth/sign-out"
        } else {
            "/sign-out"
        }
    }
}

/// How long sessions last.
#[derive(Debug, Clone, Copy)]
pub struct SessionLimits {
    pub idle: Duration,
    pub max: Duration,
}

impl Default for SessionLimits {
    /// sign-in.md §1's example: 30 minutes idle, 12 hours in all.
    fn default() -> Self {
        Self {
            idle: Duration::from_secs(30 * 60),
            max: Duration::from_secs(12 * 60 * 60),
        }
    }
}

pub struct Sessions {
    store: Arc<dyn Store>,
    limits: SessionLimits,
    secure: bool,
}

impl Sessions {
    pub fn new(store: Arc<dyn Store>, limits: SessionLimits, secure: bool) -> Self {
        Self {
            store,
            limits,
            secure,
        }
    }

    pub fn secure(&self) -> bool {
        self.secure
    }

    fn cookie_name(&self) -> &'static str {
        if self.secure {
            "__Host-gpc_session"
        } else {
            "gpc_session"
        }
    }

    /// Starts a session; returns the `Set-Cookie` value.
    pub async fn start(&self, user: &User) -> Result<HeaderValue, gpc_store::StoreError> {
        let token = random_token();
        let now = Timestamp::now();
        let user = serde_json::to_string(user)
            .map_err(|e| gpc_store::StoreError::Other(format!("a user did not encode: {e}")))?;
        self.store
            .start_session(&WebSession {
                key: hash(&token),
                user,
                created_at: now,
                idle_until: later(now, self.limits.idle),
                expires_at: later(now, self.limits.max),
            })
            .await?;
        Ok(cookie(
            self.cookie_name(),
            &token,
            self.secure,
            self.limits.max.as_secs(),
        ))
    }

    /// The user of the request's session, if it is live; the request keeps it so.
    pub async fn user(&self, headers: &HeaderMap) -> Option<User> {
        let token = cookie_value(headers, self.cookie_name())?;
        let found = self
            .store
            .resume_session(&hash(token), Timestamp::now(), self.limits.idle)
            .await;
        match found {
            Ok(session) => serde_json::from_str(&session?.user).ok(),
            Err(e) => {
                tracing::warn!(error = %e, "a session could not be read");
                None
            }
        }
    }

    /// Ends the session for every instance; returns the `Set-Cookie` value
    /// that clears the cookie.
    pub async fn end(&self, headers: &HeaderMap) -> HeaderValue {
        if let Some(token) = cookie_value(headers, self.cookie_name())
            && let Err(e) = self.store.end_session(&hash(token)).await
        {
            tracing::warn!(error = %e, "a session could not be ended");
        }
        cookie(self.cookie_name(), "", self.secure, 0)
    }
}

/// 256 random bits, URL-safe.
pub fn random_token() -> String {
    openidconnect::CsrfToken::new_random_len(32)
        .secret()
        .to_owned()
}

/// What the store keeps of a token: its SHA-256, in hex.
pub fn hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn later(now: Timestamp, by: Duration) -> Timestamp {
    jiff::SignedDuration::try_from(by)
        .ok()
        .and_then(|d| now.checked_add(d).ok())
        .unwrap_or(Timestamp::MAX)
}

/// A cookie for this origin only; `max_age` 0 clears it.
// The value is ASCII text and URL-safe base64, which a header value always accepts.
#[allow(clippy::expect_used)]
pub fn cookie(name: &str, value: &str, secure: bool, max_age: u64) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Lax{secure}; Max-Age={max_age}"
    ))
    .expect("a cookie of URL-safe text is a valid header value")
}

pub fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value)
        .filter(|v| !v.is_empty())
}

/// Extracts the signed-in user; anyone else is sent to sign in.
pub struct SignedIn(pub User);

impl FromRequestParts<App> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        app.sessions
            .user(&parts.headers)
            .await
            .map(SignedIn)
            .ok_or_else(|| Redirect::to(app.auth.sign_in_path()).into_response())
    }
}

/// A response that also sets or clears a cookie.
pub fn with_cookie(cookie: HeaderValue, response: impl IntoResponse) -> Response {
    let mut response = response.into_response();
    response.headers_mut().append(SET_COOKIE, cookie);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_http_only_lax_and_secure_over_https() {
        let plain = cookie("gpc_session", "abc", false, 60);
        let plain = plain.to_str().unwrap();
        assert!(plain.contains("HttpOnly") && plain.contains("SameSite=Lax"));
        assert!(!plain.contains("Secure"));
        let tls = cookie("__Host-gpc_session", "abc", true, 60);
        assert!(tls.to_str().unwrap().contains("; Secure"));
    }

    #[test]
    fn a_cookie_is_found_by_name_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            COOKIE,
            HeaderValue::from_static("other=1; gpc_session=tok; x=2"),
        );
        assert_eq!(cookie_value(&h, "gpc_session"), Some("tok"));
        assert_eq!(cookie_value(&h, "__Host-gpc_session"), None);
    }

    #[test]
    fn tokens_are_random_and_stored_only_as_hashes() {
        let (a, b) = (random_token(), random_token());
        assert_ne!(a, b);
        assert!(a.len() >= 43);
        assert_eq!(hash(&a).len(), 64);
        assert_ne!(hash(&a), a);
    }
}
