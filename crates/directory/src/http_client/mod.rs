//! The directory over HTTP: services shaped like the national FHIR R4 APIs
//! (PDS, SDS, ODS), whether ours (`gpc-tasks serve`) or the real ones.

mod read_r4;

use crate::r4;
use crate::{Directory, DirectoryError, DirectoryOrganisation, SdsEndpoint, TracedPatient};
use gpc_domain::{Asid, NhsNumber, OdsCode};
use reqwest::{RequestBuilder, StatusCode};
use serde_json::Value;
use std::error::Error as _;
use std::time::Duration;

/// The base URL of each API, without a trailing slash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryUrls {
    pub pds: String,
    pub sds: String,
    pub ods: String,
}

impl DirectoryUrls {
    /// The three APIs as one `gpc-tasks` server mounts them under `root`
    /// (e.g. `http://127.0.0.1:8080`).
    pub fn on_server(root: &str) -> Self {
        let root = root.trim_end_matches('/');
        Self {
            pds: format!("{root}{}", r4::PDS_MOUNT),
            sds: format!("{root}{}", r4::SDS_MOUNT),
            ods: format!("{root}{}", r4::ODS_MOUNT),
        }
    }
}

/// Long enough for a slow national service, short enough that a person
/// waiting to send a task is told something useful.
const TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A [`Directory`] that asks the three APIs over HTTP(S). Clones share one
/// connection pool.
#[derive(Debug, Clone)]
pub struct HttpDirectory {
    client: reqwest::Client,
    urls: DirectoryUrls,
}

impl HttpDirectory {
    /// With its own pooled client and default timeouts.
    pub fn new(urls: DirectoryUrls) -> Result<Self, DirectoryError> {
        let client = Self::client_builder()
            .build()
            .map_err(|e| DirectoryError::Protocol(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self::with_client(urls, client))
    }

    /// A client builder with the default timeouts, for a caller that adds
    /// its own TLS (`with_client`).
    pub fn client_builder() -> reqwest::ClientBuilder {
        reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
    }

    /// With a client the caller configured: shared pool, timeouts, TLS
    /// identity, or default headers such as the national APIs' credentials.
    pub fn with_client(urls: DirectoryUrls, client: reqwest::Client) -> Self {
        let trim = |s: String| s.trim_end_matches('/').to_owned();
        let urls = DirectoryUrls {
            pds: trim(urls.pds),
            sds: trim(urls.sds),
            ods: trim(urls.ods),
        };
        Self { client, urls }
    }

    pub fn urls(&self) -> &DirectoryUrls {
        &self.urls
    }

    fn get(&self, url: String) -> RequestBuilder {
        self.client
            .get(url)
            .header(reqwest::header::ACCEPT, r4::FHIR_JSON)
    }

    fn sds_search(&self, resource: &str, ods: &OdsCode, interaction: &str) -> RequestBuilder {
        self.get(format!("{}/{resource}", self.urls.sds)).query(&[
            (
                "organization",
                format!("{}|{ods}", r4::ODS_ORGANIZATION_CODE),
            ),
            (
                "identifier",
                format!("{}|{interaction}", r4::SERVICE_INTERACTION_ID),
            ),
        ])
    }

    async fn device_asid(
        &self,
        ods: &OdsCode,
        interaction: &str,
    ) -> Result<Option<Asid>, DirectoryError> {
        let bundle = fetch(self.sds_search("Device", ods, interaction), "SDS Device").await?;
        read_r4::device_asid(&bundle).map_err(protocol("SDS Device"))
    }
}

#[async_trait::async_trait]
impl Directory for HttpDirectory {
    async fn trace_patient(&self, nhs: &NhsNumber) -> Result<TracedPatient, DirectoryError> {
        let request = self
            .get(format!("{}/Patient/{nhs}", self.urls.pds))
            .header(r4::REQUEST_ID, uuid::Uuid::new_v4().to_string());
        let patient = fetch(request, "PDS").await?;
        read_r4::patient(&patient).map_err(protocol("PDS Patient"))
    }

