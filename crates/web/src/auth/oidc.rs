//! Sign-in through an OpenID provider (sign-in.md §2): the authorisation
//! code flow with PKCE, `state` and `nonce`; the ID token checked against
//! the provider's JWKS; UserInfo read; the user taken from CIS2's claims.
//!
//! The provider is discovered afresh at each sign-in and callback: sign-ins
//! are rare, and so a rotated signing key or a provider back from an outage
//! needs nothing of this server. What the callback must match is in the
//! database, under the hash of a token in a short-lived cookie, and is taken
//! once: any instance can finish a sign-in another started, and a replayed
//! callback finds nothing.

use super::OidcConfig;
use super::client_assertion::ASSERTION_TYPE;
use crate::App;
use crate::pages::{Layout, Nav, render};
use crate::session::{User, cookie, cookie_value, hash, later, random_token, with_cookie};
use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gpc_store::sessions::PendingSignIn;
use jiff::Timestamp;
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreAuthenticationFlow, CoreClaimName, CoreClaimType,
    CoreClient, CoreClientAuthMethod, CoreGenderClaim, CoreGrantType, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm, CoreResponseMode,
    CoreResponseType, CoreSubjectIdentifierType,
};
use openidconnect::{
    AdditionalClaims, AdditionalProviderMetadata, AuthorizationCode, ClientId, ClientSecret,
    CsrfToken, EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, ProviderMetadata, RedirectUrl,
    RequestTokenError, Scope, TokenResponse, UserInfoClaims,
};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How long a user has at the provider before the callback is refused.
const SIGN_IN_WINDOW: Duration = Duration::from_secs(10 * 60);
/// Clock difference with the provider taken for granted in `iat`.
const CLOCK_SKEW: Duration = Duration::from_secs(60);

/// Discovery with the one field of RP-initiated logout that the crate's core
/// metadata lacks.
#[derive(Clone, Debug, Deserialize, Serialize)]
struct LogoutMetadata {
    end_session_endpoint: Option<url::Url>,
}
impl AdditionalProviderMetadata for LogoutMetadata {}

type Metadata = ProviderMetadata<
    LogoutMetadata,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// CIS2's claims beyond the standard ones (UserInfo and ID token).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
struct Cis2Claims {
    nhsid_useruid: Option<String>,
    uid: Option<String>,
    selected_roleid: Option<String>,
    #[serde(default)]
    nhsid_nrbac_roles: Vec<Cis2Role>,
}
impl AdditionalClaims for Cis2Claims {}

#[derive(Debug, Clone, Deserialize, Serialize)]
struct Cis2Role {
    person_roleid: String,
    org_code: String,
    #[serde(default)]
    role_code: String,
    #[serde(default)]
    role_name: String,
}

/// What the callback must match, kept from the sign-in.
#[derive(Serialize, Deserialize)]
struct Pending {
    state: String,
    nonce: String,
    verifier: String,
}

/// Every way a sign-in is refused, with its status and what the page says
/// (sign-in.md §2.4). None makes a session.
#[derive(Debug)]
pub enum Refusal {
    /// No sign-in of this browser is waiting: forged, replayed or too late.
    NoSignIn,
    StateMismatch,
    /// The provider sent an error back instead of a code.
    Denied,
    ProviderError(String),
    /// The provider would not exchange the code.
    NotExchanged(String),
    IdToken(String),
    UserInfo(String),
    NoRole,
    NotServed(String),
    Unreachable(String),
    Internal(String),
}

