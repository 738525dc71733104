//! Calls to a provider through the Spine Security Proxy, and what their
//! answers mean: carry on, rejected (4xx: do not retry) or failed (5xx,
//! timeout, no connection: worth retrying).

use crate::jwt_builder::{Record, Requester, token};
use crate::sender_tls::{ClientsByOrganisation, SenderTls, tls_refusal};
use gpc_domain::Interaction;
use gpc_domain::jwt::Scope;
use gpc_domain::systems::{NHS_NUMBER, ODS_ORGANIZATION_CODE};
use reqwest::Method;
use serde_json::Value;
use std::sync::Arc;

/// Where one task goes: the recipient's endpoint and both ASIDs, and the
/// organisation it is sent for (whose certificate the request presents).
#[derive(Debug, Clone)]
pub struct Route {
    pub endpoint: String,
    pub from_ods: String,
    pub from_asid: String,
    pub to_asid: String,
    pub to_name: String,
}

impl Route {
    /// The route of a sent task: to its recipient's endpoint, between the
    /// two ASIDs it was routed with (empty where it has none).
    pub fn of(task: &gpc_domain::sent::SentTask) -> Self {
        let asid =
            |a: &Option<gpc_domain::Asid>| a.as_ref().map(|a| a.to_string()).unwrap_or_default();
        Self {
            endpoint: task.endpoint.clone(),
            from_ods: task.from_ods.to_string(),
            from_asid: asid(&task.from_asid),
            to_asid: asid(&task.to_asid),
            to_name: task.to_name.clone(),
        }
    }
}

/// Why a call did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// The request was refused: sending it again will not help. `status`
    /// is that of the refusal; `None` where the answer was a success that
    /// lacked what the task needs (the recipient holds no such patient).
    Rejected { status: Option<u16>, reason: String },
    /// The recipient could not be reached or did not answer: worth retrying.
    Failed { status: Option<u16>, reason: String },
}

/// A task the provider holds: its id there and when it was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub status: u16,
    pub provider_task_id: String,
    pub last_updated: Option<jiff::Timestamp>,
}

/// A request's resource, and whether only the answer's status is wanted.
struct Body {
    json: String,
    status_only: bool,
}

#[derive(Clone)]
pub struct SpineClient {
    http: Http,
    ssp_base: String,
    timeout: std::time::Duration,
}

/// One client for every request, or one per sending organisation.
#[derive(Clone)]
enum Http {
    Shared(reqwest::Client),
    ByOrganisation(ClientsByOrganisation),
}

fn builder(timeout: std::time::Duration) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
}

