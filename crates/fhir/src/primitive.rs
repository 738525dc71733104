//! Lexical rules of DSTU2 primitive types and of `Reference.reference`,
//! written as small byte scanners so the hot path needs no regex engine.

use crate::schema::Prim;

/// Whether `s` is a valid lexical form of a string-typed primitive.
/// Numbers and booleans are JSON-typed and checked elsewhere.
pub(crate) fn lexical_ok(prim: Prim, s: &str) -> bool {
    match prim {
        Prim::String | Prim::Markdown => true,
        Prim::Code => is_code(s),
        Prim::Id => is_id(s),
        Prim::Uri => !s.chars().any(char::is_whitespace),
        Prim::Oid => is_oid(s),
        Prim::Base64Binary => is_base64(s),
        Prim::Date => is_date(s),
        Prim::DateTime => is_date_time(s, false),
        Prim::Instant => is_date_time(s, true),
        Prim::Time => is_time(s.as_bytes()),
        Prim::Boolean => s == "true" || s == "false",
        Prim::Integer | Prim::UnsignedInt | Prim::PositiveInt => is_integer(s),
        Prim::Decimal => is_decimal(s),
    }
}

/// The human name of a primitive type, for messages.
pub(crate) fn name(prim: Prim) -> &'static str {
    match prim {
        Prim::Boolean => "boolean",
        Prim::Integer => "integer",
        Prim::UnsignedInt => "unsignedInt",
        Prim::PositiveInt => "positiveInt",
        Prim::Decimal => "decimal",
        Prim::String => "string",
        Prim::Code => "code",
        Prim::Id => "id",
        Prim::Uri => "uri",
        Prim::Oid => "oid",
        Prim::Markdown => "markdown",
        Prim::Base64Binary => "base64Binary",
        Prim::Date => "date",
        Prim::DateTime => "dateTime",
        Prim::Instant => "instant",
        Prim::Time => "time",
    }
}

/// `[^\s]+([\s]?[^\s]+)*`: no leading, trailing or doubled whitespace.
fn is_code(s: &str) -> bool {
    let mut prev_space = true;
    for c in s.chars() {
        let space = c.is_whitespace();
        if space && prev_space {
            return false;
        }
        prev_space = space;
    }
    !prev_space
}

/// `[A-Za-z0-9\-\.]{1,64}`
pub(crate) fn is_id(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
}

/// `urn:oid:[0-2](\.[1-9]\d*)+`
fn is_oid(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("urn:oid:") else {
        return false;
    };
    let mut arcs = rest.split('.');
    let first_ok = matches!(arcs.next(), Some("0" | "1" | "2"));
    let mut count = 0;
    let rest_ok = arcs.all(|arc| {
        count += 1;
        let b = arc.as_bytes();
        !b.is_empty() && b[0] != b'0' && b.iter().all(u8::is_ascii_digit)
    });
    first_ok && rest_ok && count > 0
}

/// Base64 alphabet with optional whitespace, in whole quanta.
fn is_base64(s: &str) -> bool {
    let mut n = 0usize;
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'+' | b'/' | b'=' => n += 1,
            b' ' | b'\t' | b'\r' | b'\n' => {}
            _ => return false,
        }
    }
    n.is_multiple_of(4)
}

/// `-?([0]|([1-9][0-9]*))`
fn is_integer(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s).as_bytes();
    match digits {
        [] => false,
        [b'0'] => true,
        [first, ..] => *first != b'0' && digits.iter().all(u8::is_ascii_digit),
    }
}

/// `-?([0]|([1-9][0-9]*))(\.[0-9]+)?`, plus an optional exponent, which JSON allows.
fn is_decimal(s: &str) -> bool {
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (mantissa, None),
    };
    let frac_ok = frac.is_none_or(|f| !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()));
    let exp_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && e.bytes().all(|b| b.is_ascii_digit())
    });
    is_integer(int) && frac_ok && exp_ok
}

fn two_digits(b: &[u8]) -> Option<u32> {
    match b {
        [a, b] if a.is_ascii_digit() && b.is_ascii_digit() => {
            Some(u32::from(a - b'0') * 10 + u32::from(b - b'0'))
        }
        _ => None,
    }
}

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        2 if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `YYYY`, `YYYY-MM` or `YYYY-MM-DD`, with a real calendar day. Returns the
/// number of bytes consumed and whether the full date was present.
fn date_prefix(b: &[u8]) -> Option<(usize, bool)> {
    if b.len() < 4 || !b[..4].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let year = b[..4]
        .iter()
        .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'));
    if b.len() == 4 || b[4] != b'-' {
        return Some((4, false));
    }
    let month = two_digits(b.get(5..7)?)?;
    if !(1..=12).contains(&month) {
        return None;
    }
    if b.len() == 7 || b[7] != b'-' {
        return Some((7, false));
    }
    let day = two_digits(b.get(8..10)?)?;
    if day == 0 || day > days_in_month(year, month) {
        return None;
    }
    Some((10, true))
}

fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    date_prefix(b).is_some_and(|(n, _)| n == b.len())
}

/// `hh:mm:ss(.s+)?`
fn is_time(b: &[u8]) -> bool {
    let hms = |r: std::ops::Range<usize>, max: u32| {
        b.get(r).and_then(two_digits).is_some_and(|v| v <= max)
    };
    if b.len() < 8 || !hms(0..2, 23) || b[2] != b':' || !hms(3..5, 59) || b[5] != b':' {
        return false;
    }
    if !hms(6..8, 59) {
        return false;
    }
    match &b[8..] {
        [] => true,
        [b'.', frac @ ..] => !frac.is_empty() && frac.iter().all(u8::is_ascii_digit),
        _ => false,
    }
}

