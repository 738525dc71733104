//! The HTTP side of gpc-tasks: the multi-tenant GP Connect provider and the
//! server that hosts it.

// The unit tests' crate sees every dev-dependency, which the integration tests use.
#![cfg_attr(test, allow(unused_crate_dependencies))]

mod connections;
pub mod directory_api;
pub mod limits;
pub mod ops;
pub mod provider;
mod reference_follow;
pub mod ssp;
pub mod state;
pub mod tls;

use axum::Router;
use gpc_domain::Region;
use gpc_domain::reference::ReferenceData;
use gpc_domain::region::{ReferenceLookup, RegionIndex};
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
    /// Which parts this process serves: all of them for `serve`, one for the
    /// `provider`, `ssp` and `directory` sub-commands.
    pub parts: Parts,
    /// The sending side (engine and outbox worker), run by `serve`.
    pub consumer: Option<ConsumerConfig>,
    /// PostgreSQL for every store (tasks, audit, outbox) instead of SQLite in
    /// `data_dir`; several instances may share one database.
    pub database_url: Option<String>,
    /// Connections, timeouts and header sizes per client.
    pub limits: limits::Limits,
    /// Reference data written into a store that has none (a new data
    /// directory or database): the CLI gives the demo region. `None` leaves
    /// an empty store empty.
    pub seed: Option<ReferenceData>,
    /// How people sign in to the web UI, and how long they stay signed in.
    pub auth: gpc_web::AuthMode,
    pub sessions: gpc_web::SessionLimits,
    /// Where `/metrics`, `/livez` and `/readyz` are served (their own
    /// listener); no metrics are recorded when `None`.
    pub metrics_listen: Option<SocketAddr>,
}

/// Where the sending engine finds the SSP and the directory: the server's
/// own when not set, so that `serve` is a whole system on its own.
#[derive(Debug, Clone, Default)]
pub struct ConsumerConfig {
    pub ssp_url: Option<String>,
    pub directory_url: Option<String>,
    /// Delays before the automatic retries (the engine's defaults when empty).
    pub retry_delays: Vec<std::time::Duration>,
    pub request_timeout: Option<std::time::Duration>,
    /// The CA the engine trusts and the certificates it presents; `None`
    /// for plain HTTP (or servers whose CA nothing here needs to name).
    pub tls: Option<tls::SenderTls>,
}

/// The parts of the system one process can serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parts {
    pub provider: bool,
    pub ssp: bool,
    pub directory: bool,
}

impl Parts {
    pub const ALL: Parts = Parts {
        provider: true,
        ssp: true,
        directory: true,
    };
    pub const PROVIDER: Parts = Parts {
        provider: true,
        ssp: false,
        directory: false,
    };
    pub const SSP: Parts = Parts {
        provider: false,
        ssp: true,
        directory: false,
    };
    pub const DIRECTORY: Parts = Parts {
        provider: false,
        ssp: false,
        directory: true,
    };
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
            parts: Parts::ALL,
            consumer: None,
            database_url: None,
            limits: limits::Limits::default(),
            seed: None,
            auth: gpc_web::AuthMode::Demo,
            sessions: gpc_web::SessionLimits::default(),
            metrics_listen: None,
        }
    }
}

/// The router of the parts this process serves. A path that belongs to a
/// part served elsewhere is a 404 OperationOutcome.
pub fn router(state: AppState, parts: Parts) -> Router {
    let mut app = Router::new();
    if parts.directory {
        app = app.merge(directory_api::routes());
    }
    // The clinician's pages come with the sending engine of `serve`; a part
    // run apart may send (a provider's task updates) but shows no pages.
    let web = (parts == Parts::ALL)
        .then(|| state.engine.clone())
        .flatten()
        .map(|engine| {
            gpc_web::routes(gpc_web::WebState {
                engine,
                store: state.store.clone(),
                received: state.received.clone(),
                changed: state.changed.clone(),
                announce_changes: state.announce_changes,
                auth: state.auth.clone(),
                sessions: state.sessions,
                https: state.public_url.starts_with("https://"),
            })
        });
    app = if parts.provider {
        app.fallback(provider::handle)
    } else {
        app.fallback(not_served)
    };
    let mut app = app.with_state(state.clone());
    if let Some(web) = web {
        app = app.merge(web);
    }
    let app = app.layer(CompressionLayer::new().gzip(true));
    if parts.ssp {
        // After the layer: the SSP passes the provider's answer back unchanged.
        app.merge(ssp::router(state))
    } else {
        app
    }
}

