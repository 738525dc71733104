//! A reverse proxy that answers slowly: it forwards each request to a real
//! provider at once (so a task is stored), and holds back the answer of the
//! first POSTs. It plays the provider that answers too late.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, StatusCode};
use axum::response::Response;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::oneshot;

#[derive(Clone)]
struct Upstream {
    base: String,
    client: reqwest::Client,
    slow_posts: usize,
    delay: Duration,
    posts: Arc<AtomicUsize>,
}

pub struct DelayProxy {
    pub base: String,
    posts: Arc<AtomicUsize>,
    _stop: oneshot::Sender<()>,
}

impl DelayProxy {
    /// Forwards to `upstream` (a server base URL, paths kept); the first
    /// `slow_posts` POSTs are answered only `delay` after the upstream answered.
    pub async fn start(upstream: &str, slow_posts: usize, delay: Duration) -> Self {
        let posts = Arc::new(AtomicUsize::new(0));
        let state = Upstream {
            base: upstream.trim_end_matches('/').to_owned(),
            client: reqwest::Client::new(),
            slow_posts,
            delay,
            posts: posts.clone(),
        };
        let app = axum::Router::new().fallback(forward).with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Self {
            base,
            posts,
            _stop: stop,
        }
    }

    /// POSTs received so far.
    pub fn posts(&self) -> usize {
        self.posts.load(Ordering::SeqCst)
    }
}

const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "host",
    "content-length",
];

async fn forward(State(up): State<Upstream>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let mut outbound = up
        .client
        .request(parts.method.clone(), format!("{}{path}", up.base))
        .body(bytes);
    for (name, value) in &parts.headers {
        if !HOP_BY_HOP.contains(&name.as_str()) {
            outbound = outbound.header(name, value);
        }
    }
    let slow = parts.method == axum::http::Method::POST
        && up.posts.fetch_add(1, Ordering::SeqCst) < up.slow_posts;
    let answer = match outbound.send().await {
        Ok(answer) => answer,
        Err(_) => {
            let mut r = Response::new(Body::empty());
            *r.status_mut() = StatusCode::BAD_GATEWAY;
            return r;
        }
    };
    let status = answer.status();
    let headers = answer.headers().clone();
    let body = answer.bytes().await.unwrap_or_default();
    if slow {
        tokio::time::sleep(up.delay).await;
    }
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    for (name, value) in &headers {
        if !HOP_BY_HOP.contains(&name.as_str()) {
            response.headers_mut().append(
                HeaderName::from_bytes(name.as_str().as_bytes()).unwrap(),
                value.clone(),
            );
        }
    }
    response
}
