//! A world for the web UI's tests: a gpc-tasks server started as `serve`
//! starts it (provider, SSP, directory APIs, the sending engine and the
//! clinician's pages on one port), and a browser-like HTTP client.

#![allow(dead_code)]

pub mod oidc;
pub mod webdriver;

/// How long a test waits for what takes a moment on an idle machine (a
/// delivery, a live update, a page to load): many times that, so that a
/// machine busy with other builds does not fail it.
pub const PATIENCE: Duration = Duration::from_secs(120);

use gpc_consumer::Engine;
use gpc_domain::task::ReceivedEvent;
use gpc_server::ssp::SspConfig;
use gpc_server::{ConsumerConfig, ServerConfig};
use gpc_store::Store;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tempfile::TempDir;
use tokio::sync::{broadcast, oneshot};

/// A gpc-tasks server on a loopback port, stoppable.
pub struct Spine {
    pub base: String,
    pub addr: SocketAddr,
    pub store: Arc<dyn Store>,
    /// The sending engine and the provider's arrivals, when started as `serve`.
    pub engine: Option<Engine>,
    pub received: broadcast::Sender<ReceivedEvent>,
    pub dir: TempDir,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), String>>>,
}

impl Spine {
    /// Starts on `listen` (port 0 for any); SDS registers the providers under
    /// `provider_base`, or under this server itself when `None`.
    pub async fn start(listen: SocketAddr, dir: TempDir, provider_base: Option<String>) -> Self {
        Self::boot(listen, dir, provider_base, None, ServerConfig::default()).await
    }

    /// As [`start`](Self::start), with the TLS and SSP settings of `base`.
    pub async fn start_with(listen: SocketAddr, dir: TempDir, base: ServerConfig) -> Self {
        let provider_base = base.ssp.provider_base.clone();
        Self::boot(listen, dir, provider_base, None, base).await
    }

    /// As `gpc-tasks serve` runs: with the sending engine (short retry
    /// delays) and the clinician's pages on the same port.
    pub async fn serve(listen: SocketAddr, dir: TempDir, provider_base: Option<String>) -> Self {
        Self::serve_with(listen, dir, provider_base, ServerConfig::default()).await
    }

    /// As `serve`, with the sign-in and session settings of `base`.
    pub async fn serve_with(
        listen: SocketAddr,
        dir: TempDir,
        provider_base: Option<String>,
        base: ServerConfig,
    ) -> Self {
        let consumer = ConsumerConfig {
            retry_delays: vec![
                Duration::from_millis(100),
                Duration::from_millis(200),
                Duration::from_millis(300),
            ],
            request_timeout: Some(Duration::from_secs(30)),
            // Where it sends and over what TLS, when `base` says.
            ..base.consumer.clone().unwrap_or_default()
        };
        Self::boot(listen, dir, provider_base, Some(consumer), base).await
    }

