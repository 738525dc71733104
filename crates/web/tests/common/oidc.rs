//! The real OpenID Provider of the sign-in tests (`tests/oidc/start.js`, the
//! npm package `oidc-provider`), started per test on a free port, and a
//! user agent that logs in through its development login form over HTTP.

use super::{Spine, World};
use gpc_server::ServerConfig;
use gpc_web::{AuthMode, ClientKey, OidcConfig};
use serde_json::json;
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub fn op_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/oidc")
}

pub fn test_client_key() -> PathBuf {
    op_dir().join("test-client-key.pem")
}

pub struct Provider {
    pub issuer: String,
    _child: Child,
}

impl Provider {
    /// Starts the provider with `clients` (client metadata) and a tamper
    /// switch (see start.js). A missing `npm ci` is a failure that says so.
    pub async fn start(clients: serde_json::Value, tamper: &str) -> Self {
        let dir = op_dir();
        assert!(
            dir.join("node_modules/oidc-provider").is_dir(),
            "the test OpenID Provider is not installed: run `npm ci --prefix {}` (.ci/run does)",
            dir.display()
        );
        let mut child = Command::new("node")
            .arg("start.js")
            .current_dir(&dir)
            .env("OP_CLIENTS", clients.to_string())
            .env("OP_TAMPER", tamper)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("node runs (Node.js is needed for the sign-in tests)");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("the provider is ready within 30 s")
            .unwrap()
            .expect("the provider prints its issuer");
        let issuer = line
            .strip_prefix("ISSUER ")
            .expect("ISSUER line")
            .to_owned();
        // The provider logs to stdout as it goes; a closed pipe would kill it.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self {
            issuer,
            _child: child,
        }
    }
}

pub const CLIENT: &str = "gpc-tasks";
pub const SECRET: &str = "a-client-secret-for-tests";

/// The web UI in oidc mode (as `serve` runs it) and the provider it trusts.
pub struct SignInWorld {
    pub world: World,
    pub op: Provider,
    /// The UI's base URL, as registered with the provider.
    pub web: String,
    /// What the server was started with, to start another like it.
    pub config: ServerConfig,
}

/// This client's registration at the provider, for a UI at `web`; `key`
/// makes it authenticate with `private_key_jwt` (its JWKS at the UI).
pub fn registration(web: &str, key: bool) -> serde_json::Value {
    let mut client = json!({
        "client_id": CLIENT,
        "redirect_uris": [format!("{web}/auth/callback")],
        "post_logout_redirect_uris": [format!("{web}/auth/signed-out")],
    });
    if key {
        client["token_endpoint_auth_method"] = json!("private_key_jwt");
        client["jwks_uri"] = json!(format!("{web}/auth/jwks.json"));
    } else {
        client["client_secret"] = json!(SECRET);
    }
    client
}

/// The relying party's side of [`registration`].
pub fn oidc_mode(issuer: &str, web: &str, key: bool) -> AuthMode {
    let private_key = key.then(|| {
        Arc::new(ClientKey::from_pem(&std::fs::read_to_string(test_client_key()).unwrap()).unwrap())
    });
    AuthMode::Oidc(OidcConfig {
        issuer: issuer.to_owned(),
        client_id: CLIENT.into(),
        client_secret: (!key).then(|| SECRET.to_owned()),
        private_key,
        redirect_url: format!("{web}/auth/callback"),
        scopes: OidcConfig::default_scopes(),
        timeout: Duration::from_secs(2),
    })
}

impl SignInWorld {
    /// A provider started with `tamper` (see start.js) and the UI in oidc
    /// mode against it, with the rest of `base` (session limits, database,
    /// TLS: with TLS the UI's URL is `https`).
    pub async fn start(tamper: &str, key: bool, base: ServerConfig) -> Self {
        let port = free_port();
        let scheme = if base.tls.is_some() { "https" } else { "http" };
        let web = format!("{scheme}://127.0.0.1:{port}");
        let op = Provider::start(json!([registration(&web, key)]), tamper).await;
        let config = ServerConfig {
            auth: oidc_mode(&op.issuer, &web, key),
            ..base
        };
        let spine = Spine::serve_with(
            format!("127.0.0.1:{port}").parse().unwrap(),
            tempfile::tempdir().unwrap(),
            None,
            config.clone(),
        )
        .await;
        Self {
            world: World::over(spine).await,
            op,
            web,
            config,
        }
    }

    /// Logs `login` in through the provider; returns the agent holding the
    /// session and the callback's answer.
    pub async fn callback_as(&self, login: &str) -> (Agent, Answer) {
        let mut agent = Agent::default();
        let callback = agent.log_in(&self.web, login).await;
        let answer = agent.get(&callback).await;
        (agent, answer)
    }

    /// Signs `login` in; returns the session cookie (`name=value`).
    pub async fn session_of(&self, login: &str) -> String {
        let (agent, answer) = self.callback_as(login).await;
        assert_eq!(answer.status, 303, "{}", answer.body);
        let value = agent
            .cookie(&self.web, "gpc_session")
            .expect("a session cookie");
        format!("gpc_session={value}")
    }
}

