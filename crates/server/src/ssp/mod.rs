//! The Spine Security Proxy: `{public-url}/ssp/{absolute target URL}`.
//!
//! Every request goes through the checks of spec §7 in order — headers,
//! sender, receiver, requesting organisation, target URL, flow of traffic,
//! verb — and only then to the provider registered for `Ssp-To`, whose
//! answer comes back unchanged. Every request, forwarded or refused, is
//! audited.

mod forward;
mod refusal;
pub mod target;

pub use forward::end_to_end;
pub use refusal::Refusal;

use crate::provider::ssp_headers::{self, FROM, INTERACTION_ID, TO, TRACE_ID};
use crate::short;
use crate::state::AppState;
use crate::tls::{self, ClientTls, PeerCertificate};
use arc_swap::ArcSwap;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{Method, header, request::Parts};
use axum::response::Response;
use axum::routing::any;
use gpc_domain::audit::SspAuditRecord;
use gpc_domain::reference::ReferenceData;
use gpc_domain::spine::{SpineRegistry, SpineSystem};
use gpc_domain::{Asid, jwt};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where every SSP path starts.
pub const PREFIX: &str = "/ssp/";

/// How the SSP reaches providers.
#[derive(Debug, Clone)]
pub struct SspConfig {
    /// The base under which providers are registered in the Spine registry
    /// (their SDS endpoints are `{base}/{ODS}/DSTU2/1`); the server's own
    /// public URL when `None`.
    pub provider_base: Option<String>,
    /// How long to wait for a provider's answer (504 after).
    pub timeout: Duration,
    /// Trust and client certificate for providers served over HTTPS.
    pub client_tls: Option<ClientTls>,
}

impl Default for SspConfig {
    fn default() -> Self {
        Self {
            provider_base: None,
            timeout: Duration::from_secs(10),
            client_tls: None,
        }
    }
}

/// The proxy's shared state: the registry and a pooled client.
pub struct Ssp {
    /// Swapped whole when the reference data is replaced; a request keeps
    /// the registry it started with.
    registry: ArcSwap<SpineRegistry>,
    provider_base: String,
    client: reqwest::Client,
    timeout: Duration,
}

impl Ssp {
    pub fn new(
        data: &ReferenceData,
        provider_base: &str,
        config: &SspConfig,
    ) -> Result<Self, String> {
        let mut builder = reqwest::Client::builder()
            // A provider's redirect is its answer to pass back, never a place to go.
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            // The answer goes back byte for byte, compressed or not.
            .no_gzip()
            .no_brotli()
            .no_deflate()
            .no_zstd()
            .http1_only()
            .connect_timeout(config.timeout)
            // Bounds each read of a streamed body, so that a provider that
            // stalls mid-answer cannot hold the connection for ever.
            .read_timeout(config.timeout)
            .pool_idle_timeout(Duration::from_secs(60));
        if let Some(client_tls) = &config.client_tls {
            builder = builder.use_preconfigured_tls(tls::client_config(client_tls)?);
        }
        let client = builder
            .build()
            .map_err(|e| format!("cannot build the SSP's HTTP client: {e}"))?;
        Ok(Self {
            registry: ArcSwap::from_pointee(SpineRegistry::new(data, provider_base)),
            provider_base: provider_base.to_owned(),
            client,
            timeout: config.timeout,
        })
    }

    /// The registry as it stands now.
    pub fn registry(&self) -> Arc<SpineRegistry> {
        self.registry.load_full()
    }

    /// Rebuilds the registry from new reference data.
    pub fn replace_reference(&self, data: &ReferenceData) {
        self.registry
            .store(Arc::new(SpineRegistry::new(data, &self.provider_base)));
    }
}

/// The SSP's routes. Merged after the compression layer: the provider's
/// answer must not be re-encoded on its way back.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/ssp/{*target}", any(handle))
        .with_state(state)
}

pub async fn handle(State(state): State<AppState>, request: Request) -> Response {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let raw_target = parts.uri.path().strip_prefix(PREFIX).unwrap_or("");
    let sent = |name| ssp_headers::header(&parts.headers, name).map(|v| short(v, 100));
    let mut audit = SspAuditRecord {
        time: jiff::Timestamp::now(),
        trace_id: sent(TRACE_ID),
        from_asid: sent(FROM),
        to_asid: sent(TO),
        interaction: sent(INTERACTION_ID),
        method: short(parts.method.as_str(), 16),
        target: short(raw_target, 512),
        ..SspAuditRecord::default()
    };
    let response = match proxy(&state, &parts, body, raw_target).await {
        Ok(response) => {
            metrics::counter!(
                "gpc_ssp_forwards_total",
                "status" => status_label(response.status())
            )
            .increment(1);
            response
        }
        Err(refusal) => {
            metrics::counter!("gpc_ssp_refusals_total", "code" => refusal.code()).increment(1);
            audit.refusal = Some(refusal.code().to_owned());
            refusal.render()
        }
    };
    audit.status = response.status().as_u16();
    audit.duration_us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    tracing::debug!(
        trace_id = audit.trace_id.as_deref().unwrap_or("-"),
        from = audit.from_asid.as_deref().unwrap_or("-"),
        to = audit.to_asid.as_deref().unwrap_or("-"),
        method = %audit.method,
        status = audit.status,
        refusal = audit.refusal.as_deref().unwrap_or("-"),
        duration_us = audit.duration_us,
        "ssp request"
    );
    state.store.record_ssp_audit(audit);
    response
}

