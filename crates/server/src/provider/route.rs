//! Which operation a method and path under a provider root name (spec §3.2),
//! and the 404 / 405 / 400 answers when they name none.

use axum::http::Method;
use gpc_domain::ProviderError;
use gpc_domain::interaction::{Interaction, is_known_id};
use gpc_domain::reference::Organisation;

/// The operation a request names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    Metadata,
    ReadPatient(String),
    SearchPatient,
    ReadPractitioner(String),
    SearchPractitioner,
    ReadOrganization(String),
    SearchOrganization,
    CreateTask,
    /// A task update, from either side (task-lifecycle.md §2).
    CreateOrderResponse,
}

impl Operation {
    pub fn interaction(&self) -> Interaction {
        match self {
            Self::Metadata => Interaction::ReadMetadata,
            Self::ReadPatient(_) => Interaction::ReadPatient,
            Self::SearchPatient => Interaction::SearchPatient,
            Self::ReadPractitioner(_) => Interaction::ReadPractitioner,
            Self::SearchPractitioner => Interaction::SearchPractitioner,
            Self::ReadOrganization(_) => Interaction::ReadOrganization,
            Self::SearchOrganization => Interaction::SearchOrganization,
            Self::CreateTask => Interaction::CreateTask,
            Self::CreateOrderResponse => Interaction::CreateOrderResponse,
        }
    }
}