/// A port nobody listens on now, for a server whose URL must be known
/// before it starts (the provider registers its redirect URL).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Cookies per host:port, sent back to every path of it (the provider's
/// path-scoped cookies are harmless elsewhere).
#[derive(Default)]
pub struct Agent {
    http: Option<reqwest::Client>,
    jar: HashMap<String, HashMap<String, String>>,
}

pub struct Answer {
    pub status: reqwest::StatusCode,
    pub location: String,
    pub body: String,
    pub url: String,
    /// Every `Set-Cookie` of the answer, as sent.
    pub set_cookies: Vec<String>,
}

impl Agent {
    /// An agent whose requests go through `http` (one that trusts a test CA, say).
    pub fn with(http: reqwest::Client) -> Self {
        Self {
            http: Some(http),
            jar: HashMap::new(),
        }
    }

    fn client(&mut self) -> reqwest::Client {
        self.http
            .get_or_insert_with(|| {
                reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .unwrap()
            })
            .clone()
    }

    fn host(url: &str) -> String {
        let u = url::Url::parse(url).unwrap();
        format!(
            "{}:{}",
            u.host_str().unwrap(),
            u.port_or_known_default().unwrap()
        )
    }

    pub fn cookie_header(&self, url: &str) -> String {
        self.jar
            .get(&Self::host(url))
            .map(|c| {
                c.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .unwrap_or_default()
    }

    /// Gives `to` the cookies of `from`, as a load balancer in front of
    /// both makes a browser do.
    pub fn share_cookies(&mut self, from: &str, to: &str) {
        let cookies = self.jar.get(&Self::host(from)).cloned().unwrap_or_default();
        self.jar.entry(Self::host(to)).or_default().extend(cookies);
    }

    pub fn cookie(&self, url: &str, name: &str) -> Option<String> {
        self.jar.get(&Self::host(url))?.get(name).cloned()
    }

    async fn send(&mut self, url: &str, form: Option<&[(&str, &str)]>) -> Answer {
        let client = self.client();
        let mut request = match form {
            Some(f) => client.post(url).form(f),
            None => client.get(url),
        };
        let cookies = self.cookie_header(url);
        if !cookies.is_empty() {
            request = request.header("cookie", cookies);
        }
        let response = request.send().await.expect("an answer");
        let jar = self.jar.entry(Self::host(url)).or_default();
        let set_cookies: Vec<String> = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        for set in response.headers().get_all("set-cookie") {
            let pair = set.to_str().unwrap().split(';').next().unwrap();
            if let Some((k, v)) = pair.split_once('=') {
                if v.is_empty() || set.to_str().unwrap().contains("Max-Age=0") {
                    jar.remove(k);
                } else {
                    jar.insert(k.to_owned(), v.to_owned());
                }
            }
        }
        let status = response.status();
        let location = response
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let location = if location.is_empty() {
            location
        } else {
            url::Url::parse(url)
                .unwrap()
                .join(&location)
                .unwrap()
                .to_string()
        };
        Answer {
            status,
            location,
            body: response.text().await.unwrap_or_default(),
            url: url.to_owned(),
            set_cookies,
        }
    }

    pub async fn get(&mut self, url: &str) -> Answer {
        self.send(url, None).await
    }

    pub async fn post(&mut self, url: &str, form: &[(&str, &str)]) -> Answer {
        self.send(url, Some(form)).await
    }

    /// Follows redirects until one leads to `stop` (a URL prefix), which is
    /// not requested; returns that redirect's target.
    pub async fn follow_until(&mut self, mut answer: Answer, stop: &str) -> Result<String, Answer> {
        for _ in 0..10 {
            if !answer.status.is_redirection() {
                return Err(answer);
            }
            if answer.location.starts_with(stop) {
                return Ok(answer.location);
            }
            let next = answer.location.clone();
            answer = self.get(&next).await;
        }
        Err(answer)
    }

    /// From the web UI's `/auth/sign-in` through the provider's login form
    /// as `login`, to the callback URL the provider sends back (not yet
    /// requested, so a test can alter it).
    pub async fn log_in(&mut self, web: &str, login: &str) -> String {
        let start = self.get(&format!("{web}/auth/sign-in")).await;
        assert_eq!(start.status, 303, "{}", start.body);
        let to_form = self.get(&start.location).await;
        let form = self
            .follow_until(to_form, "\u{0}")
            .await
            .err()
            .unwrap_or_else(|| panic!("the provider's login form"));
        assert!(form.body.contains(r#"name="login""#), "{}", form.body);
        let submitted = self
            .post(
                &form.url,
                &[("prompt", "login"), ("login", login), ("password", "any")],
            )
            .await;
        match self
            .follow_until(submitted, &format!("{web}/auth/callback"))
            .await
        {
            Ok(callback) => callback,
            Err(a) => panic!("no callback: {} {} {}", a.status, a.location, a.body),
        }
    }
}