/// At most `max` characters of a client-supplied value, so that echoed and
/// stored values cannot grow without bound.
pub(crate) fn short(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

async fn not_served(uri: axum::http::Uri) -> axum::response::Response {
    let error = gpc_domain::ProviderError::NotFound(format!(
        "{} is not served by this part of the system",
        short(uri.path(), 100)
    ));
    provider::response::error_response(&error, gpc_fhir::Format::Json)
}

/// A server that is listening.
pub struct Running {
    pub addr: SocketAddr,
    pub public_url: String,
    pub state: AppState,
    pub parts: Parts,
    /// Organisations the engine sends for that have no usable certificate
    /// (`ConsumerConfig::tls`), each with why: reported at start, and each
    /// such organisation's sends fail with the same words.
    pub sender_cert_problems: Vec<String>,
    /// Where `/metrics`, `/livez` and `/readyz` are served, if anywhere.
    pub metrics_addr: Option<SocketAddr>,
    metrics: Option<(TcpListener, metrics_exporter_prometheus::PrometheusHandle)>,
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    limits: limits::Limits,
    /// The store's reference version the index was built at.
    reference_version: i64,
}

/// Opens the store (writing `config.seed` into one without reference data) and binds.
pub async fn bind(config: ServerConfig) -> Result<Running, String> {
    let database_url = config.database_url.as_deref();
    let store = gpc_store::open_store(database_url, &config.data_dir)
        .await
        .map_err(|e| match database_url {
            Some(_) => format!("cannot open the PostgreSQL database: {e}"),
            None => format!(
                "cannot open the data directory {}: {e}",
                config.data_dir.display()
            ),
        })?;
    // Read before the index, so that an import between the two is seen as
    // a change at the first poll (`reference_follow`).
    let reference_version = store
        .reference_version()
        .await
        .map_err(|e| format!("cannot read the reference data: {e}"))?;
    let reference = seeded_reference(&*store, config.seed).await?;
    // Read before binding, so that a bad certificate path fails before the port is taken.
    let tls = config.tls.as_ref().map(tls::server_config).transpose()?;
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("cannot read the bound address: {e}"))?;
    let metrics = match config.metrics_listen {
        Some(listen) => {
            let prometheus = ops::install_recorder()?;
            let listener = TcpListener::bind(listen)
                .await
                .map_err(|e| format!("cannot listen for metrics on {listen}: {e}"))?;
            Some((listener, prometheus))
        }
        None => None,
    };
    let metrics_addr = metrics
        .as_ref()
        .map(|(l, _)| l.local_addr())
        .transpose()
        .map_err(|e| format!("cannot read the metrics address: {e}"))?;
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
    let region_index = Arc::new(RegionIndex::new(Region::new(reference)));
    let region: Arc<dyn ReferenceLookup> = region_index.clone();
    let directory = gpc_directory::EmbeddedDirectory::new(
        region.clone(),
        Arc::new(reference_follow::StorePatients(store.clone())),
        provider_base,
    );
    // One outbox for the engine that sends and the provider that hears
    // back, so that an update lands in the store the engine reads.
    let outbox = if config.consumer.is_some() || config.parts.provider {
        Some(
            gpc_store::open_outbox(database_url, &config.data_dir)
                .await
                .map_err(|e| format!("cannot open the outbox: {e}"))?,
        )
    } else {
        None
    };
    let sender_tls = config.consumer.as_ref().and_then(|c| c.tls.as_ref());
    if let Some(sender_tls) = sender_tls {
        sender_tls.check()?;
    }
    let sender_cert_problems = match sender_tls {
        Some(sender_tls) => {
            let current = region.current();
            // Those with a Spine system: the ones `gpc-tasks certs` writes for.
            sender_tls.missing(
                current
                    .organisations()
                    .iter()
                    .filter(|o| o.asid.is_some())
                    .map(|o| o.ods.as_str()),
            )
        }
        None => Vec::new(),
    };
    for problem in &sender_cert_problems {
        tracing::warn!(problem = %problem, "a sending organisation has no certificate");
    }
    let engine = match (&config.consumer, &outbox) {
        (Some(consumer), Some(outbox)) => Some(consumer_engine(
            consumer,
            &public_url,
            outbox.clone(),
            region.clone(),
        )?),
        _ => None,
    };
    let received = tokio::sync::broadcast::channel(256).0;
    // With a shared database, every instance hears of every stored task
    // (its own included) from the database, so the provider must not also
    // announce its own.
    let shared_arrivals = store.received_events();
    let announce_received = shared_arrivals.is_none();
    if let Some(arrivals) = shared_arrivals {
        tokio::spawn(forward_arrivals(arrivals, received.clone()));
    }
    // Changes of received tasks, likewise: from the database when it has a
    // feed (every instance's and every CLI command's), else announced by
    // the pages that make them.
    let changed = tokio::sync::broadcast::channel(256).0;
    let shared_changes = store.changed_events();
    let announce_changes = shared_changes.is_none();
    if let Some(changes) = shared_changes {
        tokio::spawn(forward_arrivals(changes, changed.clone()));
    }
    let mut limits = config.limits;
    // The SSP's own 504 must come before this server gives up on the request.
    limits.request_timeout = limits
        .request_timeout
        .max(config.ssp.timeout + std::time::Duration::from_secs(1));
    let state = AppState {
        store,
        region,
        region_index,
        public_url: public_url.clone().into(),
        ssp: Arc::new(ssp),
        directory: Arc::new(directory),
        received,
        announce_received,
        changed,
        announce_changes,
        engine,
        outbox,
        claim_cache: Arc::default(),
        conformance_cache: Arc::default(),
        auth: config.auth.clone(),
        sessions: config.sessions,
    };
    Ok(Running {
        addr,
        public_url,
        state,
        parts: config.parts,
        sender_cert_problems,
        metrics_addr,
        metrics,
        listener,
        tls,
        limits,
        reference_version,
    })
}

