//! Forwarding one request to a provider and streaming its answer back
//! unchanged, less the hop-by-hop headers that belong to each connection.

use super::refusal::Refusal;
use axum::body::Body;
use axum::http::{HeaderMap, Method, header, request::Parts};
use axum::response::Response;
use std::time::Duration;
use url::Url;

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1),
/// so they are never passed on; `proxy-*` are matched by prefix.
const HOP_BY_HOP: [&str; 6] = [
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// `headers` less the hop-by-hop ones, those the Connection header names,
/// and, for a request, Host (the client sets the provider's).
pub fn end_to_end(headers: &HeaderMap, is_request: bool) -> HeaderMap {
    let named: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect();
    let mut out = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let n = name.as_str();
        if HOP_BY_HOP.contains(&n)
            || n.starts_with("proxy-")
            || named.iter().any(|c| c == n)
            || (is_request && name == header::HOST)
        {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    out
}

/// Whether the request carries a body to pass on: a GET without one must
/// not be forwarded as an empty chunked body.
fn has_body(parts: &Parts) -> bool {
    let length = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match length {
        Some(n) => n > 0,
        None => parts.headers.contains_key(header::TRANSFER_ENCODING),
    }
}

/// Sends the request to `url` and returns the provider's answer with its
/// body streamed. `timeout` bounds the wait for the answer's headers.
pub async fn forward(
    client: &reqwest::Client,
    timeout: Duration,
    parts: &Parts,
    body: Body,
    url: Url,
) -> Result<Response, Refusal> {
    let method =
        reqwest::Method::from_bytes(parts.method.as_str().as_bytes()).unwrap_or(Method::GET);
    let mut request = client
        .request(method, url)
        .headers(end_to_end(&parts.headers, true));
    if has_body(parts) {
        request = request.body(reqwest::Body::wrap_stream(body.into_data_stream()));
    }
    let answer = match tokio::time::timeout(timeout, request.send()).await {
        Err(_) => {
            return Err(Refusal::Timeout(format!(
                "the provider did not answer within {} ms",
                timeout.as_millis()
            )));
        }
        Ok(Err(e)) if e.is_timeout() => {
            return Err(Refusal::Timeout(
                "the provider did not accept the connection in time".into(),
            ));
        }
        Ok(Err(e)) => {
            tracing::debug!(error = %error_chain(&e), "forwarding failed");
            return Err(Refusal::Communication(
                "the provider could not be reached".into(),
            ));
        }
        Ok(Ok(answer)) => answer,
    };
    let status = answer.status();
    let headers = end_to_end(answer.headers(), false);
    let mut response = Response::new(Body::from_stream(answer.bytes_stream()));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    Ok(response)
}

/// The causes of a client error, for the log. reqwest's own message holds
/// the URL, whose query can hold an NHS number, so only its sources are kept.
fn error_chain(e: &reqwest::Error) -> String {
    let mut causes = Vec::new();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        causes.push(cause.to_string());
        source = cause.source();
    }
    causes.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn hop_by_hop_headers_are_dropped() {
        let h = map(&[
            ("connection", "keep-alive, X-Secret-Hop"),
            ("keep-alive", "timeout=5"),
            ("proxy-authorization", "Basic eA=="),
            ("proxy-connection", "keep-alive"),
            ("te", "trailers"),
            ("trailer", "x-checksum"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "h2c"),
            ("x-secret-hop", "1"),
            ("host", "consumer.example"),
            ("ssp-traceid", "abc"),
            ("authorization", "Bearer x"),
            ("accept", "application/json+fhir"),
            ("x-custom", "a"),
            ("x-custom", "b"),
        ]);
        let out = end_to_end(&h, true);
        let names: Vec<&str> = out.keys().map(|k| k.as_str()).collect();
        assert_eq!(
            names,
            ["ssp-traceid", "authorization", "accept", "x-custom"]
        );
        assert_eq!(out.get_all("x-custom").iter().count(), 2);
        // A response keeps Host-like headers other than the hop-by-hop ones.
        let out = end_to_end(&map(&[("host", "x"), ("etag", "W/\"1\"")]), false);
        assert_eq!(out.len(), 2);
    }
}
