//! The real OpenID Provider of the sign-in tests (`tests/oidc/start.js`, the
//! npm package `oidc-provider`), started per test on a free port, and a
//! user agent that logs in through its development login form over HTTP.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
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
}

impl Agent {
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
