//! Static files compiled into the binary, so that running the server needs
//! no build step and no asset folder beside it.
//!
//! Pages link each file with `?v={hash of its content}`: such a URL never
//! changes meaning, so browsers may keep it for a year; a bare URL is cached
//! briefly and revalidated with its ETag.

use axum::extract::{Path, RawQuery};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

struct Asset {
    path: &'static str,
    bytes: &'static [u8],
    content_type: &'static str,
    hash: u64,
}

impl Asset {
    const fn new(path: &'static str, bytes: &'static [u8], content_type: &'static str) -> Self {
        Self {
            path,
            bytes,
            content_type,
            hash: fnv1a(bytes),
        }
    }
}

/// FNV-1a: enough to tell two versions of a file apart, and computable at
/// compile time.
const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x0100_0000_01b3);
        i += 1;
    }
    hash
}

const CSS: &str = "text/css; charset=utf-8";
const SVG: &str = "image/svg+xml";

pub const NHSUK_CSS: &str = "nhsuk-frontend-10.6.1.min.css";
pub const APP_CSS: &str = "app.css";
pub const APP_JS: &str = "app.js";

static ASSETS: &[Asset] = &[
    Asset::new(
        NHSUK_CSS,
        include_bytes!("../assets/nhsuk-frontend/nhsuk-frontend-10.6.1.min.css"),
        CSS,
    ),
    Asset::new(
        "nhsuk-frontend-LICENSE.txt",
        include_bytes!("../assets/nhsuk-frontend/LICENSE"),
        "text/plain; charset=utf-8",
    ),
    // The stylesheet refers to its icons as `/assets/images/...`.
    Asset::new(
        "images/nhsuk-icon-arrow-down.svg",
        include_bytes!("../assets/nhsuk-frontend/images/nhsuk-icon-arrow-down.svg"),
        SVG,
    ),
    Asset::new(
        "images/nhsuk-icon-arrow-up.svg",
        include_bytes!("../assets/nhsuk-frontend/images/nhsuk-icon-arrow-up.svg"),
        SVG,
    ),
    Asset::new(
        "images/nhsuk-icon-arrow-up-down.svg",
        include_bytes!("../assets/nhsuk-frontend/images/nhsuk-icon-arrow-up-down.svg"),
        SVG,
    ),
    Asset::new(
        "images/nhsuk-icon-cross.svg",
        include_bytes!("../assets/nhsuk-frontend/images/nhsuk-icon-cross.svg"),
        SVG,
    ),
    Asset::new(
        "images/favicon.svg",
        include_bytes!("../assets/nhsuk-frontend/images/favicon.svg"),
        SVG,
    ),
    Asset::new(
        "images/favicon.ico",
        include_bytes!("../assets/nhsuk-frontend/images/favicon.ico"),
        "image/x-icon",
    ),
    Asset::new(APP_CSS, include_bytes!("../assets/app.css"), CSS),
    Asset::new(
        APP_JS,
        include_bytes!("../assets/app.js"),
        "text/javascript; charset=utf-8",
    ),
];

fn find(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

/// The URL pages use for an asset: versioned by content.
pub fn url(path: &str) -> String {
    match find(path) {
        Some(asset) => format!("/assets/{}?v={:016x}", asset.path, asset.hash),
        None => format!("/assets/{path}"),
    }
}

pub async fn serve(
    Path(path): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let Some(asset) = find(&path) else {
        return (StatusCode::NOT_FOUND, "Not found").into_response();
    };
    let etag = format!("\"{:016x}\"", asset.hash);
    let versioned = query.is_some_and(|q| q == format!("v={:016x}", asset.hash));
    let cache = if versioned {
        "public, max-age=31536000, immutable"
    } else {
        "public, max-age=300"
    };
    // A quoted hex number is always a valid header value.
    #[allow(clippy::expect_used)]
    let etag_value = HeaderValue::from_str(&etag).expect("hex is a valid header value");
    let cache_headers = [
        (header::CACHE_CONTROL, HeaderValue::from_static(cache)),
        (header::ETAG, etag_value),
    ];
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if matches {
        return (StatusCode::NOT_MODIFIED, cache_headers).into_response();
    }
    (
        cache_headers,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.content_type),
        )],
        asset.bytes,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_has_a_distinct_path_and_content() {
        for (i, a) in ASSETS.iter().enumerate() {
            assert!(!a.bytes.is_empty(), "{} is empty", a.path);
            for b in &ASSETS[i + 1..] {
                assert_ne!(a.path, b.path);
            }
        }
        assert!(url(APP_JS).starts_with("/assets/app.js?v="));
    }
}
