//! SDS answers kept for a while. An organisation's endpoint and ASID change
//! rarely, and a sender that asks SDS for each task and each update pays
//! two round trips to the national service before every post: with 10,000
//! updates queued, four of every six requests were look-ups. Only found
//! endpoints and ASIDs are kept, never "none" or an error, so that a newly
//! registered organisation or a directory that comes back is seen at once.

use crate::{Directory, DirectoryError, DirectoryOrganisation, SdsEndpoint, TracedPatient};
use gpc_domain::{Asid, NhsNumber, OdsCode};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a found endpoint is trusted: a moved system is seen within it.
pub const SDS_CACHE_TTL: Duration = Duration::from_secs(60);

/// Enough for every organisation of a region and each of its interactions;
/// past it the cache starts again empty rather than grow without bound.
const MAX_ENTRIES: usize = 100_000;

/// A [`Directory`] that keeps `inner`'s SDS answers for `ttl`; PDS and ODS
/// are always asked (a patient's record must be current).
pub struct CachingDirectory {
    inner: Arc<dyn Directory>,
    ttl: Duration,
    endpoints: Kept<SdsEndpoint>,
    asids: Kept<Asid>,
}

type Kept<V> = Mutex<HashMap<(OdsCode, String), (Instant, V)>>;

impl CachingDirectory {
    pub fn new(inner: Arc<dyn Directory>, ttl: Duration) -> Self {
        Self {
            inner,
            ttl,
            endpoints: Mutex::default(),
            asids: Mutex::default(),
        }
    }
}

/// The answer kept under `key` while it is fresh, else `ask`'s, kept when
/// it found something. `ask` is a future, so it runs only on a miss.
async fn through<V: Clone>(
    map: &Kept<V>,
    key: (OdsCode, String),
    ttl: Duration,
    ask: impl std::future::Future<Output = Result<Option<V>, DirectoryError>>,
) -> Result<Option<V>, DirectoryError> {
    let fresh = {
        let map = map.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&key)
            .filter(|(until, _)| Instant::now() < *until)
            .map(|(_, v)| v.clone())
    };
    if fresh.is_some() {
        return Ok(fresh);
    }
    let answer = ask.await?;
    if let Some(found) = &answer {
        let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        map.insert(key, (Instant::now() + ttl, found.clone()));
    }
    Ok(answer)
}

#[async_trait::async_trait]
impl Directory for CachingDirectory {
    async fn trace_patient(&self, nhs: &NhsNumber) -> Result<TracedPatient, DirectoryError> {
        self.inner.trace_patient(nhs).await
    }

    async fn endpoint(
        &self,
        ods: &OdsCode,
        interaction: &str,
    ) -> Result<Option<SdsEndpoint>, DirectoryError> {
        let ask = self.inner.endpoint(ods, interaction);
        through(
            &self.endpoints,
            (ods.clone(), interaction.to_owned()),
            self.ttl,
            ask,
        )
        .await
    }

    async fn asid(&self, ods: &OdsCode, interaction: &str) -> Result<Option<Asid>, DirectoryError> {
        let ask = self.inner.asid(ods, interaction);
        through(
            &self.asids,
            (ods.clone(), interaction.to_owned()),
            self.ttl,
            ask,
        )
        .await
    }

    async fn organisation(
        &self,
        ods: &OdsCode,
    ) -> Result<Option<DirectoryOrganisation>, DirectoryError> {
        self.inner.organisation(ods).await
    }

