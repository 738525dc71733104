//! What every handler shares.

use gpc_domain::Region;
use gpc_store::Store;
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub region: Arc<Region>,
    /// Base of absolute URLs, without a trailing slash (e.g. `http://127.0.0.1:8080`).
    pub public_url: Arc<str>,
}

impl AppState {
    /// The provider root of an organisation: `{public-url}/{ODS}/DSTU2/1`.
    pub fn provider_root(&self, ods: &str) -> String {
        format!("{}/{ods}/DSTU2/1", self.public_url)
    }
}
