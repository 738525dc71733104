//! The HTTP side of gpc-tasks: the multi-tenant GP Connect provider and the
//! server that hosts it.

pub mod provider;
pub mod state;

use axum::Router;
use gpc_domain::Region;
use gpc_store::{SqliteStore, Store};
use state::AppState;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::net::TcpListener;
use tower_http::compression::CompressionLayer;

/// How to run the server.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Base for absolute URLs; `http://{listen}` when `None`.
    pub public_url: Option<String>,
    pub data_dir: PathBuf,
}

/// The whole application router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .fallback(provider::handle)
        .with_state(state)
        .layer(CompressionLayer::new().gzip(true))
}

/// A server that is listening.
pub struct Running {
    pub addr: SocketAddr,
    pub public_url: String,
    pub state: AppState,
    listener: TcpListener,
}

/// Opens the store (seeding the demo region into a new data directory) and binds.
pub async fn bind(config: ServerConfig) -> Result<Running, String> {
    let store = SqliteStore::open(&config.data_dir).map_err(|e| {
        format!(
            "cannot open the data directory {}: {e}",
            config.data_dir.display()
        )
    })?;
    let store: Arc<dyn Store> = Arc::new(store);
    let reference = store
        .reference_data()
        .await
        .map_err(|e| format!("cannot read the reference data: {e}"))?;
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("cannot read the bound address: {e}"))?;
    let public_url = config
        .public_url
        .unwrap_or_else(|| format!("http://{addr}"))
        .trim_end_matches('/')
        .to_owned();
    let state = AppState {
        store,
        region: Arc::new(Region::new(reference)),
        public_url: public_url.clone().into(),
    };
    Ok(Running {
        addr,
        public_url,
        state,
        listener,
    })
}

impl Running {
    /// Serves until `shutdown` resolves, then lets in-flight requests finish
    /// and flushes the store.
    pub async fn serve(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), String> {
        let store = self.state.store.clone();
        axum::serve(self.listener, router(self.state))
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(|e| format!("server error: {e}"))?;
        store
            .flush()
            .await
            .map_err(|e| format!("flushing the store at shutdown failed: {e}"))
    }
}
