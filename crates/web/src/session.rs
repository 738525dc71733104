//! The demo sign-in's sessions: who is signed in, at which organisation.
//!
//! The browser holds only a random token (HttpOnly, SameSite=Strict); the
//! user it stands for stays on the server, so a cookie cannot be edited into
//! another user. Sessions live in memory: a restart signs everyone out, which
//! a demo sign-in can afford.

use crate::App;
use axum::extract::FromRequestParts;
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Redirect, Response};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const COOKIE_NAME: &str = "gpc_session";
/// About one clinical session; then the user signs in again.
const LIFETIME: Duration = Duration::from_secs(8 * 60 * 60);

/// The signed-in user: a practitioner record of the region, at its organisation.
#[derive(Debug, Clone)]
pub struct User {
    pub sds_user_id: String,
    pub name: String,
    pub role: String,
    pub org_ods: gpc_domain::OdsCode,
    pub org_name: String,
}

#[derive(Default)]
pub struct Sessions {
    by_token: Mutex<HashMap<String, (User, Instant)>>,
}

impl Sessions {
    /// Starts a session; returns the `Set-Cookie` value.
    // The value is ASCII text and hex, which a header value always accepts.
    #[allow(clippy::expect_used)]
    pub fn start(&self, user: User) -> HeaderValue {
        let token = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let mut map = self.by_token.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        map.retain(|_, (_, started)| now.duration_since(*started) < LIFETIME);
        map.insert(token.clone(), (user, now));
        HeaderValue::from_str(&format!(
            "{COOKIE_NAME}={token}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
            LIFETIME.as_secs()
        ))
        .expect("a hex token is a valid header value")
    }

    pub fn user(&self, headers: &HeaderMap) -> Option<User> {
        let token = token(headers)?;
        let map = self.by_token.lock().unwrap_or_else(|p| p.into_inner());
        let (user, started) = map.get(token)?;
        (started.elapsed() < LIFETIME).then(|| user.clone())
    }

    /// Ends the session; returns the `Set-Cookie` value that clears the cookie.
    pub fn end(&self, headers: &HeaderMap) -> HeaderValue {
        if let Some(token) = token(headers) {
            self.by_token
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(token);
        }
        HeaderValue::from_static("gpc_session=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
    }
}

fn token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE_NAME)
        .map(|(_, value)| value)
        .filter(|v| !v.is_empty())
}

/// Extracts the signed-in user; anyone else is sent to the sign-in page.
pub struct SignedIn(pub User);

impl FromRequestParts<App> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        app.sessions
            .user(&parts.headers)
            .map(SignedIn)
            .ok_or_else(|| Redirect::to("/sign-in").into_response())
    }
}

/// A response that also sets or clears the session cookie.
pub fn with_cookie(cookie: HeaderValue, response: impl IntoResponse) -> Response {
    let mut response = response.into_response();
    response.headers_mut().append(SET_COOKIE, cookie);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> User {
        User {
            sds_user_id: "G13579135".into(),
            name: "Dr Nichole GILBERT".into(),
            role: "General Medical Practitioner".into(),
            org_ods: gpc_domain::OdsCode::parse("GPC001").unwrap(),
            org_name: "GP Connect Demonstrator".into(),
        }
    }

    fn cookie_header(set_cookie: &HeaderValue) -> HeaderMap {
        let pair = set_cookie.to_str().unwrap().split(';').next().unwrap();
        let mut h = HeaderMap::new();
        h.insert(
            COOKIE,
            HeaderValue::from_str(&format!("other=1; {pair}")).unwrap(),
        );
        h
    }

    #[test]
    fn a_started_session_is_found_by_its_cookie_until_it_ends() {
        let sessions = Sessions::default();
        let set = sessions.start(user());
        let text = set.to_str().unwrap();
        assert!(text.contains("HttpOnly") && text.contains("SameSite=Strict"));
        let headers = cookie_header(&set);
        assert_eq!(sessions.user(&headers).unwrap().org_ods, "GPC001");
        sessions.end(&headers);
        assert!(sessions.user(&headers).is_none());
    }

    #[test]
    fn an_unknown_token_is_nobody() {
        let sessions = Sessions::default();
        let mut h = HeaderMap::new();
        h.insert(COOKIE, HeaderValue::from_static("gpc_session=forged"));
        assert!(sessions.user(&h).is_none());
        assert!(sessions.user(&HeaderMap::new()).is_none());
    }
}
