//! Label values that cannot carry a client's data: fixed strings chosen
//! from what the request asked for, never the path, an id or an ODS code.

use axum::http::Method;

/// The route template of a provider path: the kind of resource, with the
/// tenant and any id as placeholders.
pub(crate) fn provider_route(path: &str) -> &'static str {
    let Some((_, rest)) = crate::provider::split_root(path) else {
        return UNMATCHED;
    };
    let mut segments = rest.trim_start_matches('/').split('/');
    let first = segments.next().unwrap_or("");
    let has_id = segments.next().is_some_and(|s| !s.is_empty());
    if segments.next().is_some() {
        return "/{ods}/DSTU2/1/{other}";
    }
    match (first, has_id) {
        ("metadata", false) => "/{ods}/DSTU2/1/metadata",
        ("Patient", false) => "/{ods}/DSTU2/1/Patient",
        ("Patient", true) => "/{ods}/DSTU2/1/Patient/{id}",
        ("Practitioner", false) => "/{ods}/DSTU2/1/Practitioner",
        ("Practitioner", true) => "/{ods}/DSTU2/1/Practitioner/{id}",
        ("Organization", false) => "/{ods}/DSTU2/1/Organization",
        ("Organization", true) => "/{ods}/DSTU2/1/Organization/{id}",
        ("Order", false) => "/{ods}/DSTU2/1/Order",
        ("OrderResponse", false) => "/{ods}/DSTU2/1/OrderResponse",
        _ => "/{ods}/DSTU2/1/{other}",
    }
}

/// A path no route of this server matched.
pub(crate) const UNMATCHED: &str = "unmatched";

/// The method, or `other` for one outside HTTP's common set (a client may
/// send any token there).
pub(crate) fn method(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        _ => "other",
    }
}

/// An axum route template as a label: the SSP's catch-all reads `/ssp/*`.
pub(crate) fn matched_route(template: &str) -> &str {
    if template.starts_with(crate::ssp::PREFIX) {
        "/ssp/*"
    } else {
        template
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn provider_paths_become_templates_without_ids_or_codes() {
        assert_eq!(
            provider_route("/GPC001/DSTU2/1/Order"),
            "/{ods}/DSTU2/1/Order"
        );
        assert_eq!(
            provider_route("/GPC001/DSTU2/1/Patient/9000000009"),
            "/{ods}/DSTU2/1/Patient/{id}"
        );
        assert_eq!(
            provider_route("/GPC001/DSTU2/1/metadata"),
            "/{ods}/DSTU2/1/metadata"
        );
        assert_eq!(
            provider_route("/GPC001/DSTU2/1/x/y/z"),
            "/{ods}/DSTU2/1/{other}"
        );
        assert_eq!(
            provider_route("/GPC001/DSTU2/1/9000000009"),
            "/{ods}/DSTU2/1/{other}"
        );
        assert_eq!(provider_route("/nothing/here"), UNMATCHED);
        assert_eq!(matched_route("/ssp/{*target}"), "/ssp/*");
        assert_eq!(method(&Method::from_bytes(b"BREW").unwrap()), "other");
    }
}
