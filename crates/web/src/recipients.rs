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
    cache: Mutex<Cache>,
}

/// The answers, and the region index they were given under: an import
/// replaces the index, and then the answers are dropped, so that an
/// imported change shows within seconds rather than a minute.
/// The index is held (not its address), so that a later one cannot be
/// taken for it.
#[derive(Default)]
struct Cache {
    region: Option<Arc<gpc_domain::Region>>,
    answers: HashMap<String, (Instant, Recipient)>,
}

impl Cache {
    fn of_region(
        &mut self,
        region: Arc<gpc_domain::Region>,
    ) -> &mut HashMap<String, (Instant, Recipient)> {
        if !self
            .region
            .as_ref()
            .is_some_and(|r| Arc::ptr_eq(r, &region))
        {
            self.region = Some(region);
            self.answers.clear();
        }
        &mut self.answers
    }
}

impl Recipients {
    pub fn new(directory: Arc<dyn Directory>, reference: Arc<dyn ReferenceLookup>) -> Self {
        Self {
            directory,
            reference,
            cache: Mutex::default(),
        }
    }

    fn region(&self) -> Arc<gpc_domain::Region> {
        self.reference.current()
    }

    fn cached(&self, ods: &str) -> Option<Recipient> {
        let region = self.region();
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .of_region(region)
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
        let region = self.region();
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .of_region(region)
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

#[cfg(test)]
mod tests {
    use super::*;
    use gpc_directory::{DirectoryOrganisation, SdsEndpoint, TracedPatient};
    use gpc_domain::region::{Region, RegionIndex};
    use gpc_domain::{Asid, NhsNumber};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// ODS that names every organisation "Name N", N its look-ups so far.
    #[derive(Default)]
    struct Counting(AtomicUsize);

    #[async_trait::async_trait]
    impl Directory for Counting {
        async fn trace_patient(&self, _: &NhsNumber) -> Result<TracedPatient, DirectoryError> {
            Err(DirectoryError::NotFound("none".into()))
        }
        async fn endpoint(
            &self,
            _: &OdsCode,
            _: &str,
        ) -> Result<Option<SdsEndpoint>, DirectoryError> {
            Ok(None)
        }
        async fn asid(&self, _: &OdsCode, _: &str) -> Result<Option<Asid>, DirectoryError> {
            Ok(None)
        }
        async fn organisation(
            &self,
            ods: &OdsCode,
        ) -> Result<Option<DirectoryOrganisation>, DirectoryError> {
            let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
            Ok(Some(DirectoryOrganisation {
                ods: ods.clone(),
                name: format!("Name {n}"),
                care_setting: "GP practice".into(),
                telephone: String::new(),
                address: None,
            }))
        }
        async fn search_organisations(
            &self,
            _: &str,
        ) -> Result<Vec<DirectoryOrganisation>, DirectoryError> {
            Ok(Vec::new())
        }
    }

    #[tokio::test]
    async fn answers_are_kept_until_the_region_is_replaced() {
        let index = Arc::new(RegionIndex::new(Region::new(gpc_directory::demo_region())));
        let recipients = Recipients::new(Arc::new(Counting::default()), index.clone());
        let ods = OdsCode::parse("GPC001").unwrap();
        let name = async || recipients.get(&ods).await.unwrap().unwrap().name;
        assert_eq!(name().await, "Name 1");
        assert_eq!(name().await, "Name 1", "kept");
        // An import replaced the index: the next answer is the directory's own.
        index.replace(Region::new(gpc_directory::demo_region()));
        assert_eq!(name().await, "Name 2");
        assert_eq!(name().await, "Name 2");
    }
}
