//! Whether a target URL lies under a registered endpoint — the check that
//! keeps the SSP from being used to reach anything else (SSRF).
//!
//! The raw target is refused outright for anything a parser might read in
//! two ways (userinfo, dot segments, percent-encoding, backslashes, empty
//! segments, fragments); what is left is parsed with the WHATWG URL parser
//! and compared, scheme, host, port and path segment by segment, with the
//! endpoint parsed the same way. The URL to forward to is then built from
//! the endpoint, so that only the path beneath it comes from the request.

use url::Url;

/// Longer targets are refused without parsing.
const MAX_TARGET_LEN: usize = 2048;

/// Checks `raw`, the target exactly as it arrived (still percent-encoded,
/// without the query), against `endpoint`, and returns the URL to forward
/// to (without a query). The error is the reason, in plain words.
pub fn check(raw: &str, endpoint: &str) -> Result<Url, String> {
    if raw.is_empty() {
        return Err("no target URL follows the SSP prefix".into());
    }
    if raw.len() > MAX_TARGET_LEN {
        return Err(format!(
            "the target URL is longer than {MAX_TARGET_LEN} characters"
        ));
    }
    if let Some(c) = raw
        .chars()
        .find(|c| *c == '\\' || *c == '#' || c.is_whitespace() || c.is_control() || !c.is_ascii())
    {
        return Err(match c {
            '\\' => "the target URL contains a backslash".into(),
            '#' => "the target URL contains a fragment".into(),
            // The URL parser would percent-encode or IDNA-map it: two readings.
            c if !c.is_ascii() => "the target URL contains a character that is not ASCII".into(),
            _ => "the target URL contains whitespace or a control character".into(),
        });
    }
    if let Some(i) = raw.find('%') {
        let encoded = raw.get(i + 1..i + 3).unwrap_or("").to_ascii_lowercase();
        return Err(match encoded.as_str() {
            "2f" => "the target URL contains a percent-encoded slash".into(),
            "5c" => "the target URL contains a percent-encoded backslash".into(),
            "2e" => "the target URL contains a percent-encoded dot".into(),
            _ => "the target URL contains percent-encoding, which no endpoint path needs".into(),
        });
    }
    let (scheme, rest) = raw
        .split_once("://")
        .ok_or("the target URL is not an absolute http or https URL")?;
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Err("the target URL is not an absolute http or https URL".into());
    }
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) => rest.split_at(i),
        None => (rest, ""),
    };
    if authority.contains('@') {
        return Err("the target URL carries user information".into());
    }
    if authority.contains(['[', ']']) {
        return Err("the target URL names an IPv6 host".into());
    }
    if path.contains('?') {
        return Err("the target URL has a query inside its path".into());
    }
    let mut segments = path.split('/').skip(1).peekable();
    while let Some(segment) = segments.next() {
        match segment {
            "." | ".." => return Err("the target URL contains a '.' or '..' segment".into()),
            // A trailing slash is harmless; `//` inside a path is not.
            "" if segments.peek().is_some() => {
                return Err("the target URL contains an empty path segment".into());
            }
            _ => {}
        }
    }

    let target = Url::parse(raw).map_err(|e| format!("the target URL does not parse: {e}"))?;
    let registered =
        Url::parse(endpoint).map_err(|e| format!("the registered endpoint does not parse: {e}"))?;
    if !target.username().is_empty() || target.password().is_some() {
        return Err("the target URL carries user information".into());
    }
    if target.fragment().is_some() {
        return Err("the target URL contains a fragment".into());
    }
    if target.scheme() != registered.scheme() {
        return Err(format!(
            "the target URL's scheme is not the endpoint's ({})",
            registered.scheme()
        ));
    }
    if target.host() != registered.host() {
        return Err("the target URL's host is not the endpoint's".into());
    }
    if target.port_or_known_default() != registered.port_or_known_default() {
        return Err("the target URL's port is not the endpoint's".into());
    }
    if !under(target.path(), registered.path()) {
        return Err("the target URL's path is not under the endpoint".into());
    }
    let mut forward = registered;
    forward.set_path(target.path());
    forward.set_query(None);
    Ok(forward)
}