/// The store's reference data as a server holds it (`Store::reference_index`:
/// no patients or records), after writing `seed` into a store that has
/// none. Instances starting together on a new database may all write it:
/// upserts of the same data leave it as one would.
pub async fn seeded_reference(
    store: &dyn gpc_store::Store,
    seed: Option<ReferenceData>,
) -> Result<ReferenceData, String> {
    let read = |e: gpc_store::StoreError| format!("cannot read the reference data: {e}");
    let empty = store.reference_counts().await.map_err(read)? == [0; 5];
    match seed {
        Some(seed) if empty => {
            store
                .upsert_reference(&seed)
                .await
                .map_err(|e| format!("cannot write the reference data: {e}"))?;
            tracing::info!(
                organisations = seed.organisations.len(),
                patients = seed.patients.len(),
                "reference data written into a new store"
            );
            store.reference_index().await.map_err(read)
        }
        _ => store.reference_index().await.map_err(read),
    }
}

/// The sending engine over the outbox in `data_dir`, talking HTTP to the SSP
/// and directory (this server's own unless configured otherwise).
fn consumer_engine(
    config: &ConsumerConfig,
    public_url: &str,
    outbox: Arc<dyn gpc_store::outbox::Outbox>,
    region: Arc<dyn ReferenceLookup>,
) -> Result<gpc_consumer::Engine, String> {
    let directory_url = config.directory_url.as_deref().unwrap_or(public_url);
    let directory = http_directory(directory_url, config.tls.as_ref())?;
    let directory =
        gpc_directory::CachingDirectory::new(Arc::new(directory), gpc_directory::SDS_CACHE_TTL);
    let ssp_url = config
        .ssp_url
        .clone()
        .unwrap_or_else(|| format!("{public_url}/ssp"));
    let mut engine_config = gpc_consumer::EngineConfig::new(&ssp_url, public_url);
    if !config.retry_delays.is_empty() {
        engine_config.retry_delays = config.retry_delays.clone();
    }
    if let Some(timeout) = config.request_timeout {
        engine_config.request_timeout = timeout;
        engine_config.lease = timeout * 4 + std::time::Duration::from_secs(5);
    }
    engine_config.tls = config
        .tls
        .clone()
        .map(|tls| Arc::new(tls) as Arc<dyn gpc_consumer::SenderTls>);
    gpc_consumer::Engine::new(engine_config, Arc::new(directory), outbox, region)
}

