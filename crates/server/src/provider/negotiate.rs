//! Content negotiation (spec §3.4): which format a request body is in and
//! which format the response is written in.

use gpc_domain::ProviderError;
use gpc_fhir::Format;

/// A FHIR mime type with an optional `;charset=utf-8`, or `None`.
fn fhir_mime(value: &str) -> Option<Format> {
    let mut parts = value.split(';');
    let format = match parts.next()?.trim().to_ascii_lowercase().as_str() {
        "application/json+fhir" => Format::Json,
        "application/xml+fhir" => Format::Xml,
        _ => return None,
    };
    for param in parts {
        let (name, val) = param.split_once('=')?;
        let ok = name.trim().eq_ignore_ascii_case("charset")
            && val.trim().trim_matches('"').eq_ignore_ascii_case("utf-8");
        if !ok {
            return None;
        }
    }
    Some(format)
}

/// The format of a request body, from its `Content-Type`.
pub fn request_format(content_type: Option<&str>) -> Result<Format, ProviderError> {
    let value = content_type.ok_or_else(|| {
        ProviderError::UnsupportedMediaType(
            "a request with a body needs Content-Type application/json+fhir or application/xml+fhir"
                .into(),
        )
    })?;
    fhir_mime(value).ok_or_else(|| {
        ProviderError::UnsupportedMediaType(format!(
            "Content-Type {} is not supported; use application/json+fhir or application/xml+fhir",
            truncate(value)
        ))
    })
}

/// The `_format` value of a query, if any (it is not a search parameter).
pub fn format_param(query: Option<&str>) -> Option<String> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('=').or(Some((pair, ""))))
        .find(|(k, _)| *k == "_format")
        .map(|(_, v)| {
            percent_encoding::percent_decode_str(v)
                .decode_utf8_lossy()
                .into_owned()
        })
}

/// The response format: `_format` wins over `Accept`; with neither, the
/// request's `Content-Type`; with nothing at all, JSON.
pub fn response_format(
    format_param: Option<&str>,
    accept: Option<&str>,
    content_type: Option<&str>,
) -> Result<Format, ProviderError> {
    if let Some(f) = format_param {
        return match f.trim() {
            "json" => Ok(Format::Json),
            "xml" => Ok(Format::Xml),
            other => fhir_mime(other).ok_or_else(|| {
                ProviderError::UnsupportedMediaType(format!(
                    "_format={} is not supported; use json, xml or a FHIR mime type",
                    truncate(other)
                ))
            }),
        };
    }
    if let Some(accept) = accept.filter(|a| !a.trim().is_empty()) {
        let mut wildcard = false;
        for range in accept.split(',') {
            let media = range.split(';').next().unwrap_or("").trim();
            if media == "*/*" || media.eq_ignore_ascii_case("application/*") {
                wildcard = true;
                continue;
            }
            // q-values and other parameters are allowed on Accept, so only the media range decides.
            if let Some(format) = fhir_mime(media) {
                return Ok(format);
            }
        }
        if !wildcard {
            return Err(ProviderError::UnsupportedMediaType(format!(
                "Accept {} is not supported; use application/json+fhir or application/xml+fhir",
                truncate(accept)
            )));
        }
    }
    Ok(content_type.and_then(fhir_mime).unwrap_or(Format::Json))
}

fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precedence() {
        let xml = Some("application/xml+fhir");
        let json = Some("application/json+fhir;charset=utf-8");
        assert_eq!(
            response_format(Some("json"), xml, xml).unwrap(),
            Format::Json
        );
        assert_eq!(response_format(None, xml, json).unwrap(), Format::Xml);
        assert_eq!(response_format(None, None, xml).unwrap(), Format::Xml);
        assert_eq!(response_format(None, None, None).unwrap(), Format::Json);
        assert_eq!(
            response_format(None, Some("*/*"), xml).unwrap(),
            Format::Xml
        );
        assert!(response_format(None, Some("text/xml"), None).is_err());
        assert!(response_format(Some("text/xml"), None, None).is_err());
        assert_eq!(
            response_format(Some("application/xml+fhir;charset=utf-8"), None, None).unwrap(),
            Format::Xml
        );
    }

    #[test]
    fn request_types() {
        assert!(request_format(Some("application/json")).is_err());
        assert!(request_format(Some("application/xml")).is_err());
        assert!(request_format(Some("text/xml")).is_err());
        assert!(request_format(None).is_err());
        assert!(request_format(Some("application/json+fhir;charset=latin1")).is_err());
        assert_eq!(
            request_format(Some("Application/XML+FHIR; charset=UTF-8")).unwrap(),
            Format::Xml
        );
    }

    #[test]
    fn format_param_decoding() {
        assert_eq!(
            format_param(Some("identifier=a&_format=application%2Fxml%2Bfhir")).as_deref(),
            Some("application/xml+fhir")
        );
        assert_eq!(format_param(Some("identifier=a")), None);
    }
}
