//! Where a command's data lives: SQLite in the data directory, or PostgreSQL.

use crate::DataArgs;
use gpc_store::Store;
use gpc_store::outbox::Outbox;
use std::sync::Arc;

impl DataArgs {
    /// The store, created when new. Only a server seeds the demo region
    /// (`serve` into an empty store); a command that reads or sends works
    /// with the reference data there is.
    pub async fn store(&self) -> Result<Arc<dyn Store>, String> {
        gpc_store::open_store(self.database_url.as_deref(), &self.data_dir)
            .await
            .map_err(|e| self.describe(e))
    }

    /// The store of a system that has run: reading commands refuse to create
    /// an empty one in a mistyped folder.
    pub async fn existing_store(&self) -> Result<Arc<dyn Store>, String> {
        if self.database_url.is_none() && !self.data_dir.join(gpc_store::DATABASE_FILE).exists() {
            return Err(format!(
                "no gpc-tasks database in {}; run `gpc-tasks serve --data-dir {}` first",
                self.data_dir.display(),
                self.data_dir.display()
            ));
        }
        self.store().await
    }

    pub async fn outbox(&self) -> Result<Arc<dyn Outbox>, String> {
        gpc_store::open_outbox(self.database_url.as_deref(), &self.data_dir)
            .await
            .map_err(|e| self.describe(e))
    }

    /// Names the place without the URL, which may hold a password.
    fn describe(&self, e: gpc_store::StoreError) -> String {
        match self.database_url {
            Some(_) => format!("cannot open the PostgreSQL database: {e}"),
            None => format!("cannot open {}: {e}", self.data_dir.display()),
        }
    }
}
