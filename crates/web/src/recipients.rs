//! The organisations a task can go to, as the "To" field shows them: name,
//! code and care setting from the organisation directory (ODS), and whether
//! SDS lists an electronic route for Create Task, with the telephone to use
//! when it does not.
//!
//! Answers are kept for a minute: the form is drawn often, and the engine
//! looks the recipient up again when the task is sent, so a stale entry can
//! mislead for a minute at most and never misroutes a task.

use gpc_directory::{Directory, DirectoryError};
use gpc_domain::region::ReferenceLookup;
use gpc_domain::{Interaction, OdsCode};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

const FRESH_FOR: Duration = Duration::from_secs(60);

/// Most organisations the "To" list shows at once: each is two directory
/// look-ups, and a national region has tens of thousands; the search field
/// finds the others.
pub const MAX_LISTED: usize = 50;

#[derive(Debug, Clone)]
pub struct Recipient {
    pub ods: String,
    pub name: String,
    pub care_setting: String,
    pub telephone: String,
    /// SDS lists an endpoint at which it receives Create Task.
    pub electronic: bool,
}

impl Recipient {
    /// One line for a `<select>` option, which cannot hold markup.
    pub fn option_label(&self) -> String {
        let mut label = format!("{} ({}) – {}", self.name, self.ods, self.care_setting);
        if !self.electronic {
            label.push_str(&format!(
                " – no electronic route: telephone {}",
                self.telephone
            ));
        }
        label
    }

    /// What the filter matches: name and code, lower case.
    pub fn search_text(&self) -> String {
        format!("{} {}", self.name, self.ods).to_lowercase()
    }
}

pub struct Recipients {
    directory: Arc<dyn Directory>,
    reference: Arc<dyn ReferenceLookup>,
    cache: Mutex<HashMap<String, (Instant, Recipient)>>,
}

impl Recipients {
    pub fn new(directory: Arc<dyn Directory>, reference: Arc<dyn ReferenceLookup>) -> Self {
        Self {
            directory,
            reference,
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn cached(&self, ods: &str) -> Option<Recipient> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .get(ods)
            .filter(|(at, _)| at.elapsed() < FRESH_FOR)
            .map(|(_, r)| r.clone())
    }

    /// One organisation; `None` when the directory does not know it.
    pub async fn get(&self, ods: &OdsCode) -> Result<Option<Recipient>, DirectoryError> {
        if let Some(r) = self.cached(ods.as_str()) {
            return Ok(Some(r));
        }
        let Some(org) = self.directory.organisation(ods).await? else {
            return Ok(None);
        };
        let endpoint = self
            .directory
            .endpoint(ods, Interaction::CreateTask.id())
            .await?;
        let recipient = Recipient {
            ods: org.ods.to_string(),
            name: org.name,
            care_setting: org.care_setting,
            telephone: org.telephone,
            electronic: endpoint.is_some(),
        };
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(recipient.ods.clone(), (Instant::now(), recipient.clone()));
        Ok(Some(recipient))
    }

    /// The organisations of the region, in the region's order, up to [`MAX_LISTED`].
    pub async fn all(self: &Arc<Self>) -> Result<Vec<Recipient>, DirectoryError> {
        let codes: Vec<OdsCode> = self
            .reference
            .current()
            .organisations()
            .iter()
            .take(MAX_LISTED)
            .map(|o| o.ods.clone())
            .collect();
        self.many(codes).await
    }

    /// Organisations whose name or code contains `text`, as the directory
    /// finds them, up to [`MAX_LISTED`].
    pub async fn search(self: &Arc<Self>, text: &str) -> Result<Vec<Recipient>, DirectoryError> {
        let found = self.directory.search_organisations(text).await?;
        self.many(found.into_iter().take(MAX_LISTED).map(|o| o.ods).collect())
            .await
    }

    async fn many(self: &Arc<Self>, codes: Vec<OdsCode>) -> Result<Vec<Recipient>, DirectoryError> {
        let mut lookups = JoinSet::new();
        for (i, ods) in codes.into_iter().enumerate() {
            let this = Arc::clone(self);
            lookups.spawn(async move { (i, this.get(&ods).await) });
        }
        let mut found = Vec::new();
        while let Some(done) = lookups.join_next().await {
            let (i, result) =
                done.map_err(|e| DirectoryError::Unavailable(format!("look-up stopped: {e}")))?;
            if let Some(r) = result? {
                found.push((i, r));
            }
        }
        found.sort_by_key(|(i, _)| *i);
        Ok(found.into_iter().map(|(_, r)| r).collect())
    }
}