/// Segment-wise: `/A/DSTU2/1` is under `/A/DSTU2/1` but `/A1/DSTU2/1` and
/// `/A/DSTU2/10` are not.
fn under(path: &str, root: &str) -> bool {
    let root = root.trim_end_matches('/');
    match path.strip_prefix(root) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENDPOINT: &str = "http://127.0.0.1:8080/GPC001/DSTU2/1";

    fn ok(raw: &str) -> String {
        check(raw, ENDPOINT)
            .unwrap_or_else(|e| panic!("{raw} refused: {e}"))
            .to_string()
    }

    fn refused(raw: &str) -> String {
        match check(raw, ENDPOINT) {
            Ok(url) => panic!("{raw} accepted as {url}"),
            Err(reason) => reason,
        }
    }

    #[test]
    fn paths_under_the_endpoint_are_forwarded_to_it() {
        for (raw, forward) in [
            (
                "http://127.0.0.1:8080/GPC001/DSTU2/1/Order",
                "http://127.0.0.1:8080/GPC001/DSTU2/1/Order",
            ),
            (
                "http://127.0.0.1:8080/GPC001/DSTU2/1",
                "http://127.0.0.1:8080/GPC001/DSTU2/1",
            ),
            (
                "http://127.0.0.1:8080/GPC001/DSTU2/1/",
                "http://127.0.0.1:8080/GPC001/DSTU2/1/",
            ),
            (
                "http://127.0.0.1:8080/GPC001/DSTU2/1/Patient/2/_history/1",
                "http://127.0.0.1:8080/GPC001/DSTU2/1/Patient/2/_history/1",
            ),
            (
                "http://127.0.0.1:8080/GPC001/DSTU2/1/metadata",
                "http://127.0.0.1:8080/GPC001/DSTU2/1/metadata",
            ),
        ] {
            assert_eq!(ok(raw), forward);
        }
    }

    #[test]
    fn equivalent_spellings_normalise_to_the_endpoint() {
        // Scheme and host case, a leading zero on the port: the same endpoint.
        for raw in [
            "HTTP://127.0.0.1:8080/GPC001/DSTU2/1/Order",
            "http://127.0.0.1:08080/GPC001/DSTU2/1/Order",
        ] {
            assert_eq!(ok(raw), "http://127.0.0.1:8080/GPC001/DSTU2/1/Order");
        }
        // IPv4 in another notation is the same address, and the request goes
        // to the registered endpoint, not to what the target spelled.
        assert_eq!(
            ok("http://2130706433:8080/GPC001/DSTU2/1/Order"),
            "http://127.0.0.1:8080/GPC001/DSTU2/1/Order"
        );
        let named = check(
            "http://LocalHost/R1A14/DSTU2/1/Order",
            "http://localhost:80/R1A14/DSTU2/1",
        )
        .unwrap();
        assert_eq!(named.as_str(), "http://localhost/R1A14/DSTU2/1/Order");
    }

    #[test]
    fn other_endpoints_and_prefix_tricks_are_refused() {
        for raw in [
            "http://127.0.0.1:8080/GPC0011/DSTU2/1/Order",
            "http://127.0.0.1:8080/GPC001/DSTU2/10/Order",
            "http://127.0.0.1:8080/GPC001/DSTU2/Order",
            "http://127.0.0.1:8080/GPC001/DSTU2",
            "http://127.0.0.1:8080/R1A14/DSTU2/1/Order",
            "http://127.0.0.1:8080/gpc001/DSTU2/1/Order",
            "http://127.0.0.1:8080/",
            "http://127.0.0.1:8080",
            "http://127.0.0.1:8080/admin",
        ] {
            assert!(refused(raw).contains("path"), "{raw}");
        }
    }

    #[test]
    fn other_hosts_ports_and_schemes_are_refused() {
        for (raw, why) in [
            ("http://127.0.0.2:8080/GPC001/DSTU2/1/Order", "host"),
            ("http://localhost:8080/GPC001/DSTU2/1/Order", "host"),
            ("http://evil.example/GPC001/DSTU2/1/Order", "host"),
            ("http://127.0.0.1.nip.io:8080/GPC001/DSTU2/1/Order", "host"),
            ("http://10.0.0.1:8080/GPC001/DSTU2/1/Order", "host"),
            ("http://127.0.0.1:8081/GPC001/DSTU2/1/Order", "port"),
            ("http://127.0.0.1/GPC001/DSTU2/1/Order", "port"),
            ("http://127.0.0.1:/GPC001/DSTU2/1/Order", "port"),
            ("http://127.0.0.1:80/GPC001/DSTU2/1/Order", "port"),
            ("https://127.0.0.1:8080/GPC001/DSTU2/1/Order", "scheme"),
            ("ftp://127.0.0.1:8080/GPC001/DSTU2/1/Order", "absolute"),
            ("file:///etc/passwd", "absolute"),
            ("gopher://127.0.0.1:8080/_", "absolute"),
            ("//127.0.0.1:8080/GPC001/DSTU2/1/Order", "absolute"),
            ("127.0.0.1:8080/GPC001/DSTU2/1/Order", "absolute"),
            ("http:/127.0.0.1:8080/GPC001/DSTU2/1/Order", "absolute"),
            ("GPC001/DSTU2/1/Order", "absolute"),
        ] {
            let reason = refused(raw);
            assert!(reason.contains(why), "{raw}: {reason}");
        }
    }

    #[test]
    fn userinfo_is_refused() {
        for raw in [
            "http://user:pass@127.0.0.1:8080/GPC001/DSTU2/1/Order",
            "http://user@127.0.0.1:8080/GPC001/DSTU2/1/Order",
            "http://@127.0.0.1:8080/GPC001/DSTU2/1/Order",
            "http://127.0.0.1:8080@evil.example/GPC001/DSTU2/1/Order",
            "http://evil.example@127.0.0.1:8080/GPC001/DSTU2/1/Order",
        ] {
            assert!(refused(raw).contains("user information"), "{raw}");
        }
    }

    #[test]
    fn dot_segments_raw_or_encoded_are_refused() {
        for raw in [
            "http://127.0.0.1:8080/GPC001/DSTU2/1/../../../R1A14/DSTU2/1/Order",
            "http://127.0.0.1:8080/GPC001/DSTU2/1/Patient/../Order",
            "http://127.0.0.1:8080/GPC001/DSTU2/1/./Order",
            "http://127.0.0.1:8080/GPC001/DSTU2/1/..",
            "http://127.0.0.1:8080/GPC001/DSTU2/1/.",
        ] {
            assert!(refused(raw).contains("segment"), "{raw}");
        }
        for raw in [
            "http://127.0.0.1:8080/GPC001/DSTU2/1/%2e%2e/%2e%2e/%2e%2e/admin",
            "http://127.0.0.1:8080/GPC001/DSTU2/1/%2E%2E/Order",
            "http://127.0.0.1:8080/GPC001/DSTU2/1/.%2e/Order",
            "http://127.0.0.1:8080/GPC001/DSTU2/1/%2e./Order",
            "http://127.0.0.1:8080/GPC001/DSTU2/1/%2e/Order",
        ] {
            assert!(refused(raw).contains("dot"), "{raw}");
        }
    }

    #[test]
    fn encoded_separators_and_backslashes_are_refused() {
        for (raw, why) in [
            (
                "http://127.0.0.1:8080/GPC001/DSTU2/1/..%2f..%2fadmin",
                "encoded slash",
            ),
            (
                "http://127.0.0.1:8080/GPC001/DSTU2/1%2FOrder",
                "encoded slash",
            ),
            (
                "http://127.0.0.1:8080/GPC001/DSTU2/1/..%5c..%5cadmin",
                "encoded backslash",
            ),
            (
                "http://127.0.0.1:8080/GPC001/DSTU2/1/%252e%252e/Order",
                "percent-encoding",
            ),
            (
                "http://127.0.0.1:8080/GPC001/DSTU2/1/Order%00",
                "percent-encoding",
            ),
            (
                "http://127.0.0.1:8080/%47PC001/DSTU2/1/Order",
                "percent-encoding",
            ),
            (
                "http://127.0.0.%31:8080/GPC001/DSTU2/1/Order",
                "percent-encoding",
            ),
            (
                "http://127.0.0.1:8080/GPC001/DSTU2/1/Order%",
                "percent-encoding",
            ),
            (
                "http://127.0.0.1:8080/GPC001/DSTU2/1\\..\\..\\admin",
                "backslash",
            ),
            ("http:\\\\127.0.0.1:8080/GPC001/DSTU2/1/Order", "backslash"),
        ] {
            let reason = refused(raw);
            assert!(reason.contains(why), "{raw}: {reason}");
        }
    }

    #[test]
    fn ipv6_forms_are_refused() {
        for raw in [
            "http://[::1]:8080/GPC001/DSTU2/1/Order",
            "http://[::ffff:127.0.0.1]:8080/GPC001/DSTU2/1/Order",
            "http://[0:0:0:0:0:ffff:7f00:1]:8080/GPC001/DSTU2/1/Order",
            "http://[::1%25lo]:8080/GPC001/DSTU2/1/Order",
        ] {
            let reason = refused(raw);
            assert!(
                reason.contains("IPv6") || reason.contains("percent"),
                "{raw}: {reason}"
            );
        }
    }

    #[test]
    fn fragments_whitespace_and_odd_shapes_are_refused() {
        for raw in [
            "http://127.0.0.1:8080/GPC001/DSTU2/1/Order#x",
            "http://127.0.0.1:8080/GPC001/DSTU2/1/Order x",
            "http://127.0.0.1:8080/GPC001/DSTU2/1/Or\tder",
            "http://127.0.0.1:8080/GPC001/DSTU2/1/Or\nder",
            "http://127.0.0.1:8080/GPC001//DSTU2/1/Order",
            "http://127.0.0.1:8080/GPC001/DSTU2/1//Order",
            "http://127.0.0.1:8080//GPC001/DSTU2/1/Order",
            "http://127.0.0.1:8080?/GPC001/DSTU2/1/Order",
            "http://127.0.0.1:8080/GPC001/DSTU2/1/Order?x=1",
            "",
        ] {
            refused(raw);
        }
        let long = format!("{ENDPOINT}/{}", "a".repeat(MAX_TARGET_LEN));
        assert!(refused(&long).contains("longer"));
    }

    #[test]
    fn an_unparseable_endpoint_refuses_everything() {
        assert!(
            check("http://127.0.0.1:8080/GPC001/DSTU2/1/Order", "not a url")
                .unwrap_err()
                .contains("registered endpoint")
        );
    }

    #[test]
    fn under_is_segment_wise() {
        assert!(under("/A/DSTU2/1", "/A/DSTU2/1"));
        assert!(under("/A/DSTU2/1/Order", "/A/DSTU2/1"));
        assert!(under("/A/DSTU2/1/Order", "/A/DSTU2/1/"));
        assert!(!under("/A/DSTU2/10", "/A/DSTU2/1"));
        assert!(!under("/A1/DSTU2/1", "/A"));
        assert!(!under("/", "/A"));
    }
}