impl Refusal {
    fn status(&self) -> StatusCode {
        match self {
            Refusal::NoSignIn
            | Refusal::StateMismatch
            | Refusal::ProviderError(_)
            | Refusal::NotExchanged(_)
            | Refusal::IdToken(_)
            | Refusal::UserInfo(_) => StatusCode::BAD_REQUEST,
            Refusal::Denied | Refusal::NoRole | Refusal::NotServed(_) => StatusCode::FORBIDDEN,
            Refusal::Unreachable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Refusal::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// A short code for the log: no token, claim or name.
    fn code(&self) -> &'static str {
        match self {
            Refusal::NoSignIn => "no-sign-in",
            Refusal::StateMismatch => "state-mismatch",
            Refusal::Denied => "access-denied",
            Refusal::ProviderError(_) => "provider-error",
            Refusal::NotExchanged(_) => "code-not-exchanged",
            Refusal::IdToken(_) => "id-token-invalid",
            Refusal::UserInfo(_) => "userinfo-failed",
            Refusal::NoRole => "no-role",
            Refusal::NotServed(_) => "organisation-not-served",
            Refusal::Unreachable(_) => "provider-unreachable",
            Refusal::Internal(_) => "internal",
        }
    }

    fn message(&self) -> String {
        match self {
            Refusal::NoSignIn => {
                "This sign-in has expired or was already used. Start again.".into()
            }
            Refusal::StateMismatch => {
                "The answer from the identity service did not match this sign-in.".into()
            }
            Refusal::Denied => "The identity service did not let you sign in.".into(),
            Refusal::ProviderError(e) => format!("The identity service reported an error ({e})."),
            Refusal::NotExchanged(_) => "The identity service did not accept this sign-in.".into(),
            Refusal::IdToken(why) => {
                format!("The identity service's answer failed a check: {why}.")
            }
            Refusal::UserInfo(_) => {
                "Your details could not be read from the identity service.".into()
            }
            Refusal::NoRole => {
                "Your smartcard or account has no role selected. Sign in again and choose a role."
                    .into()
            }
            Refusal::NotServed(ods) => {
                format!("Your role is at organisation {ods}, which this service does not serve.")
            }
            Refusal::Unreachable(_) => {
                "The identity service could not be reached. Try again in a few minutes.".into()
            }
            Refusal::Internal(_) => "Something went wrong. Try again.".into(),
        }
    }

    fn response(self, clear: Option<axum::http::HeaderValue>) -> Response {
        let detail = match &self {
            Refusal::IdToken(d)
            | Refusal::NotExchanged(d)
            | Refusal::UserInfo(d)
            | Refusal::Unreachable(d)
            | Refusal::Internal(d) => d.as_str(),
            _ => "",
        };
        tracing::warn!(refusal = self.code(), detail, "sign-in refused");
        let page = AuthPage {
            layout: Layout::new("You could not be signed in", None, Nav::None),
            heading: "You could not be signed in".into(),
            message: self.message(),
            again: "Try signing in again",
        };
        let response = render(self.status(), &page);
        match clear {
            Some(c) => with_cookie(c, response),
            None => response,
        }
    }
}

#[derive(Template)]
#[template(path = "auth_message.html")]
struct AuthPage {
    layout: Layout,
    heading: String,
    message: String,
    again: &'static str,
}

fn http_client(config: &OidcConfig) -> Result<reqwest::Client, Refusal> {
    reqwest::Client::builder()
        // The crate's advice: a redirect followed could take a request anywhere.
        .redirect(reqwest::redirect::Policy::none())
        .timeout(config.timeout)
        .connect_timeout(config.timeout)
        .build()
        .map_err(|e| Refusal::Internal(format!("HTTP client: {e}")))
}

/// This deployment's client at the provider, as discovered now.
type RelyingParty = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// The provider as one sign-in, callback or sign-out finds it.
struct Provider {
    http: reqwest::Client,
    client: RelyingParty,
    end_session: Option<url::Url>,
}

async fn discover(config: &OidcConfig) -> Result<Provider, Refusal> {
    let http = http_client(config)?;
    let issuer = IssuerUrl::new(config.issuer.clone())
        .map_err(|e| Refusal::Internal(format!("issuer URL: {e}")))?;
    let metadata = Metadata::discover_async(issuer, &http)
        .await
        .map_err(|e| Refusal::Unreachable(format!("discovery: {e}")))?;
    let redirect = RedirectUrl::new(config.redirect_url.clone())
        .map_err(|e| Refusal::Internal(format!("redirect URL: {e}")))?;
    let end_session = metadata.additional_metadata().end_session_endpoint.clone();
    let client = CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(config.client_id.clone()),
        config.client_secret.clone().map(ClientSecret::new),
    )
    .set_redirect_uri(redirect);
    Ok(Provider {
        http,
        client,
        end_session,
    })
}

fn sign_in_cookie(app: &App) -> &'static str {
    if app.sessions.secure() {
        "__Host-gpc_sign_in"
    } else {
        "gpc_sign_in"
    }
}

#[derive(Deserialize)]
pub struct SignInQuery {
    prompt: Option<String>,
}

/// `GET /auth/sign-in`: off to the provider, with `prompt=login` for
/// "Sign in as someone else".
pub async fn sign_in(State(app): State<App>, Query(query): Query<SignInQuery>) -> Response {
    match start(&app, query.prompt.as_deref() == Some("login")).await {
        Ok(r) => r,
        Err(refusal) => refusal.response(None),
    }
}