fn built(builder: reqwest::ClientBuilder) -> Result<reqwest::Client, String> {
    builder
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

impl SpineClient {
    /// Without `tls`, requests trust no CA of their own and present no certificate.
    pub fn new(
        ssp_base: &str,
        timeout: std::time::Duration,
        tls: Option<Arc<dyn SenderTls>>,
    ) -> Result<Self, String> {
        let http = match tls {
            None => Http::Shared(built(builder(timeout))?),
            Some(tls) => Http::ByOrganisation(ClientsByOrganisation::new(tls)),
        };
        Ok(Self {
            http,
            ssp_base: ssp_base.trim_end_matches('/').to_owned(),
            timeout,
        })
    }

    /// The client for requests sent for `route.from_ods`.
    fn http(&self, route: &Route) -> Result<reqwest::Client, CallError> {
        match &self.http {
            Http::Shared(client) => Ok(client.clone()),
            Http::ByOrganisation(clients) => clients
                .get(&route.from_ods, |tls| {
                    built(builder(self.timeout).use_preconfigured_tls(tls))
                })
                .map_err(|reason| CallError::Failed {
                    status: None,
                    reason: format!("{reason}."),
                }),
        }
    }

    async fn call(
        &self,
        route: &Route,
        method: Method,
        path: &str,
        interaction: Interaction,
        jwt: String,
        body: Option<String>,
    ) -> Result<(u16, Value), CallError> {
        let body = body.map(|json| Body {
            json,
            status_only: false,
        });
        let (status, body) = self
            .exchange(route, method, path, interaction, jwt, body)
            .await?;
        match status {
            200..=299 => Ok((status, body)),
            400..=499 => Err(CallError::Rejected {
                status: Some(status),
                reason: plain_words(status, &body, &route.to_name),
            }),
            _ => Err(CallError::Failed {
                status: Some(status),
                reason: plain_words(status, &body, &route.to_name),
            }),
        }
    }

    /// One request and whatever status it is answered with; `Err` only when
    /// no answer came (the transport failed or timed out).
    async fn exchange(
        &self,
        route: &Route,
        method: Method,
        path: &str,
        interaction: Interaction,
        jwt: String,
        body: Option<Body>,
    ) -> Result<(u16, Value), CallError> {
        let url = format!("{}/{}{path}", self.ssp_base, route.endpoint);
        let mut request = self
            .http(route)?
            .request(method, url)
            .header("Ssp-TraceID", uuid::Uuid::new_v4().to_string())
            .header("Ssp-From", &route.from_asid)
            .header("Ssp-To", &route.to_asid)
            .header("Ssp-InteractionID", interaction.id())
            .header("Authorization", format!("Bearer {jwt}"))
            .header("Accept", "application/json+fhir");
        if let Some(body) = body {
            if body.status_only {
                request = request.header("Prefer", "return=minimal");
            }
            request = request
                .header("Content-Type", "application/json+fhir;charset=utf-8")
                .body(body.json);
        }
        let response = request
            .send()
            .await
            .map_err(|e| self.transport(route, &e))?;
        let status = response.status().as_u16();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| self.transport(route, &e))?;
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok((status, body))
    }

    fn transport(&self, route: &Route, e: &reqwest::Error) -> CallError {
        let reason = if e.is_timeout() {
            format!(
                "No answer from {} within {} seconds.",
                route.to_name,
                self.timeout.as_secs()
            )
        } else if let Some(refusal) = tls_refusal(e) {
            format!(
                "The Spine Security Proxy could not be used: {refusal}. Check the certificate sent for {} and the CA trusted.",
                route.from_ods
            )
        } else if e.is_connect() {
            "Could not connect to the Spine Security Proxy.".to_owned()
        } else {
            format!("The connection to {} failed.", route.to_name)
        };
        CallError::Failed {
            status: None,
            reason,
        }
    }

    /// The patient's id on the recipient's system.
    pub async fn find_patient(
        &self,
        route: &Route,
        who: &Requester,
        nhs: &str,
    ) -> Result<String, CallError> {
        let jwt = token(who, Scope::PatientRead, Record::Patient(nhs), now());
        let path = format!("/Patient?identifier={NHS_NUMBER}%7C{nhs}");
        let (_, bundle) = self
            .call(
                route,
                Method::GET,
                &path,
                Interaction::SearchPatient,
                jwt,
                None,
            )
            .await?;
        first_entry_id(&bundle).ok_or_else(|| CallError::Rejected {
            status: None,
            reason: format!(
                "{} holds no record of this patient, so it cannot accept a task about them.",
                route.to_name
            ),
        })
    }

    /// An organisation's id on the recipient's system.
    pub async fn find_organisation(
        &self,
        route: &Route,
        who: &Requester,
        ods: &str,
        provider_ods: &str,
    ) -> Result<String, CallError> {
        let jwt = token(
            who,
            Scope::OrganizationRead,
            Record::Organization(provider_ods),
            now(),
        );
        let path = format!("/Organization?identifier={ODS_ORGANIZATION_CODE}%7C{ods}");
        let (_, bundle) = self
            .call(
                route,
                Method::GET,
                &path,
                Interaction::SearchOrganization,
                jwt,
                None,
            )
            .await?;
        first_entry_id(&bundle).ok_or_else(|| CallError::Rejected {
            status: None,
            reason: format!("{} does not know the organisation {ods}.", route.to_name),
        })
    }

    /// Sends the Order; a repeat of an identifier already accepted returns the stored task.
    pub async fn create_task(
        &self,
        route: &Route,
        who: &Requester,
        order: &Value,
        provider_ods: &str,
    ) -> Result<Accepted, CallError> {
        let jwt = token(
            who,
            Scope::OrganizationWrite,
            Record::Organization(provider_ods),
            now(),
        );
        let (status, body) = self
            .call(
                route,
                Method::POST,
                "/Order",
                Interaction::CreateTask,
                jwt,
                Some(order.to_string()),
            )
            .await?;
        let provider_task_id =
            body["id"]
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| CallError::Failed {
                    status: Some(status),
                    reason: format!(
                        "{} accepted the task but did not say its id.",
                        route.to_name
                    ),
                })?;
        Ok(Accepted {
            status,
            provider_task_id,
            last_updated: body["meta"]["lastUpdated"]
                .as_str()
                .and_then(|t| t.parse().ok()),
        })
    }

    /// Posts a task update (task-lifecycle.md §2) to the other side's root,
    /// `provider_ods` being that side's organisation (the JWT's record).
    /// Every answer is returned as it came, the caller tells 201 from 409;
    /// `Err` only when none came. `status_only` asks for no body on success
    /// (`Prefer: return=minimal`), for a caller that needs only the status.
    pub async fn post_order_response(
        &self,
        route: &Route,
        who: &Requester,
        body: &Value,
        provider_ods: &str,
        status_only: bool,
    ) -> Result<(u16, Value), CallError> {
        let jwt = token(
            who,
            Scope::OrganizationWrite,
            Record::Organization(provider_ods),
            now(),
        );
        self.exchange(
            route,
            Method::POST,
            "/OrderResponse",
            Interaction::CreateOrderResponse,
            jwt,
            Some(Body {
                json: body.to_string(),
                status_only,
            }),
        )
        .await
    }
}