/// The resources this server has, by path shape.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Resource {
    Metadata,
    Type(&'static str),
    Instance(&'static str, String),
}

fn resource(path: &str) -> Option<Resource> {
    let mut segments = path.trim_start_matches('/').split('/');
    let first = segments.next()?;
    let second = segments.next();
    if segments.next().is_some() {
        return None;
    }
    let kind = match first {
        "metadata" if second.is_none() => return Some(Resource::Metadata),
        "Patient" => "Patient",
        "Practitioner" => "Practitioner",
        "Organization" => "Organization",
        "Order" => "Order",
        "OrderResponse" => "OrderResponse",
        _ => return None,
    };
    match second {
        None => Some(Resource::Type(kind)),
        // Orders and their updates are created here, never read back.
        Some(id) if !id.is_empty() && !matches!(kind, "Order" | "OrderResponse") => {
            Some(Resource::Instance(kind, percent_decode(id)))
        }
        _ => None,
    }
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// The operation for a verb on a resource, if the server supports it.
fn operation(method: &Method, resource: &Resource) -> Option<Operation> {
    Some(match (method, resource) {
        (&Method::GET, Resource::Metadata) => Operation::Metadata,
        (&Method::GET, Resource::Type("Patient")) => Operation::SearchPatient,
        (&Method::GET, Resource::Type("Practitioner")) => Operation::SearchPractitioner,
        (&Method::GET, Resource::Type("Organization")) => Operation::SearchOrganization,
        (&Method::POST, Resource::Type("Order")) => Operation::CreateTask,
        (&Method::POST, Resource::Type("OrderResponse")) => Operation::CreateOrderResponse,
        (&Method::GET, Resource::Instance("Patient", id)) => Operation::ReadPatient(id.clone()),
        (&Method::GET, Resource::Instance("Practitioner", id)) => {
            Operation::ReadPractitioner(id.clone())
        }
        (&Method::GET, Resource::Instance("Organization", id)) => {
            Operation::ReadOrganization(id.clone())
        }
        _ => return None,
    })
}

/// Resolves the path, then matches the interaction id against it. Unknown
/// path: 404. Known path, wrong or unknown id: 400. Known path and an id that
/// belongs to it, but a verb outside the API (PUT, PATCH, DELETE, ...): 405.
pub fn resolve(
    method: &Method,
    path: &str,
    interaction_id: &str,
) -> Result<Operation, ProviderError> {
    let resource = resource(path).ok_or_else(|| {
        ProviderError::NotFound(format!(
            "{} is not a resource of this server",
            path.chars().take(100).collect::<String>()
        ))
    })?;
    let claimed = if is_known_id(interaction_id) {
        Interaction::from_id(interaction_id)
    } else {
        return Err(ProviderError::BadRequest(
            "Ssp-InteractionID is not a known GP Connect interaction id".into(),
        ));
    };
    match operation(method, &resource) {
        Some(op) if Some(op.interaction()) == claimed => Ok(op),
        Some(op) => Err(ProviderError::BadRequest(format!(
            "Ssp-InteractionID does not match {method} on this path; expected {}",
            op.interaction().id()
        ))),
        None => {
            // GET and POST are this API's verbs, so a mismatch there is an
            // interaction error (e.g. GET /Order with the create id); any other
            // verb carrying the path's own id is simply not supported.
            let api_verb = *method == Method::GET || *method == Method::POST;
            let fits_path = [Method::GET, Method::POST].iter().any(|m| {
                operation(m, &resource).is_some_and(|op| Some(op.interaction()) == claimed)
            });
            if fits_path && !api_verb {
                Err(ProviderError::MethodNotAllowed(format!(
                    "{method} is not supported on this path"
                )))
            } else {
                Err(ProviderError::BadRequest(format!(
                    "Ssp-InteractionID does not match {method} on this path"
                )))
            }
        }
    }
}

/// Without a usable interaction id the path is still checked first, so an
/// unknown path is a 404 whatever the headers say.
pub fn path_exists(path: &str) -> bool {
    resource(path).is_some()
}

/// Whether the root of `org` serves anything at `path` (which exists): a
/// root whose organisation receives no tasks serves only its metadata and
/// task updates, so its `/Order` and look-up paths are not there at all —
/// checked, like an unknown path, before the headers.
pub fn path_served(path: &str, org: &Organisation) -> bool {
    resource(path).is_some_and(|resource| {
        [Method::GET, Method::POST]
            .iter()
            .any(|m| operation(m, &resource).is_some_and(|op| org.serves(op.interaction())))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CREATE: &str = "urn:nhs:names:services:gpconnect:fhir:rest:create:order";
    const META: &str = "urn:nhs:names:services:gpconnect:fhir:rest:read:metadata";

    #[test]
    fn paths() {
        assert_eq!(
            resolve(&Method::POST, "/Order", CREATE),
            Ok(Operation::CreateTask)
        );
        assert_eq!(
            resolve(&Method::GET, "/metadata", META),
            Ok(Operation::Metadata)
        );
        for p in [
            "/Orders",
            "/Metadata",
            "/metadatas",
            "/Patients",
            "/Order/1",
            "/Patient/1/x",
        ] {
            let e = resolve(&Method::GET, p, META).unwrap_err();
            assert!(matches!(e, ProviderError::NotFound(_)), "{p}");
        }
    }

    const UPDATE: &str = "urn:nhs:names:services:gpconnect:fhir:rest:create:orderresponse";

    #[test]
    fn task_updates_are_posted_and_never_read() {
        assert_eq!(
            resolve(&Method::POST, "/OrderResponse", UPDATE),
            Ok(Operation::CreateOrderResponse)
        );
        assert!(matches!(
            resolve(&Method::POST, "/OrderResponse", CREATE),
            Err(ProviderError::BadRequest(_))
        ));
        assert!(matches!(
            resolve(&Method::POST, "/Order", UPDATE),
            Err(ProviderError::BadRequest(_))
        ));
        assert!(matches!(
            resolve(&Method::PUT, "/OrderResponse", UPDATE),
            Err(ProviderError::MethodNotAllowed(_))
        ));
        for p in ["/OrderResponse/1", "/OrderResponses", "/orderresponse"] {
            assert!(
                matches!(
                    resolve(&Method::POST, p, UPDATE),
                    Err(ProviderError::NotFound(_))
                ),
                "{p}"
            );
        }
    }

    #[test]
    fn a_root_without_tasks_serves_only_its_metadata_and_task_updates() {
        let data = gpc_directory::demo_region();
        let region = gpc_domain::Region::new(data);
        let sender = region.root("X11101").unwrap();
        let receiver = region.root("GPC001").unwrap();
        for path in ["/metadata", "/OrderResponse"] {
            assert!(path_served(path, sender), "{path}");
            assert!(path_served(path, receiver), "{path}");
        }
        for path in [
            "/Order",
            "/Patient",
            "/Patient/1",
            "/Organization",
            "/Practitioner/1",
        ] {
            assert!(!path_served(path, sender), "{path}");
            assert!(path_served(path, receiver), "{path}");
        }
    }

    #[test]
    fn interaction_mismatch() {
        assert!(matches!(
            resolve(&Method::GET, "/Order", CREATE),
            Err(ProviderError::BadRequest(_))
        ));
        assert!(matches!(
            resolve(&Method::POST, "/Order", META),
            Err(ProviderError::BadRequest(_))
        ));
        assert!(matches!(
            resolve(&Method::POST, "/Order", &CREATE.to_uppercase()),
            Err(ProviderError::BadRequest(_))
        ));
        assert!(matches!(
            resolve(
                &Method::POST,
                "/Order",
                "urn:nhs:names:services:gpconnect:fhir:rest:create:appointment"
            ),
            Err(ProviderError::BadRequest(_))
        ));
        assert!(matches!(
            resolve(&Method::DELETE, "/Order", CREATE),
            Err(ProviderError::MethodNotAllowed(_))
        ));
    }
}