/// A provider's status as a label: its three digits (any status a provider
/// can send is one of at most 900 values).
fn status_label(status: axum::http::StatusCode) -> String {
    status.as_u16().to_string()
}

/// The checks of spec §7, in order, then the forwarding.
async fn proxy(
    state: &AppState,
    parts: &Parts,
    body: axum::body::Body,
    raw_target: &str,
) -> Result<Response, Refusal> {
    let ssp = &state.ssp;
    let registry = ssp.registry();
    let headers = SpineHeaders::read(parts)?;
    let from = sender(&registry, &headers.from, parts)?;
    let to = registry.system(&headers.to).ok_or_else(|| {
        Refusal::ReceiverAsid(format!("Ssp-To {} is not a registered ASID", headers.to))
    })?;
    requesting_organisation(&state.claim_cache, parts, from)?;
    let endpoint = to.endpoint.as_deref().ok_or_else(|| {
        Refusal::EndpointVaries(format!("Ssp-To {} has no registered endpoint", headers.to))
    })?;
    let mut url = target::check(raw_target, endpoint).map_err(Refusal::EndpointVaries)?;
    registry
        .check_flow(from, to, &headers.interaction)
        .map_err(|refusal| Refusal::FlowOfTraffic(refusal.to_string()))?;
    if ![Method::GET, Method::POST, Method::PUT, Method::DELETE].contains(&parts.method) {
        return Err(Refusal::MethodNotAllowed(format!(
            "the SSP forwards {}, not {}",
            refusal::ALLOWED_METHODS,
            short(parts.method.as_str(), 16)
        )));
    }
    url.set_query(parts.uri.query());
    forward::forward(&ssp.client, ssp.timeout, parts, body, url).await
}

/// The four `Ssp-*` headers, well formed.
struct SpineHeaders {
    from: Asid,
    to: Asid,
    interaction: String,
}

impl SpineHeaders {
    fn read(parts: &Parts) -> Result<Self, Refusal> {
        let required = |name: &str, label: &str| {
            ssp_headers::header(&parts.headers, name).ok_or_else(|| {
                Refusal::MissingOrInvalidHeader(format!("the {label} header is missing or empty"))
            })
        };
        let trace_id = required(TRACE_ID, "Ssp-TraceID")?;
        let from = required(FROM, "Ssp-From")?;
        let to = required(TO, "Ssp-To")?;
        let interaction = required(INTERACTION_ID, "Ssp-InteractionID")?;
        if uuid::Uuid::try_parse(trace_id).is_err() {
            return Err(Refusal::MissingOrInvalidHeader(
                "Ssp-TraceID must be a UUID".into(),
            ));
        }
        let from = Asid::parse(from).ok_or_else(|| {
            Refusal::MissingOrInvalidHeader("Ssp-From must be an ASID (digits)".into())
        })?;
        let to = Asid::parse(to).ok_or_else(|| {
            Refusal::MissingOrInvalidHeader("Ssp-To must be an ASID (digits)".into())
        })?;
        if !interaction.starts_with("urn:") || interaction.len() > 200 {
            return Err(Refusal::MissingOrInvalidHeader(
                "Ssp-InteractionID must be an interaction URN".into(),
            ));
        }
        Ok(Self {
            from,
            to,
            interaction: interaction.to_owned(),
        })
    }
}

/// `Ssp-From` must be registered and, under mutual TLS, be the ASID the
/// client certificate carries as its common name.
fn sender<'r>(
    registry: &'r SpineRegistry,
    from: &Asid,
    parts: &Parts,
) -> Result<&'r SpineSystem, Refusal> {
    let system = registry
        .system(from)
        .ok_or_else(|| Refusal::SenderAsid(format!("Ssp-From {from} is not a registered ASID")))?;
    if let Some(peer) = parts.extensions.get::<PeerCertificate>()
        && peer.common_name.as_deref() != Some(from.as_str())
    {
        return Err(Refusal::SenderAsid(format!(
            "Ssp-From {from} is not the ASID of the client certificate"
        )));
    }
    Ok(system)
}

/// The JWT's requesting organisation must own the sending system.
fn requesting_organisation(
    claim_cache: &jwt::ClaimCache,
    parts: &Parts,
    from: &SpineSystem,
) -> Result<(), Refusal> {
    let authorization = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let now = jiff::Timestamp::now().as_second();
    let claims = jwt::decode(claim_cache, authorization, now).map_err(|e| {
        Refusal::Organisation(format!(
            "the JWT's requesting_organization cannot be checked: {e}"
        ))
    })?;
    if claims.organisation_ods != from.ods.as_str() {
        return Err(Refusal::Organisation(format!(
            "the JWT's requesting_organization is not {}, the organisation of Ssp-From",
            from.ods
        )));
    }
    Ok(())
}
