//! The subject common name of an X.509 certificate, read straight from its
//! DER. Only certificates that rustls has already verified against the CA
//! reach this, so a small reader of the few structures on the way to the
//! subject is enough; a full X.509 parser would be a large dependency for one
//! string.

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
const VERSION: u8 = 0xA0;
const UTF8_STRING: u8 = 0x0C;
const PRINTABLE_STRING: u8 = 0x13;
const IA5_STRING: u8 = 0x16;
/// 2.5.4.3, id-at-commonName.
const COMMON_NAME: [u8; 3] = [0x55, 0x04, 0x03];

/// One TLV: its tag, its content and what follows it.
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let tag = *input.first()?;
    let first = *input.get(1)?;
    let (len, header) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        // DER allows up to 4 length bytes here; anything longer is not a certificate.
        let n = usize::from(first & 0x7F);
        if n == 0 || n > 4 {
            return None;
        }
        let bytes = input.get(2..2 + n)?;
        let len = bytes.iter().try_fold(0usize, |acc, b| {
            acc.checked_mul(256)?.checked_add(usize::from(*b))
        })?;
        (len, 2 + n)
    };
    let end = header.checked_add(len)?;
    Some((tag, input.get(header..end)?, input.get(end..)?))
}

fn expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (t, content, rest) = tlv(input)?;
    (t == tag).then_some((content, rest))
}

fn skip(input: &[u8]) -> Option<&[u8]> {
    tlv(input).map(|(_, _, rest)| rest)
}

/// The first commonName of the certificate's subject, if it is a text string.
pub fn common_name(der: &[u8]) -> Option<String> {
    let (certificate, _) = expect(der, SEQUENCE)?;
    let (tbs, _) = expect(certificate, SEQUENCE)?;
    let mut rest = tbs;
    if rest.first() == Some(&VERSION) {
        rest = skip(rest)?;
    }
    // serialNumber, signature, issuer, validity
    for _ in 0..4 {
        rest = skip(rest)?;
    }
    let (mut rdns, _) = expect(rest, SEQUENCE)?;
    while !rdns.is_empty() {
        let (mut attributes, next) = expect(rdns, SET)?;
        rdns = next;
        while !attributes.is_empty() {
            let (attribute, next) = expect(attributes, SEQUENCE)?;
            attributes = next;
            let (oid, value) = expect(attribute, OID)?;
            if oid == COMMON_NAME {
                let (tag, text, _) = tlv(value)?;
                return matches!(tag, UTF8_STRING | PRINTABLE_STRING | IA5_STRING)
                    .then(|| String::from_utf8(text.to_vec()).ok())
                    .flatten();
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::certs::{DevCa, Validity};

    #[test]
    fn reads_the_common_name_of_a_generated_certificate() {
        let ca = DevCa::new("test CA").unwrap();
        let issued = ca
            .issue("200000000359", Some("GPC001"), Validity::current())
            .unwrap();
        assert_eq!(common_name(issued.der()).as_deref(), Some("200000000359"));
        assert_eq!(common_name(ca.der()).as_deref(), Some("test CA"));
    }

    #[test]
    fn garbage_is_no_name() {
        for bytes in [
            &[][..],
            &[0x30],
            &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff],
            &[0x30, 0x85, 1, 1, 1, 1, 1],
            &[0x30, 0x03, 0x30, 0x01, 0x00],
            &[0x31, 0x00],
        ] {
            assert_eq!(common_name(bytes), None, "{bytes:?}");
        }
    }

    #[test]
    fn truncated_certificates_are_no_name() {
        let ca = DevCa::new("test CA").unwrap();
        let der = ca.der();
        for len in 0..der.len() {
            assert_eq!(common_name(&der[..len]), None, "{len}");
        }
    }
}