    async fn boot(
        listen: SocketAddr,
        dir: TempDir,
        provider_base: Option<String>,
        consumer: Option<ConsumerConfig>,
        base: ServerConfig,
    ) -> Self {
        let running = gpc_server::bind(ServerConfig {
            listen,
            data_dir: dir.path().to_path_buf(),
            ssp: SspConfig {
                provider_base,
                ..base.ssp.clone()
            },
            consumer,
            seed: Some(gpc_directory::demo_region()),
            ..base
        })
        .await
        .expect("the gpc-tasks server starts");
        let base = running.public_url.clone();
        let addr = running.addr;
        let store = running.state.store.clone();
        let engine = running.state.engine.clone();
        let received = running.state.received.clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(running.serve(async {
            let _ = stopped.await;
        }));
        Self {
            base,
            addr,
            store,
            engine,
            received,
            dir,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub async fn stop(mut self) -> TempDir {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        std::mem::replace(&mut self.dir, tempfile::tempdir().unwrap())
    }
}

impl Drop for Spine {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The UI and everything under it: one `serve`-like server.
pub struct World {
    pub spine: Spine,
    /// Base URL of the web UI (the server itself).
    pub web: String,
    pub engine: Engine,
    pub received: broadcast::Sender<ReceivedEvent>,
}

impl World {
    pub async fn start() -> Self {
        let spine = Spine::serve(
            "127.0.0.1:0".parse().unwrap(),
            tempfile::tempdir().unwrap(),
            None,
        )
        .await;
        Self::over(spine).await
    }

    /// The UI of a server started with [`Spine::serve`].
    pub async fn over(spine: Spine) -> Self {
        let engine = spine
            .engine
            .clone()
            .expect("the server was started as `serve`, with its engine");
        Self {
            web: spine.base.clone(),
            received: spine.received.clone(),
            engine,
            spine,
        }
    }

    pub fn browser(&self) -> Browser {
        Browser::new(&self.web)
    }
}

/// A browser without a script engine: keeps the session cookie, does not
/// follow redirects (tests look at them), sends forms as browsers do.
pub struct Browser {
    http: reqwest::Client,
    pub base: String,
    cookie: Option<String>,
}

pub struct Page {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: String,
}

impl Page {
    pub fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    #[track_caller]
    pub fn assert_contains(&self, text: &str) -> &Self {
        assert!(
            self.body.contains(text),
            "expected {text:?} in the page (status {}):\n{}",
            self.status,
            self.body
        );
        self
    }

    #[track_caller]
    pub fn assert_lacks(&self, text: &str) -> &Self {
        assert!(
            !self.body.contains(text),
            "did not expect {text:?} in the page:\n{}",
            self.body
        );
        self
    }
}

impl Browser {
    pub fn new(base: &str) -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: base.to_owned(),
            cookie: None,
        }
    }

    async fn page(&mut self, request: reqwest::RequestBuilder) -> Page {
        let request = match &self.cookie {
            Some(c) => request.header("cookie", c),
            None => request,
        };
        let response = request.send().await.expect("the UI answers");
        let status = response.status();
        let headers = response.headers().clone();
        if let Some(set) = headers.get(SET_COOKIE).and_then(|v| v.to_str().ok()) {
            let pair = set.split(';').next().unwrap_or("").to_owned();
            self.cookie = if pair.ends_with('=') {
                None
            } else {
                Some(pair)
            };
        }
        let body = response.text().await.unwrap_or_default();
        Page {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&mut self, path: &str) -> Page {
        let request = self.http.get(format!("{}{path}", self.base));
        self.page(request).await
    }

    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("origin", &self.base)
            .form(form);
        self.page(request).await
    }

    /// A browser already holding `cookie` (`name=value`).
    pub fn holding(base: &str, cookie: &str) -> Self {
        let mut b = Self::new(base);
        b.cookie = Some(cookie.to_owned());
        b
    }

    pub fn cookie(&self) -> Option<&str> {
        self.cookie.as_deref()
    }

    pub async fn sign_in(&mut self, org: &str, user: &str) {
        let page = self.post("/sign-in", &[("org", org), ("user", user)]).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
        assert_eq!(page.location(), "/patient");
    }

    /// Sends a task through the form; returns the sent task's page path.
    pub async fn send(&mut self, nhs: &str, to: &str, task_type: &str, details: &str) -> String {
        let page = self
            .post(
                "/send",
                &[
                    ("nhs", nhs),
                    ("to", to),
                    ("to_q", ""),
                    ("task_type", task_type),
                    ("details", details),
                    ("action", "send"),
                ],
            )
            .await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
        let location = page.location().to_owned();
        assert!(location.starts_with("/sent/"), "{location}");
        location
    }

    /// Sends an action-needed task about Mrs DAWES to GP Connect
    /// Demonstrator and waits until it is delivered; returns the
    /// practice's id of the task.
    pub async fn deliver_to_gpc001(&mut self, details: &str) -> String {
        let path = self.send("947 671 9931", "GPC001", "2", details).await;
        let delivered = self
            .wait_for(&path, "Delivered to GP Connect Demonstrator")
            .await;
        let id = between(&delivered.body, r#"data-testid="provider-task-id">"#, "<").to_owned();
        assert!(!id.is_empty(), "{}", delivered.body);
        id
    }

    /// Reloads `path` until it shows `text`.
    pub async fn wait_for(&mut self, path: &str, text: &str) -> Page {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let page = self.get(path).await;
            if page.body.contains(text) {
                return page;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{path} never showed {text:?}; last:\n{}",
                page.body
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The part of `html` between `start` and the next `end`.
pub fn between<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    let from = html.find(start).map(|i| i + start.len()).unwrap_or(0);
    let rest = &html[from..];
    &rest[..rest.find(end).unwrap_or(rest.len())]
}