/// The first issue's diagnostics of an OperationOutcome, if it has any.
pub fn diagnostics(body: &Value) -> Option<&str> {
    body["issue"][0]["diagnostics"]
        .as_str()
        .map(str::trim)
        .filter(|d| !d.is_empty())
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

fn first_entry_id(bundle: &Value) -> Option<String> {
    bundle["entry"][0]["resource"]["id"]
        .as_str()
        .map(str::to_owned)
}

/// What an error answer means, in words a clinician can act on.
pub fn plain_words(status: u16, body: &Value, to_name: &str) -> String {
    let issue = &body["issue"][0];
    let code = issue["details"]["coding"][0]["code"].as_str().unwrap_or("");
    let diagnostics = issue["diagnostics"].as_str().unwrap_or("").trim();
    let said = |text: String| {
        if diagnostics.is_empty() {
            text
        } else {
            format!("{text} ({diagnostics})")
        }
    };
    let ssp_code = diagnostics.split([':', ' ']).next().unwrap_or("");
    let closed = gpc_domain::spine::FotRefusal::ReceiverClosed.to_string();
    match (status, code, ssp_code) {
        (_, _, "FOT_CHECK_FAILED") if diagnostics.contains(&closed) => {
            said(format!("{to_name} is closed, so it cannot receive tasks."))
        }
        (_, _, "FOT_CHECK_FAILED") => said(format!(
            "No data-sharing agreement allows this task to be sent to {to_name}."
        )),
        (_, _, "ASID_CHECK_FAILED_MESSAGESENDER")
        | (_, _, "ASID_CHECK_FAILED_MESSAGERECEIVER")
        | (_, _, "ORGANISATION_CHECK_FAILED")
        | (_, _, "ENDPOINT_VARIES_FROM_TARGETURL")
        | (_, _, "MISSING_OR_INVALID_HEADER") => {
            said("The Spine Security Proxy refused the request.".to_owned())
        }
        (_, "INVALID_PATIENT_DEMOGRAPHICS", _) => said(format!(
            "{to_name} refused the task because the patient's demographics are not verified."
        )),
        (_, "NO_RELATIONSHIP", _) => said(format!(
            "{to_name} has no current care relationship with this patient."
        )),
        (_, "PATIENT_NOT_FOUND", _) => said(format!("{to_name} holds no record of this patient.")),
        (502, _, _) | (503, _, _) | (504, _, _) => said(format!("{to_name} could not be reached.")),
        (400..=499, _, _) => said(format!("{to_name} refused the task.")),
        _ => said(format!("{to_name} answered with an error (HTTP {status}).")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn outcome(code: &str, diagnostics: &str) -> Value {
        json!({"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "invalid",
            "details": {"coding": [{"code": code}]}, "diagnostics": diagnostics}]})
    }

    #[test]
    fn reasons_in_plain_words() {
        let fot = json!({"resourceType": "OperationOutcome", "issue": [{"severity": "error",
            "code": "forbidden", "diagnostics": "FOT_CHECK_FAILED: no agreement"}]});
        assert!(plain_words(403, &fot, "Out of Area").starts_with("No data-sharing agreement"));
        let demo = outcome("INVALID_PATIENT_DEMOGRAPHICS", "status 02");
        assert_eq!(
            plain_words(422, &demo, "The Hockey Surgery"),
            "The Hockey Surgery refused the task because the patient's demographics are not verified. (status 02)"
        );
        assert_eq!(
            plain_words(504, &Value::Null, "X"),
            "X could not be reached."
        );
    }
}
