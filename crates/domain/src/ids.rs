//! Identifiers parsed at the edge: once a value is one of these types it is valid.

use std::fmt;

/// A ten-digit NHS number that passes the Modulus 11 check (spec §9).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NhsNumber([u8; 10]);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NhsNumberError {
    #[error("an NHS number has ten digits")]
    WrongLength,
    #[error("an NHS number has only digits")]
    NotDigits,
    #[error("the NHS number fails the Modulus 11 check")]
    CheckDigit,
}

impl NhsNumber {
    /// Parses ten digits, with or without spaces between them.
    pub fn parse(input: &str) -> Result<Self, NhsNumberError> {
        let mut digits = [0u8; 10];
        let mut n = 0;
        for c in input.trim().chars() {
            if c == ' ' {
                continue;
            }
            let d = c.to_digit(10).ok_or(NhsNumberError::NotDigits)?;
            if n == 10 {
                return Err(NhsNumberError::WrongLength);
            }
            digits[n] = d as u8;
            n += 1;
        }
        if n != 10 {
            return Err(NhsNumberError::WrongLength);
        }
        let sum: u32 = digits[..9]
            .iter()
            .zip((2..=10).rev())
            .map(|(d, w)| u32::from(*d) * w)
            .sum();
        let check = match 11 - sum % 11 {
            11 => 0,
            10 => return Err(NhsNumberError::CheckDigit),
            c => c,
        };
        if check != u32::from(digits[9]) {
            return Err(NhsNumberError::CheckDigit);
        }
        Ok(Self(digits))
    }

    /// The ten digits without spaces, as carried on the wire.
    pub fn as_digits(&self) -> String {
        self.0.iter().map(|d| char::from(b'0' + d)).collect()
    }

    /// The `947 671 9931` form people read.
    pub fn formatted(&self) -> String {
        let s = self.as_digits();
        format!("{} {} {}", &s[0..3], &s[3..6], &s[6..10])
    }
}

impl fmt::Display for NhsNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_digits())
    }
}

/// Deliberately redacted: NHS numbers must never reach a log line through `{:?}`.
impl fmt::Debug for NhsNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NhsNumber(***)")
    }
}

/// An ODS organisation (or site) code: upper-case letters and digits, 3 to 10 characters.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct OdsCode(String);

impl OdsCode {
    pub fn parse(input: &str) -> Option<Self> {
        let s = input.trim();
        let ok = (3..=10).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        ok.then(|| Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for OdsCode {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for OdsCode {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl fmt::Display for OdsCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A Spine accredited system id: a non-empty string of digits (12 in practice).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct Asid(String);

impl Asid {
    pub fn parse(input: &str) -> Option<Self> {
        let ok =
            !input.is_empty() && input.len() <= 32 && input.bytes().all(|b| b.is_ascii_digit());
        ok.then(|| Self(input.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl PartialEq<str> for Asid {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for Asid {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl fmt::Display for Asid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// As its text; read back through `parse`, so a stored code is as valid as a typed one.
impl serde::Serialize for OdsCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for OdsCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        OdsCode::parse(&text).ok_or_else(|| serde::de::Error::custom("not an ODS code"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_numbers_pass_modulus_11() {
        for n in [
            "9476719931",
            "9476718897",
            "9000000173",
            "9999999999",
            "9000000009",
        ] {
            assert!(NhsNumber::parse(n).is_ok(), "{n}");
        }
    }

    #[test]
    fn bad_numbers_fail() {
        assert_eq!(
            NhsNumber::parse("9000000184"),
            Err(NhsNumberError::CheckDigit)
        );
        assert_eq!(
            NhsNumber::parse("1234567890"),
            Err(NhsNumberError::CheckDigit)
        );
        assert_eq!(
            NhsNumber::parse("947671993"),
            Err(NhsNumberError::WrongLength)
        );
        assert_eq!(
            NhsNumber::parse("94767199311"),
            Err(NhsNumberError::WrongLength)
        );
        assert_eq!(
            NhsNumber::parse("94767l9931"),
            Err(NhsNumberError::NotDigits)
        );
    }

    #[test]
    fn spaces_accepted_and_formatted() {
        let n = NhsNumber::parse("947 671 9931").unwrap();
        assert_eq!(n.as_digits(), "9476719931");
        assert_eq!(n.formatted(), "947 671 9931");
        assert_eq!(format!("{n:?}"), "NhsNumber(***)");
    }

    #[test]
    fn ods_and_asid() {
        assert!(OdsCode::parse("GPC001").is_some());
        assert!(OdsCode::parse("gpc001").is_none());
        assert!(OdsCode::parse("GP").is_none());
        assert!(Asid::parse("200000000359").is_some());
        assert!(Asid::parse("20000a").is_none());
        assert!(Asid::parse("").is_none());
    }
}
