//! Property tests of the provider's and the SSP's input handling: the
//! search-parameter parser never panics and reads back what it was given,
//! the SSP's target check never accepts a URL outside the endpoint, and a
//! Create Task's validation never panics however the Order is mangled.

// A test crate sees every dev-dependency of its package, and uses only some.
#![allow(unused_crate_dependencies)]
// Helpers outside `#[test]` functions panic on purpose too: a failure is the test's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use gpc_domain::Region;
use gpc_domain::order_rules::{london_today, validate_order};
use gpc_server::provider::search_params::identifier;
use gpc_server::ssp::target;
use proptest::prelude::*;
use serde_json::{Value, json};
use std::sync::LazyLock;

const ENDPOINT: &str = "http://127.0.0.1:8080/GPC001/DSTU2/1";

static REGION: LazyLock<Region> = LazyLock::new(|| Region::new(gpc_directory::demo_region()));

const URL_TOKENS: &[&str] = &[
    "http://",
    "https://",
    "HTTP://",
    "http:",
    "//",
    "127.0.0.1",
    "127.0.0.2",
    "127.1",
    "0x7f.0.0.1",
    "2130706433",
    "localhost",
    "evil.example",
    "[::1]",
    "[::ffff:127.0.0.1]",
    ":8080",
    ":80",
    ":08080",
    ":",
    "@",
    "user:pass@",
    "/",
    "GPC001",
    "gpc001",
    "R1A14",
    "DSTU2",
    "1",
    "10",
    "Order",
    "metadata",
    "..",
    ".",
    "%2e",
    "%2E",
    "%2f",
    "%5c",
    "%",
    "\\",
    "?",
    "#",
    "é",
    " ",
    "\t",
    "ssp/",
];

fn url_ish() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(URL_TOKENS), 0..24).prop_map(|t| t.concat())
}

/// Strings that start like the endpoint, then wander.
fn near_endpoint() -> impl Strategy<Value = String> {
    (0..=ENDPOINT.len(), url_ish()).prop_map(|(cut, tail)| format!("{}{tail}", &ENDPOINT[..cut]))
}

fn assert_under_endpoint(raw: &str, forward: &url::Url) -> Result<(), TestCaseError> {
    let registered = url::Url::parse(ENDPOINT).unwrap();
    prop_assert_eq!(forward.scheme(), registered.scheme(), "{}", raw);
    prop_assert_eq!(forward.host(), registered.host(), "{}", raw);
    prop_assert_eq!(
        forward.port_or_known_default(),
        registered.port_or_known_default()
    );
    prop_assert!(forward.username().is_empty() && forward.password().is_none());
    prop_assert!(forward.query().is_none() && forward.fragment().is_none());
    let rest = forward.path().strip_prefix(registered.path());
    prop_assert!(
        rest.is_some_and(|r| r.is_empty() || r.starts_with('/')),
        "{} forwarded to {}",
        raw,
        forward
    );
    prop_assert!(!forward.path().split('/').any(|s| s == ".." || s == "."));
    Ok(())
}

/// Small JSON values to put anywhere in an Order.
fn junk() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        ".{0,10}".prop_map(Value::String),
        Just(json!([])),
        Just(json!({})),
        Just(json!([{}])),
        Just(json!({"reference": "Patient/2"})),
        Just(json!({"reference": "#x"})),
        Just(json!("Patient/1")),
        Just(json!("Organization/1")),
        Just(json!("2026-11-25T10:00:00+00:00")),
        Just(json!([{"resourceType": "Basic", "id": "x", "code": {"text": "x"}}])),
    ]
}

/// Every JSON pointer into a value.
fn pointers(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                let p = format!("{at}/{k}");
                out.push(p.clone());
                pointers(v, p, out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                let p = format!("{at}/{i}");
                out.push(p.clone());
                pointers(v, p, out);
            }
        }
        _ => {}
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn the_search_parser_never_panics(query in ".{0,80}") {
        if let Ok(p) = identifier(Some(&query)) {
            prop_assert!(!p.system.trim().is_empty() && !p.value.trim().is_empty());
        }
    }

    #[test]
    fn the_search_parser_reads_back_system_and_value(
        system in "[A-Za-z0-9:/._-]{1,40}",
        value in "[A-Za-z0-9 ._-]{1,20}",
        encoded_bar in any::<bool>(),
        format_first in any::<bool>(),
    ) {
        prop_assume!(!value.trim().is_empty());
        let bar = if encoded_bar { "%7C" } else { "|" };
        let value_on_wire = value.replace(' ', "%20");
        let param = format!("identifier={}{}{}", system, bar, value_on_wire);
        let query = if format_first { format!("_format=json&{}", param) } else { param };
        let parsed = identifier(Some(&query)).unwrap();
        prop_assert_eq!(parsed.system, system);
        prop_assert_eq!(parsed.value, value);
    }

    #[test]
    fn the_target_check_never_accepts_a_url_outside_the_endpoint(raw in prop_oneof![url_ish(), near_endpoint()]) {
        if let Ok(forward) = target::check(&raw, ENDPOINT) {
            assert_under_endpoint(&raw, &forward)?;
        }
    }

    #[test]
    fn paths_under_the_endpoint_are_forwarded_as_they_are(segments in prop::collection::vec("[A-Za-z0-9_-]{1,12}", 0..5)) {
        let path: String = segments.iter().map(|s| format!("/{}", s)).collect();
        let raw = format!("{}{}", ENDPOINT, path);
        let forward = target::check(&raw, ENDPOINT).unwrap();
        prop_assert_eq!(forward.as_str(), raw.as_str());
    }

    #[test]
    fn create_task_validation_never_panics(
        picks in prop::collection::vec((any::<prop::sample::Index>(), junk(), any::<bool>()), 1..6),
    ) {
        let mut order = gpc_testkit::dawes_order();
        for (index, value, remove) in picks {
            let mut all = Vec::new();
            pointers(&order, String::new(), &mut all);
            if all.is_empty() {
                break;
            }
            let pointer = index.get(&all).clone();
            let (parent, key) = pointer.rsplit_once('/').unwrap();
            match order.pointer_mut(parent) {
                Some(Value::Object(map)) => {
                    if remove { map.remove(key); } else { map.insert(key.to_owned(), value); }
                }
                Some(Value::Array(items)) => {
                    let i: usize = key.parse().unwrap();
                    if remove { items.remove(i); } else { items[i] = value; }
                }
                _ => {}
            }
        }
        let region = &*REGION;
        let tenant = region.tenant("GPC001").unwrap();
        let today = london_today(jiff::Timestamp::now());
        let data = gpc_directory::demo_region();
        let named = |body: &serde_json::Value| gpc_domain::order_rules::NamedRecords {
            token_patient: None,
            subject: gpc_domain::order_rules::subject_id(body).and_then(|id| {
                data.record_of(&tenant.ods, gpc_domain::reference::PatientKey::Id(id))
            }),
        };
        let _ = validate_order(order.clone(), tenant, region, &named(&order), today);
        // The same Order through the XML reader, where it survives writing.
        let written = gpc_fhir::xml::to_xml(&order);
        if let Ok(body) = gpc_fhir::parse_body(written.as_bytes(), gpc_fhir::Format::Xml) {
            let named = named(&body);
            let _ = validate_order(body, tenant, region, &named, today);
        }
    }
}
