//! The HTTP side of gpc-tasks: the multi-tenant GP Connect provider and the
//! server that hosts it.

pub mod directory_api;
pub mod provider;
pub mod ssp;
pub mod state;
pub mod tls;

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
    /// HTTPS, optionally requiring client certificates; plain HTTP when `None`.
    pub tls: Option<tls::ServerTls>,
    pub ssp: ssp::SspConfig,
}

impl Default for ServerConfig {
    /// Loopback on a free port, plain HTTP, `./data`.
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            public_url: None,
            data_dir: PathBuf::from("./data"),
            tls: None,
            ssp: ssp::SspConfig::default(),
        }
    }
}

/// The whole application router.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(directory_api::routes())
        .fallback(provider::handle)
        .with_state(state.clone())
        .layer(CompressionLayer::new().gzip(true))
        // After the layer: the SSP passes the provider's answer back unchanged.
        .merge(ssp::router(state))
}

/// A server that is listening.
pub struct Running {
    pub addr: SocketAddr,
    pub public_url: String,
    pub state: AppState,
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
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
    // Read before binding, so that a bad certificate path fails before the port is taken.
    let tls = config.tls.as_ref().map(tls::server_config).transpose()?;
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("cannot read the bound address: {e}"))?;
    let public_url = config
        .public_url
        .unwrap_or_else(|| {
            let scheme = if tls.is_some() { "https" } else { "http" };
            format!("{scheme}://{addr}")
        })
        .trim_end_matches('/')
        .to_owned();
    let provider_base = config.ssp.provider_base.as_deref().unwrap_or(&public_url);
    let ssp = ssp::Ssp::new(&reference, provider_base, &config.ssp)?;
    let region = Arc::new(Region::new(reference));
    let directory = gpc_directory::EmbeddedDirectory::new(region.clone(), provider_base);
    let state = AppState {
        store,
        region,
        public_url: public_url.clone().into(),
        ssp: Arc::new(ssp),
        directory: Arc::new(directory),
    };
    Ok(Running {
        addr,
        public_url,
        state,
        listener,
        tls,
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
        let app = router(self.state);
        match self.tls {
            None => axum::serve(self.listener, app)
                .with_graceful_shutdown(shutdown)
                .await
                .map_err(|e| format!("server error: {e}"))?,
            Some(config) => tls::serve(self.listener, app, config, shutdown).await?,
        }
        store
            .flush()
            .await
            .map_err(|e| format!("flushing the store at shutdown failed: {e}"))
    }
}