async fn start(app: &App, someone_else: bool) -> Result<Response, Refusal> {
    let config = app
        .auth
        .oidc()
        .ok_or_else(|| Refusal::Internal("not in oidc mode".into()))?;
    let provider = discover(config).await?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = provider
        .client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .set_pkce_challenge(challenge);
    for scope in config.scopes.iter().filter(|s| *s != "openid") {
        request = request.add_scope(Scope::new(scope.clone()));
    }
    if someone_else {
        request = request.add_prompt(CoreAuthPrompt::Login);
    }
    let (url, state, nonce) = request.url();
    let token = random_token();
    let body = serde_json::to_string(&Pending {
        state: state.secret().clone(),
        nonce: nonce.secret().clone(),
        verifier: verifier.secret().clone(),
    })
    .map_err(|e| Refusal::Internal(e.to_string()))?;
    app.store
        .save_sign_in(&PendingSignIn {
            key: hash(&token),
            body,
            expires_at: later(Timestamp::now(), SIGN_IN_WINDOW),
        })
        .await
        .map_err(|e| Refusal::Internal(e.to_string()))?;
    let set = cookie(
        sign_in_cookie(app),
        &token,
        app.sessions.secure(),
        SIGN_IN_WINDOW.as_secs(),
    );
    Ok(with_cookie(set, Redirect::to(url.as_str())))
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// `GET /auth/callback`: the provider's answer, turned into a session or a refusal.
pub async fn callback(
    State(app): State<App>,
    headers: HeaderMap,
    Query(query): Query<CallbackQuery>,
) -> Response {
    let clear = cookie(sign_in_cookie(&app), "", app.sessions.secure(), 0);
    let user = match finish(&app, &headers, query).await {
        Ok(user) => user,
        Err(refusal) => return refusal.response(Some(clear)),
    };
    match app.sessions.start(&user).await {
        Ok(set) => {
            tracing::info!(user = %user.sds_user_id, org = %user.org_ods, "signed in");
            let mut response = with_cookie(set, Redirect::to("/patient"));
            response
                .headers_mut()
                .append(axum::http::header::SET_COOKIE, clear);
            response
        }
        Err(e) => Refusal::Internal(e.to_string()).response(Some(clear)),
    }
}

async fn finish(app: &App, headers: &HeaderMap, query: CallbackQuery) -> Result<User, Refusal> {
    let config = app
        .auth
        .oidc()
        .ok_or_else(|| Refusal::Internal("not in oidc mode".into()))?;
    let token = cookie_value(headers, sign_in_cookie(app)).ok_or(Refusal::NoSignIn)?;
    let pending = app
        .store
        .take_sign_in(&hash(token), Timestamp::now())
        .await
        .map_err(|e| Refusal::Internal(e.to_string()))?
        .ok_or(Refusal::NoSignIn)?;
    let pending: Pending =
        serde_json::from_str(&pending.body).map_err(|e| Refusal::Internal(e.to_string()))?;
    if query.state.as_deref() != Some(pending.state.as_str()) {
        return Err(Refusal::StateMismatch);
    }
    if let Some(error) = query.error {
        return Err(if error == "access_denied" {
            Refusal::Denied
        } else {
            Refusal::ProviderError(error.chars().take(40).collect())
        });
    }
    let code = query.code.ok_or(Refusal::NoSignIn)?;
    let Provider { http, client, .. } = discover(config).await?;
    let token_endpoint = client
        .token_uri()
        .map(|u| u.as_str().to_owned())
        .ok_or_else(|| Refusal::Internal("the provider has no token endpoint".into()))?;
    let mut exchange = client
        .exchange_code(AuthorizationCode::new(code))
        .map_err(|e| Refusal::Internal(e.to_string()))?
        .set_pkce_verifier(PkceCodeVerifier::new(pending.verifier));
    if let Some(key) = &config.private_key {
        let assertion = key
            .assertion(
                &config.client_id,
                &token_endpoint,
                Timestamp::now().as_second(),
            )
            .map_err(Refusal::Internal)?;
        exchange = exchange
            .add_extra_param("client_assertion_type", ASSERTION_TYPE)
            .add_extra_param("client_assertion", assertion);
    }
    let tokens = exchange.request_async(&http).await.map_err(|e| match e {
        // The provider's error code and description: no token in either.
        RequestTokenError::ServerResponse(r) => Refusal::NotExchanged(format!(
            "{} {}",
            r.error(),
            r.error_description().map_or("", String::as_str)
        )),
        RequestTokenError::Request(e) => Refusal::Unreachable(format!("token endpoint: {e}")),
        other => Refusal::IdToken(format!("the token answer was unreadable ({other})")),
    })?;
    let id_token = tokens
        .id_token()
        .ok_or_else(|| Refusal::IdToken("there was no ID token".into()))?;
    let now = Timestamp::now();
    let verifier = client
        .id_token_verifier()
        .set_issue_time_verifier_fn(move |iat| {
            let skew = jiff::SignedDuration::try_from(CLOCK_SKEW).unwrap_or_default();
            let iat = Timestamp::from_second(iat.timestamp()).map_err(|e| e.to_string())?;
            if iat > now + skew {
                Err("it was issued in the future".to_owned())
            } else {
                Ok(())
            }
        });
    let claims = id_token
        .claims(&verifier, &Nonce::new(pending.nonce))
        .map_err(|e| Refusal::IdToken(id_token_problem(&e.to_string())))?;
    let subject = claims.subject().clone();
    let selected = selected_role(&id_token.to_string());
    let info: UserInfoClaims<Cis2Claims, CoreGenderClaim> = client
        .user_info(tokens.access_token().clone(), Some(subject.clone()))
        .map_err(|e| Refusal::Internal(e.to_string()))?
        .request_async(&http)
        .await
        .map_err(|e| match e {
            openidconnect::UserInfoError::Request(e) => {
                Refusal::Unreachable(format!("UserInfo: {e}"))
            }
            other => Refusal::UserInfo(other.to_string()),
        })?;
    let extra = info.additional_claims();
    let sds_user_id = extra
        .nhsid_useruid
        .clone()
        .or_else(|| extra.uid.clone())
        .unwrap_or_else(|| subject.as_str().to_owned());
    let selected = selected.or_else(|| extra.selected_roleid.clone());
    let roles = &extra.nhsid_nrbac_roles;
    let role = match (&selected, roles.as_slice()) {
        (Some(id), _) => roles.iter().find(|r| &r.person_roleid == id),
        (None, [only]) => Some(only),
        (None, _) => None,
    }
    .ok_or(Refusal::NoRole)?;
    let region = app.engine.reference().current();
    let org = region
        .root(role.org_code.trim())
        .ok_or_else(|| Refusal::NotServed(role.org_code.chars().take(12).collect()))?;
    let given = info
        .given_name()
        .and_then(|c| c.get(None))
        .map(|v| v.as_str().to_owned())
        .unwrap_or_default();
    let family = info
        .family_name()
        .and_then(|c| c.get(None))
        .map(|v| v.as_str().to_owned())
        .unwrap_or_default();
    let name = info
        .name()
        .and_then(|c| c.get(None))
        .map(|v| v.as_str().to_owned())
        .unwrap_or_else(|| format!("{given} {family}").trim().to_owned());
    Ok(User {
        sds_user_id,
        name,
        role: role.role_name.clone(),
        role_code: role.role_code.clone(),
        org_ods: org.ods.clone(),
        org_name: org.name.clone(),
        practitioner_id: role.person_roleid.clone(),
        title: String::new(),
        given,
        family,
        from_sign_in: true,
    })
}

/// The crate's reason, without the token's content it may quote.
fn id_token_problem(reason: &str) -> String {
    reason.split(':').next().unwrap_or(reason).trim().to_owned()
}

/// `selected_roleid` from an ID token already verified: the crate's claims
/// type keeps only the standard claims.
fn selected_role(id_token: &str) -> Option<String> {
    let payload = id_token.split('.').nth(1)?;
    let json: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
    json.get("selected_roleid")?.as_str().map(str::to_owned)
}

/// `POST /auth/sign-out`: the session ends for every instance, and the
/// browser goes to the provider's end-session endpoint where it has one.
pub async fn sign_out(State(app): State<App>, headers: HeaderMap) -> Response {
    let clear = app.sessions.end(&headers).await;
    let mut to = "/auth/signed-out".to_owned();
    if let Some(config) = app.auth.oidc()
        && let Ok(provider) = discover(config).await
        && let Some(mut end) = provider.end_session
    {
        let back = signed_out_url(&config.redirect_url);
        end.query_pairs_mut()
            .append_pair("client_id", &config.client_id)
            .append_pair("post_logout_redirect_uri", &back);
        to = end.to_string();
    }
    with_cookie(clear, Redirect::to(&to))
}

/// Where the provider sends the browser after sign-out: beside the callback.
pub fn signed_out_url(redirect_url: &str) -> String {
    match url::Url::parse(redirect_url).and_then(|u| u.join("/auth/signed-out")) {
        Ok(u) => u.to_string(),
        Err(_) => "/auth/signed-out".to_owned(),
    }
}

/// `GET /auth/signed-out`.
pub async fn signed_out() -> Response {
    render(
        StatusCode::OK,
        &AuthPage {
            layout: Layout::new("You have signed out", None, Nav::None),
            heading: "You have signed out".into(),
            message: "You are no longer signed in to GP Connect Tasks.".into(),
            again: "Sign in",
        },
    )
}

/// `GET /auth/jwks.json`: the public key of `private_key_jwt`, for the provider.
pub async fn jwks(State(app): State<App>) -> Response {
    match app.auth.oidc().and_then(|c| c.private_key.as_ref()) {
        Some(key) => match serde_json::to_string(&key.jwks()) {
            Ok(body) => (
                [(axum::http::header::CONTENT_TYPE, "application/json")],
                body,
            )
                .into_response(),
            Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
        },
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
