//! Test support shared by the integration tests: a real server on a free port with its own data directory,
//! and builders for the headers, JWTs and Orders a consumer sends.

// Test support panics on purpose: a helper failing is the test failing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod delay_proxy;
mod wait;

pub use delay_proxy::DelayProxy;
pub use wait::{PATIENCE, wait_for};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gpc_server::{Running, ServerConfig};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::sync::oneshot;

pub const CREATE: &str = "urn:nhs:names:services:gpconnect:fhir:rest:create:order";
pub const METADATA: &str = "urn:nhs:names:services:gpconnect:fhir:rest:read:metadata";
pub const READ_PATIENT: &str = "urn:nhs:names:services:gpconnect:fhir:rest:read:patient";
pub const SEARCH_PATIENT: &str = "urn:nhs:names:services:gpconnect:fhir:rest:search:patient";
pub const READ_ORG: &str = "urn:nhs:names:services:gpconnect:fhir:rest:read:organization";
pub const SEARCH_ORG: &str = "urn:nhs:names:services:gpconnect:fhir:rest:search:organization";
pub const READ_PRACTITIONER: &str = "urn:nhs:names:services:gpconnect:fhir:rest:read:practitioner";
pub const SEARCH_PRACTITIONER: &str =
    "urn:nhs:names:services:gpconnect:fhir:rest:search:practitioner";

pub const NHS_SYSTEM: &str = "http://fhir.nhs.net/Id/nhs-number";
pub const ODS_SYSTEM: &str = "http://fhir.nhs.net/Id/ods-organization-code";
pub const JSON: &str = "application/json+fhir";
pub const XML: &str = "application/xml+fhir";

/// ASIDs of the demo region.
pub const GPC001_ASID: &str = "200000000359";
pub const R1A14_ASID: &str = "200000000361";
pub const Y00001_ASID: &str = "200000000370";
pub const R1A17_ASID: &str = "200000000363";

pub struct TestServer {
    pub base: String,
    pub dir: TempDir,
    /// What the running server's handlers share (to replace its reference data, say).
    pub state: gpc_server::state::AppState,
    pub client: reqwest::Client,
    /// Where `/metrics`, `/livez` and `/readyz` answer, when the config asked for them.
    pub metrics_addr: Option<std::net::SocketAddr>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), String>>>,
}

