//! Property tests: NHS numbers parse and format as spec §9 says, and the
//! JWT decoder never panics, whatever the header holds.

// A test crate sees every dev-dependency of its package, and uses only some.
#![allow(unused_crate_dependencies)]
// Helpers outside `#[test]` functions panic on purpose too: a failure is the test's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gpc_domain::jwt::{ClaimCache, LIFETIME_SECONDS, decode};
use gpc_domain::{NhsNumber, NhsNumberError};
use proptest::prelude::*;
use serde_json::{Value, json};

/// One cache for every case, as one server keeps one for every request.
static CLAIM_CACHE: ClaimCache = ClaimCache::new();

fn check_digit(first9: &[u32]) -> Option<u32> {
    let sum: u32 = first9.iter().zip((2..=10).rev()).map(|(d, w)| d * w).sum();
    match 11 - sum % 11 {
        11 => Some(0),
        10 => None,
        c => Some(c),
    }
}

fn claims_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|n| json!(n)),
        ".{0,20}".prop_map(Value::String),
        Just(json!("https://authorize.fhir.nhs.net/token")),
        Just(json!("directcare")),
        Just(json!("organization/*.read")),
        Just(
            json!({"resourceType": "Organization", "identifier": [{"system": "http://fhir.nhs.net/Id/ods-organization-code", "value": "Y00001"}], "name": "x"})
        ),
        Just(
            json!({"resourceType": "Practitioner", "id": "1", "identifier": [{"system": "http://fhir.nhs.net/sds-user-id", "value": "G1"}], "name": {"family": ["A"]}, "practitionerRole": [{"role": {"coding": [{"system": "http://fhir.nhs.net/ValueSet/sds-job-role-name-1", "code": "R0260"}]}}]})
        ),
        Just(
            json!({"resourceType": "Device", "id": "1", "identifier": [{"value": "x"}], "model": "m", "version": "1"})
        ),
        Just(
            json!({"resourceType": "Patient", "identifier": [{"system": "http://fhir.nhs.net/Id/nhs-number", "value": "9476719931"}]})
        ),
        Just(json!([])),
        Just(json!({})),
    ]
}

const CLAIMS: [&str; 11] = [
    "iss",
    "sub",
    "aud",
    "iat",
    "exp",
    "reason_for_request",
    "requested_record",
    "requested_scope",
    "requesting_device",
    "requesting_organization",
    "requesting_practitioner",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn a_valid_nhs_number_parses_and_formats_back(first9 in prop::collection::vec(0u32..10, 9)) {
        let digits: String = first9.iter().map(|d| char::from_digit(*d, 10).unwrap()).collect();
        match check_digit(&first9) {
            Some(check) => {
                let text = format!("{}{}", digits, check);
                let nhs = NhsNumber::parse(&text).unwrap();
                prop_assert_eq!(nhs.as_digits(), text.clone());
                let formatted = nhs.formatted();
                prop_assert_eq!(formatted.replace(' ', ""), text.clone());
                prop_assert_eq!(formatted.len(), 12);
                prop_assert_eq!(NhsNumber::parse(&formatted).unwrap(), nhs);
                prop_assert_eq!(NhsNumber::parse(&format!("  {} ", formatted)).unwrap(), nhs);
                for wrong in (0..10).filter(|d| *d != check) {
                    prop_assert_eq!(
                        NhsNumber::parse(&format!("{}{}", digits, wrong)),
                        Err(NhsNumberError::CheckDigit)
                    );
                }
                // Its Debug form never shows the number.
                let debug = format!("{:?}", nhs);
                prop_assert!(!debug.contains(&text));
            }
            None => {
                for last in 0..10 {
                    let text = format!("{}{}", digits, last);
                    prop_assert!(NhsNumber::parse(&text).is_err());
                }
            }
        }
    }

    #[test]
    fn nhs_number_parsing_never_panics(text in ".{0,24}") {
        if let Ok(nhs) = NhsNumber::parse(&text) {
            prop_assert_eq!(nhs.as_digits().len(), 10);
        }
    }

    #[test]
    fn jwt_decoding_never_panics_on_any_header(header in ".{0,200}") {
        let _ = decode(&CLAIM_CACHE, Some(&header), 1_800_000_000);
        let _ = decode(&CLAIM_CACHE, Some(&format!("Bearer {}", header)), 1_800_000_000);
    }

    #[test]
    fn jwt_decoding_never_panics_on_any_claims(
        values in prop::collection::vec(claims_value(), 11),
        present in prop::collection::vec(any::<bool>(), 11),
        iat in prop_oneof![any::<i64>(), Just(1_800_000_000i64), Just(i64::MIN), Just(i64::MAX)],
        lifetime in prop_oneof![Just(LIFETIME_SECONDS), any::<i64>()],
    ) {
        let mut claims = serde_json::Map::new();
        for ((name, value), keep) in CLAIMS.iter().zip(values).zip(present) {
            if keep {
                claims.insert((*name).to_owned(), value);
            }
        }
        claims.insert("iat".into(), json!(iat));
        claims.insert("exp".into(), json!(iat.wrapping_add(lifetime)));
        let token = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
            URL_SAFE_NO_PAD.encode(Value::Object(claims).to_string())
        );
        if let Ok(decoded) = decode(&CLAIM_CACHE, Some(&format!("Bearer {}", token)), 1_800_000_000) {
            prop_assert_eq!(decoded.exp.checked_sub(decoded.iat), Some(LIFETIME_SECONDS));
        }
    }
}