    /// The address comes from SDS `Endpoint`, the ASID from SDS `Device`, as
    /// the national SDS splits them; both are asked at once.
    async fn endpoint(
        &self,
        ods: &OdsCode,
        interaction: &str,
    ) -> Result<Option<SdsEndpoint>, DirectoryError> {
        let endpoints = fetch(
            self.sds_search("Endpoint", ods, interaction),
            "SDS Endpoint",
        );
        let (endpoints, asid) = tokio::join!(endpoints, self.device_asid(ods, interaction));
        let Some(address) =
            read_r4::endpoint_address(&endpoints?).map_err(protocol("SDS Endpoint"))?
        else {
            return Ok(None);
        };
        let asid = asid?.ok_or_else(|| {
            DirectoryError::Protocol(format!(
                "SDS lists an endpoint for {ods} but no accredited system (ASID) for it"
            ))
        })?;
        Ok(Some(SdsEndpoint {
            ods: ods.clone(),
            address,
            asid,
        }))
    }

    async fn asid(&self, ods: &OdsCode, interaction: &str) -> Result<Option<Asid>, DirectoryError> {
        self.device_asid(ods, interaction).await
    }

    async fn organisation(
        &self,
        ods: &OdsCode,
    ) -> Result<Option<DirectoryOrganisation>, DirectoryError> {
        let request = self.get(format!("{}/Organization/{ods}", self.urls.ods));
        match fetch(request, "ODS").await {
            Ok(org) => read_r4::organisation(&org)
                .map(Some)
                .map_err(protocol("ODS Organization")),
            Err(DirectoryError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn search_organisations(
        &self,
        text: &str,
    ) -> Result<Vec<DirectoryOrganisation>, DirectoryError> {
        // Blank text would be refused by the service; it matches nothing.
        if text.trim().is_empty() {
            return Ok(Vec::new());
        }
        let request = self
            .get(format!("{}/Organization", self.urls.ods))
            .query(&[("name", text.trim())]);
        let bundle = fetch(request, "ODS").await?;
        read_r4::organisations(&bundle).map_err(protocol("ODS Organization search"))
    }
}

fn protocol(what: &'static str) -> impl FnOnce(String) -> DirectoryError {
    move |why| DirectoryError::Protocol(format!("{what}: {why}"))
}

/// Sends and classifies the answer: 2xx JSON is the value; everything else
/// becomes the error a caller can act on (retry only `Unavailable`).
async fn fetch(request: RequestBuilder, service: &str) -> Result<Value, DirectoryError> {
    let response = request.send().await.map_err(|e| transport(service, e))?;
    let status = response.status();
    let bytes = response.bytes().await.map_err(|e| transport(service, e))?;
    if status.is_success() {
        return serde_json::from_slice(&bytes).map_err(|e| {
            DirectoryError::Protocol(format!("{service} answered {status} without JSON: {e}"))
        });
    }
    let why = format!("{service} answered {status}{}", diagnostics(&bytes));
    Err(match status {
        StatusCode::NOT_FOUND => DirectoryError::NotFound(why),
        StatusCode::BAD_REQUEST => DirectoryError::Invalid(why),
        StatusCode::REQUEST_TIMEOUT | StatusCode::TOO_MANY_REQUESTS => {
            DirectoryError::Unavailable(why)
        }
        s if s.is_server_error() => DirectoryError::Unavailable(why),
        _ => DirectoryError::Protocol(why),
    })
}

/// The error code and diagnostics of an OperationOutcome, when there is one.
fn diagnostics(body: &[u8]) -> String {
    let Ok(outcome) = serde_json::from_slice::<Value>(body) else {
        return String::new();
    };
    let issue = &outcome["issue"][0];
    let code = issue["details"]["coding"][0]["code"].as_str();
    let text = issue["diagnostics"].as_str();
    match (code, text) {
        (Some(c), Some(t)) => format!(": {c}: {t}"),
        (Some(s), None) | (None, Some(s)) => format!(": {s}"),
        (None, None) => String::new(),
    }
}

/// The URL is left out: a PDS URL holds an NHS number, and these messages
/// reach logs and screens.
fn transport(service: &str, error: reqwest::Error) -> DirectoryError {
    let error = error.without_url();
    let mut why = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        why.push_str(": ");
        why.push_str(&cause.to_string());
        source = cause.source();
    }
    let why = format!("{service}: {why}");
    if error.is_builder() {
        DirectoryError::Protocol(why)
    } else {
        DirectoryError::Unavailable(why)
    }
}