impl TestServer {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        Self::start_in(dir).await
    }

    /// Starts on an existing data directory (for restart tests).
    pub async fn start_in(dir: TempDir) -> Self {
        Self::start_with(dir, ServerConfig::default()).await
    }

    /// Starts with `config` (listen address, TLS, SSP settings, ...) on
    /// `dir`, whatever `config` says about the data directory. The default
    /// config listens on a free loopback port. A new store gets the demo
    /// region, as `gpc-tasks serve` gives it, unless `config` seeds another.
    pub async fn start_with(dir: TempDir, config: ServerConfig) -> Self {
        Self::start_adjusted(dir, config, |_| {}).await
    }

    /// [`TestServer::start_with`], with `adjust` applied to the bound
    /// server's state before it serves: a test puts a store that fails in
    /// its chosen way in front of the real one, say.
    pub async fn start_adjusted(
        dir: TempDir,
        config: ServerConfig,
        adjust: impl FnOnce(&mut gpc_server::state::AppState),
    ) -> Self {
        let seed = config
            .seed
            .clone()
            .or_else(|| Some(gpc_directory::demo_region()));
        let running: Running = gpc_server::bind(ServerConfig {
            data_dir: dir.path().to_path_buf(),
            seed,
            ..config
        })
        .await
        .expect("server starts");
        let mut running = running;
        adjust(&mut running.state);
        let base = running.public_url.clone();
        let state = running.state.clone();
        let metrics_addr = running.metrics_addr;
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(running.serve(async {
            let _ = stopped.await;
        }));
        let client = reqwest::Client::builder()
            .no_gzip()
            .build()
            .expect("client");
        Self {
            base,
            dir,
            state,
            client,
            metrics_addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Graceful stop; returns the data directory for a restart.
    pub async fn stop(mut self) -> TempDir {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("join").expect("clean shutdown");
        }
        let dir = tempfile::tempdir().unwrap();
        std::mem::replace(&mut self.dir, dir)
    }

    pub fn root(&self, ods: &str) -> String {
        format!("{}/{ods}/DSTU2/1", self.base)
    }

    /// A request with valid headers and a valid JWT for `interaction` to GPC001.
    pub fn get(&self, path: &str, interaction: &str) -> reqwest::RequestBuilder {
        let (scope, record) = scope_for(interaction);
        self.client
            .get(format!("{}{path}", self.root("GPC001")))
            .headers(headers(
                interaction,
                GPC001_ASID,
                &Jwt::new(scope, record).encode(),
            ))
    }

    /// POST /Order to `ods` with valid headers, from Y00001 (Mrs PARSONS).
    pub fn post_order(&self, ods: &str, to_asid: &str, body: &Value) -> reqwest::RequestBuilder {
        self.post_order_as(ods, to_asid, body.to_string(), JSON)
    }

    /// POST /Order with a raw body and Content-Type (reqwest appends headers,
    /// so the content type cannot be replaced after the fact).
    pub fn post_order_as(
        &self,
        ods: &str,
        to_asid: &str,
        body: String,
        content_type: &str,
    ) -> reqwest::RequestBuilder {
        let jwt = Jwt::new("organization/*.write", org_record(ods)).encode();
        self.client
            .post(format!("{}/Order", self.root(ods)))
            .headers(headers(CREATE, to_asid, &jwt))
            .header("content-type", content_type)
            .body(body)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The default scope and record for an interaction, against GPC001.
pub fn scope_for(interaction: &str) -> (&'static str, Value) {
    match interaction {
        READ_PATIENT | SEARCH_PATIENT => ("patient/*.read", patient_record("9476719931")),
        CREATE => ("organization/*.write", org_record("GPC001")),
        _ => ("organization/*.read", org_record("GPC001")),
    }
}

pub fn headers(interaction: &str, to: &str, jwt: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    let mut put = |k: &str, v: &str| {
        h.insert(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    };
    put("Ssp-TraceID", &uuid::Uuid::new_v4().to_string());
    put("Ssp-From", Y00001_ASID);
    put("Ssp-To", to);
    put("Ssp-InteractionID", interaction);
    put("Authorization", &format!("Bearer {jwt}"));
    h
}

pub fn org_record(ods: &str) -> Value {
    json!({"resourceType": "Organization", "identifier": [{"system": ODS_SYSTEM, "value": ods}]})
}

pub fn patient_record(nhs: &str) -> Value {
    json!({"resourceType": "Patient", "identifier": [{"system": NHS_SYSTEM, "value": nhs}]})
}

/// JWT claims, valid until a test changes them.
pub struct Jwt {
    pub claims: Value,
}

impl Jwt {
    pub fn new(scope: &str, record: Value) -> Self {
        let now = jiff::Timestamp::now().as_second();
        Self {
            claims: json!({
                "iss": "http://gpconsumer.example/",
                "sub": "1",
                "aud": "https://authorize.fhir.nhs.net/token",
                "exp": now + 300,
                "iat": now,
                "reason_for_request": "directcare",
                "requested_record": record,
                "requested_scope": scope,
                "requesting_device": {
                    "resourceType": "Device",
                    "id": "1",
                    "identifier": [{"system": "GPConnectTestSystem", "value": "Client"}],
                    "model": "gpc-tasks-tests",
                    "version": "1.0"
                },
                "requesting_organization": {
                    "resourceType": "Organization",
                    "identifier": [{"system": ODS_SYSTEM, "value": "Y00001"}],
                    "name": "North Lincolnshire Extended Access Hub"
                },
                "requesting_practitioner": {
                    "resourceType": "Practitioner",
                    "id": "1",
                    "identifier": [
                        {"system": "http://fhir.nhs.net/sds-user-id", "value": "G11111116"},
                        {"system": "localSystem", "value": "1"}
                    ],
                    "name": {"family": ["PARSONS"], "given": ["Melissa"], "prefix": ["Mrs"]},
                    "practitionerRole": [{"role": {"coding": [{
                        "system": "http://fhir.nhs.net/ValueSet/sds-job-role-name-1",
                        "code": "R0260",
                        "display": "General Medical Practitioner"
                    }]}}]
                }
            }),
        }
    }

    pub fn encode(&self) -> String {
        encode_jwt(&self.claims)
    }
}

pub fn encode_jwt(claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{payload}.")
}

/// Today's date in Europe/London, as the provider checks it.
pub fn today() -> String {
    jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::get("Europe/London").unwrap())
        .date()
        .to_string()
}

/// The spec §4.1 Order: `patient` on the receiving system, from `source` to `target`.
pub fn order(patient: &str, source: &str, target: &str, type_code: &str, text: &str) -> Value {
    json!({
        "resourceType": "Order",
        "meta": {"profile": ["http://fhir.nhs.net/StructureDefinition/gpconnect-task-order-1"]},
        "identifier": [{"system": "urn:ietf:rfc:3986", "value": format!("urn:uuid:{}", uuid::Uuid::new_v4())}],
        "contained": [{
            "resourceType": "Basic",
            "id": "ad6a2e86-37a8-43c9-b0ae-f2adcff4de3a",
            "meta": {"profile": ["http://fhir.nhs.net/StructureDefinition/gpconnect-task-description-basic-1"]},
            "text": {"status": "generated",
                     "div": format!("<div xmlns=\"http://www.w3.org/1999/xhtml\">{text}</div>")},
            "code": {"coding": [{"system": "http://fhir.nhs.net/ValueSet/gpconnect-task-narrative-1", "code": "Task Narrative"}]}
        }],
        "date": today(),
        "subject": {"reference": format!("Patient/{patient}")},
        "source": {"reference": format!("Organization/{source}")},
        "target": {"reference": format!("Organization/{target}")},
        "reasonCodeableConcept": {
            "coding": [{"system": "http://fhir.nhs.net/ValueSet/gpconnect-task-type-1", "code": type_code}]
        },
        "detail": [{"reference": "#ad6a2e86-37a8-43c9-b0ae-f2adcff4de3a"}]
    })
}

/// DAWES (Patient/2) from Y00001 (Organization/5) to GPC001 (Organization/1).
pub fn dawes_order() -> Value {
    order(
        "2",
        "5",
        "1",
        "2",
        "Please review the patient's medications.",
    )
}

/// The GP Connect error code of an OperationOutcome body.
pub fn error_code(body: &Value) -> String {
    body["issue"][0]["details"]["coding"][0]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Sends and returns status, headers and the JSON body (Null when none).
pub async fn send(req: reqwest::RequestBuilder) -> (u16, HeaderMap, Value) {
    let resp = req.send().await.expect("request sent");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let bytes = resp.bytes().await.expect("body");
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
    };
    (status, headers, body)
}

/// Asserts an OperationOutcome with this status and code, and returns it.
pub async fn expect_error(req: reqwest::RequestBuilder, status: u16, code: &str) -> Value {
    let (got, headers, body) = send(req).await;
    assert_eq!(got, status, "status; body: {body}");
    assert_eq!(body["resourceType"], "OperationOutcome", "{body}");
    assert_eq!(error_code(&body), code, "code; body: {body}");
    let details = body["issue"][0]["details"]["coding"].as_array().unwrap();
    assert_eq!(details.len(), 1, "exactly one coding");
    assert!(
        body["issue"][0]["diagnostics"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "diagnostics present"
    );
    assert_eq!(headers["cache-control"], "no-store, no-cache");
    body
}