/// The directory APIs on the server at `url`, over the sender's TLS when given.
pub fn http_directory(
    url: &str,
    tls: Option<&tls::SenderTls>,
) -> Result<gpc_directory::HttpDirectory, String> {
    let urls = gpc_directory::DirectoryUrls::on_server(url);
    let Some(tls) = tls else {
        return gpc_directory::HttpDirectory::new(urls).map_err(|e| e.to_string());
    };
    let client = gpc_directory::HttpDirectory::client_builder()
        .use_preconfigured_tls(tls.directory_config()?)
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
    Ok(gpc_directory::HttpDirectory::with_client(urls, client))
}

/// Passes the database's announcements of stored tasks on to this instance's
/// live views.
async fn forward_arrivals(
    mut arrivals: tokio::sync::broadcast::Receiver<gpc_domain::task::ReceivedEvent>,
    received: tokio::sync::broadcast::Sender<gpc_domain::task::ReceivedEvent>,
) {
    use tokio::sync::broadcast::error::RecvError;
    loop {
        match arrivals.recv().await {
            Ok(event) => {
                let _ = received.send(event);
            }
            Err(RecvError::Lagged(missed)) => {
                tracing::warn!(missed, "live inbox views missed arrivals");
            }
            Err(RecvError::Closed) => return,
        }
    }
}

impl Running {
    /// Serves until `shutdown` resolves, then lets in-flight requests finish
    /// and flushes the store.
    pub async fn serve(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), String> {
        let store = self.state.store.clone();
        // Resumes whatever a previous run left in the outbox, then keeps delivering.
        let worker = self.state.engine.as_ref().map(|e| e.spawn_worker());
        // The receiving side's updates go back to the tasks' senders from
        // wherever a provider serves, whoever made the change.
        let updates = match (&self.state.engine, self.parts.provider) {
            (Some(engine), true) => {
                let changed = self
                    .state
                    .announce_changes
                    .then(|| self.state.changed.clone());
                Some(engine.spawn_update_worker(store.clone(), changed))
            }
            _ => None,
        };
        let follower = self
            .state
            .engine
            .as_ref()
            .and_then(|e| e.follow_shared_outbox());
        // An import (another process, or another instance) is picked up
        // without a restart.
        let reference = tokio::spawn(reference_follow::follow(
            self.state.clone(),
            self.reference_version,
            reference_follow::POLL,
        ));
        let ops = self
            .metrics
            .map(|(listener, prometheus)| ops::spawn(listener, self.state.clone(), prometheus));
        let mut app = limits::protect(router(self.state, self.parts), &self.limits);
        if ops::enabled() {
            // Around the limits, so that their refusals and timeouts count too.
            app = app.layer(axum::middleware::from_fn(ops::http_metrics::track));
        }
        connections::serve(self.listener, app, self.tls, &self.limits, shutdown).await?;
        reference.abort();
        for task in worker.into_iter().chain(follower).chain(updates).chain(ops) {
            task.abort();
        }
        store
            .flush()
            .await
            .map_err(|e| format!("flushing the store at shutdown failed: {e}"))
    }
}