    async fn search_organisations(
        &self,
        text: &str,
    ) -> Result<Vec<DirectoryOrganisation>, DirectoryError> {
        self.inner.search_organisations(text).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// An SDS that counts its questions and answers what `registered` holds now.
    #[derive(Default)]
    struct Counting {
        asked: AtomicUsize,
        registered: Mutex<Option<Result<SdsEndpoint, DirectoryError>>>,
    }

    impl Counting {
        fn answer(&self) -> Result<Option<SdsEndpoint>, DirectoryError> {
            self.asked.fetch_add(1, Ordering::SeqCst);
            self.registered.lock().unwrap().clone().transpose()
        }
    }

    #[async_trait::async_trait]
    impl Directory for Counting {
        async fn trace_patient(&self, _: &NhsNumber) -> Result<TracedPatient, DirectoryError> {
            Err(DirectoryError::NotFound("no patients here".into()))
        }
        async fn endpoint(
            &self,
            _: &OdsCode,
            _: &str,
        ) -> Result<Option<SdsEndpoint>, DirectoryError> {
            self.answer()
        }
        async fn asid(&self, _: &OdsCode, _: &str) -> Result<Option<Asid>, DirectoryError> {
            self.answer().map(|e| e.map(|e| e.asid))
        }
        async fn organisation(
            &self,
            _: &OdsCode,
        ) -> Result<Option<DirectoryOrganisation>, DirectoryError> {
            Ok(None)
        }
        async fn search_organisations(
            &self,
            _: &str,
        ) -> Result<Vec<DirectoryOrganisation>, DirectoryError> {
            Ok(Vec::new())
        }
    }

    fn gpc001() -> OdsCode {
        OdsCode::parse("GPC001").unwrap()
    }

    fn endpoint(address: &str) -> SdsEndpoint {
        SdsEndpoint {
            ods: gpc001(),
            address: address.into(),
            asid: Asid::parse("200000000359").unwrap(),
        }
    }

    const ORDER: &str = "urn:nhs:names:services:gpconnect:fhir:rest:create:order";

    fn set(sds: &Counting, answer: Option<Result<SdsEndpoint, DirectoryError>>) {
        *sds.registered.lock().unwrap() = answer;
    }

    #[tokio::test]
    async fn a_found_endpoint_is_kept_and_none_or_an_error_is_asked_again() {
        let sds = Arc::new(Counting::default());
        let cache = CachingDirectory::new(sds.clone(), Duration::from_secs(3600));
        // Neither "no endpoint" nor an outage is remembered.
        assert_eq!(cache.endpoint(&gpc001(), ORDER).await.unwrap(), None);
        set(&sds, Some(Err(DirectoryError::Unavailable("down".into()))));
        assert!(cache.endpoint(&gpc001(), ORDER).await.is_err());
        set(&sds, Some(Ok(endpoint("https://a.example/GPC001"))));
        let found = cache.endpoint(&gpc001(), ORDER).await.unwrap();
        assert_eq!(found, Some(endpoint("https://a.example/GPC001")));
        assert_eq!(sds.asked.load(Ordering::SeqCst), 3);
        // Kept: SDS is not asked again, even once it has changed its answer.
        set(&sds, Some(Ok(endpoint("https://b.example/GPC001"))));
        assert_eq!(cache.endpoint(&gpc001(), ORDER).await.unwrap(), found);
        assert_eq!(sds.asked.load(Ordering::SeqCst), 3);
        // Another interaction is another question.
        cache.endpoint(&gpc001(), "other").await.unwrap();
        assert_eq!(sds.asked.load(Ordering::SeqCst), 4);
        // The ASID likewise.
        let asid = cache.asid(&gpc001(), ORDER).await.unwrap();
        assert_eq!(cache.asid(&gpc001(), ORDER).await.unwrap(), asid);
        assert_eq!(sds.asked.load(Ordering::SeqCst), 5);
    }

    #[tokio::test]
    async fn an_answer_past_its_time_is_asked_again() {
        let sds = Arc::new(Counting::default());
        set(&sds, Some(Ok(endpoint("https://a.example/GPC001"))));
        let cache = CachingDirectory::new(sds.clone(), Duration::ZERO);
        cache.endpoint(&gpc001(), ORDER).await.unwrap();
        set(&sds, Some(Ok(endpoint("https://b.example/GPC001"))));
        let moved = cache.endpoint(&gpc001(), ORDER).await.unwrap();
        assert_eq!(moved, Some(endpoint("https://b.example/GPC001")));
        assert_eq!(sds.asked.load(Ordering::SeqCst), 2);
    }
}
