//! Headers and checks every UI response and form submission gets.
//!
//! The Content-Security-Policy allows scripts, styles and connections only
//! from this origin and no inline script at all, so that a value that somehow
//! escaped escaping still could not run. Pages about patients are never
//! stored by the browser or a proxy.

use crate::AuthMode;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
    font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; \
    frame-ancestors 'none'; form-action 'self'";

/// The policy of every page. In oidc mode the sign-out form's answer
/// redirects to the provider's end-session endpoint, and browsers hold each
/// redirect of a form's submission to `form-action`: the provider's origin
/// (the issuer's, where CIS2 and oidc-provider keep that endpoint) is
/// allowed there, and nothing else.
pub fn policy(auth: &AuthMode) -> HeaderValue {
    let provider = auth
        .oidc()
        .and_then(|c| url::Url::parse(&c.issuer).ok())
        .map(|u| u.origin())
        .filter(url::Origin::is_tuple)
        .map(|o| o.ascii_serialization());
    let csp = match provider {
        Some(origin) => format!("{CSP} {origin}"),
        None => CSP.to_owned(),
    };
    HeaderValue::from_str(&csp).unwrap_or_else(|_| HeaderValue::from_static(CSP))
}

pub async fn guard(State(csp): State<HeaderValue>, request: Request, next: Next) -> Response {
    let unsafe_method = !matches!(*request.method(), Method::GET | Method::HEAD);
    if unsafe_method && !same_origin(request.headers()) {
        tracing::warn!(path = %request.uri().path(), "cross-origin form submission refused");
        return (
            StatusCode::FORBIDDEN,
            "This form can only be sent from the GP Connect Tasks pages.",
        )
            .into_response();
    }
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let set = |headers: &mut HeaderMap, name, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(headers, header::REFERRER_POLICY, "same-origin");
    if !headers.contains_key(header::CACHE_CONTROL) {
        set(headers, header::CACHE_CONTROL, "no-store");
    }
    response
}

/// SameSite=Strict already keeps the session cookie off cross-site requests;
/// this refuses them outright where the browser says where a form came from.
fn same_origin(headers: &HeaderMap) -> bool {
    let value = |name| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = value("sec-fetch-site")
        && !matches!(site, "same-origin" | "none")
    {
        return false;
    }
    match (value("origin"), value("host")) {
        (Some(origin), Some(host)) => origin
            .split_once("://")
            .is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(host)),
        (Some(_), None) => false,
        (None, _) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn forms_may_lead_to_the_provider_in_oidc_mode_only() {
        let demo = policy(&AuthMode::Demo);
        assert!(demo.to_str().unwrap().ends_with("form-action 'self'"));
        let oidc = policy(&AuthMode::Oidc(crate::OidcConfig {
            issuer: "https://am.example.nhs.uk:8443/openam/oauth2/realms/root".into(),
            client_id: "c".into(),
            client_secret: None,
            private_key: None,
            redirect_url: "https://tasks.example/auth/callback".into(),
            scopes: vec![],
            timeout: std::time::Duration::from_secs(1),
        }));
        assert!(
            oidc.to_str()
                .unwrap()
                .ends_with("form-action 'self' https://am.example.nhs.uk:8443"),
            "{oidc:?}"
        );
    }

    #[test]
    fn forms_from_this_origin_pass_and_others_do_not() {
        assert!(same_origin(&headers(&[
            ("origin", "http://127.0.0.1:8080"),
            ("host", "127.0.0.1:8080")
        ])));
        assert!(same_origin(&headers(&[("host", "127.0.0.1:8080")])));
        assert!(!same_origin(&headers(&[
            ("origin", "http://evil.example"),
            ("host", "127.0.0.1:8080")
        ])));
        assert!(!same_origin(&headers(&[
            ("origin", "null"),
            ("host", "127.0.0.1:8080")
        ])));
        assert!(!same_origin(&headers(&[
            ("sec-fetch-site", "cross-site"),
            ("host", "127.0.0.1:8080")
        ])));
    }
}