/// DSTU2 dateTime: a partial date, or a full date with `Thh:mm:ss(.s+)?` and
/// a zone. An instant must have the time part.
fn is_date_time(s: &str, instant: bool) -> bool {
    let b = s.as_bytes();
    let Some((n, full)) = date_prefix(b) else {
        return false;
    };
    if n == b.len() {
        return !instant;
    }
    if !full || b[n] != b'T' {
        return false;
    }
    let rest = &b[n + 1..];
    let zone_at = rest.iter().position(|&c| matches!(c, b'Z' | b'+' | b'-'));
    let Some(z) = zone_at else { return false };
    is_time(&rest[..z]) && is_zone(&rest[z..])
}

/// `Z` or `(+|-)hh:mm` up to 14:00.
fn is_zone(b: &[u8]) -> bool {
    match b {
        [b'Z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => {
            let (Some(h), Some(m)) = (two_digits(&[*h1, *h2]), two_digits(&[*m1, *m2])) else {
                return false;
            };
            (h < 14 && m <= 59) || (h == 14 && m == 0)
        }
        _ => false,
    }
}

/// `Reference.reference`: a relative `Type/id` (optionally `/_history/vid`),
/// an absolute URL (`scheme:` then no whitespace) or a local `#id`.
pub(crate) fn is_reference(s: &str) -> bool {
    if let Some(local) = s.strip_prefix('#') {
        return is_id(local);
    }
    if let Some(colon) = s.find(':') {
        let scheme = &s[..colon];
        let scheme_ok = scheme
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic())
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'.' | b'-'));
        let rest = &s[colon + 1..];
        return scheme_ok && !rest.is_empty() && !s.chars().any(char::is_whitespace);
    }
    let mut parts = s.split('/');
    let (Some(ty), Some(id)) = (parts.next(), parts.next()) else {
        return false;
    };
    let ty_ok = ty.bytes().next().is_some_and(|b| b.is_ascii_uppercase())
        && ty.bytes().all(|b| b.is_ascii_alphabetic());
    let history_ok = match (parts.next(), parts.next(), parts.next()) {
        (None, _, _) => true,
        (Some("_history"), Some(vid), None) => is_id(vid),
        _ => false,
    };
    ty_ok && is_id(id) && history_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        for ok in ["2026", "2026-11", "2026-11-25", "2024-02-29"] {
            assert!(is_date(ok), "{ok}");
        }
        for bad in [
            "2026-13-01",
            "2026-02-30",
            "2023-02-29",
            "26-01-01",
            "2026-1-01",
            "",
            "2026-11-25T10:00:00Z",
        ] {
            assert!(!is_date(bad), "{bad}");
        }
    }

    #[test]
    fn date_times_and_instants() {
        for ok in [
            "2026",
            "2026-11-25",
            "2026-11-25T10:11:12Z",
            "2026-11-25T10:11:12.345+01:00",
            "2026-11-25T23:59:59-14:00",
        ] {
            assert!(is_date_time(ok, false), "{ok}");
        }
        for bad in [
            "2026-11-25T10:11Z",
            "2026-11-25T10:11:12",
            "2026-11T10:11:12Z",
            "2026-11-25T24:00:00Z",
            "2026-11-25T10:11:12+15:00",
            "2026-11-25 10:11:12Z",
        ] {
            assert!(!is_date_time(bad, false), "{bad}");
        }
        assert!(is_date_time("2026-11-25T10:11:12Z", true));
        assert!(!is_date_time("2026-11-25", true));
    }

    #[test]
    fn simple_types() {
        assert!(is_code("Task Narrative"));
        assert!(!is_code(" a") && !is_code("a ") && !is_code("a  b") && !is_code(""));
        assert!(is_id("ad6a2e86-37a8-43c9-b0ae-f2adcff4de3a"));
        assert!(!is_id("a_b") && !is_id(&"a".repeat(65)));
        assert!(is_oid("urn:oid:2.16.840.1.113883"));
        assert!(!is_oid("urn:oid:3.1") && !is_oid("urn:oid:1.01") && !is_oid("urn:oid:1"));
        assert!(is_base64("aGVsbG8=") && !is_base64("aGVsbG8") && !is_base64("a$b="));
        assert!(is_time(b"10:11:12.5") && !is_time(b"10:11"));
        assert!(
            is_decimal("-0.50") && is_decimal("1e3") && !is_decimal("01.5") && !is_decimal("1.")
        );
        assert!(is_integer("-12") && !is_integer("012") && !is_integer("1.0"));
    }

    #[test]
    fn references() {
        for ok in [
            "Patient/1",
            "Organization/7/_history/2",
            "#ad6a2e86",
            "http://example.org/fhir/Patient/1",
            "urn:uuid:6f1c2f0e-5d5b-4d6e-9a3e-2b1c0f9d7a11",
        ] {
            assert!(is_reference(ok), "{ok}");
        }
        for bad in [
            "Patient 1",
            "Patient/",
            "patient/1",
            "Patient/1/2",
            "#",
            "1",
            "http://a b",
            ":x",
        ] {
            assert!(!is_reference(bad), "{bad}");
        }
    }
}
