//! What every handler shares.

use gpc_domain::Region;
use gpc_domain::reference::ReferenceData;
use gpc_domain::region::{ReferenceLookup, RegionIndex};
use gpc_store::Store;
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    /// The reference data as it stands: take `region.current()` once per
    /// request. The provider, the directory and the sending engine share it.
    pub region: Arc<dyn ReferenceLookup>,
    /// The same index, to replace it (`replace_reference`).
    pub region_index: Arc<RegionIndex>,
    /// Base of absolute URLs, without a trailing slash (e.g. `http://127.0.0.1:8080`).
    pub public_url: Arc<str>,
    /// The Spine Security Proxy: registry and pooled client.
    pub ssp: Arc<crate::ssp::Ssp>,
    /// The national look-ups served by the directory APIs. Its SDS endpoints
    /// use the same provider base as the SSP's registry, so the SSP never
    /// refuses a target that SDS advertises.
    pub directory: Arc<gpc_directory::EmbeddedDirectory>,
    /// Each task the provider stores, for live inbox views.
    pub received: tokio::sync::broadcast::Sender<gpc_domain::task::ReceivedEvent>,
    /// Whether the provider announces the tasks it stores itself; not when a
    /// shared database announces them to every instance.
    pub announce_received: bool,
    /// Each change of a received task, for live pages (ids only).
    pub changed: tokio::sync::broadcast::Sender<gpc_domain::task::ReceivedEvent>,
    /// Whether the pages announce the changes they make themselves; not when
    /// a shared database announces every change to every instance.
    pub announce_changes: bool,
    /// The sending engine of this process (with `serve`), delivering the outbox.
    pub engine: Option<gpc_consumer::Engine>,
    /// The tasks the organisations of this server sent, to which the
    /// provider applies the updates their recipients post
    /// (`POST /OrderResponse`). The engine's own outbox where there is an
    /// engine; `None` only in a process that serves no provider (the SSP
    /// or the directory alone), which never answers an update.
    pub outbox: Option<Arc<dyn gpc_store::outbox::Outbox>>,
    /// The JWT resource claims already checked, shared by the provider and
    /// the SSP of this state (and no other).
    pub claim_cache: Arc<gpc_domain::jwt::ClaimCache>,
    /// The provider's Conformance bodies, rendered once per root and format.
    pub conformance_cache: Arc<crate::provider::resources::ConformanceCache>,
    /// The web UI's sign-in and its sessions' limits.
    pub auth: gpc_web::AuthMode,
    pub sessions: gpc_web::SessionLimits,
}

impl AppState {
    /// Puts new reference data in place for every part of this server at
    /// once: the provider's, directory's and engine's index and the SSP's
    /// registry. Requests under way finish with the data they started with.
    pub fn replace_reference(&self, data: ReferenceData) {
        self.ssp.replace_reference(&data);
        self.region_index.replace(Region::new(data));
    }

    /// The provider root of an organisation: `{public-url}/{ODS}/DSTU2/1`.
    pub fn provider_root(&self, ods: &str) -> String {
        format!("{}/{ods}/DSTU2/1", self.public_url)
    }
}
