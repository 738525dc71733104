//! The one `identifier=system|value` parameter every search takes (spec §5).

use gpc_domain::ProviderError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentifierParam {
    pub system: String,
    pub value: String,
}

fn decode(s: &str) -> Result<String, ProviderError> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| ProviderError::BadRequest("a query parameter is not valid UTF-8".into()))
}

/// Parses a search query: exactly one `identifier`, nothing else but `_format`.
pub fn identifier(query: Option<&str>) -> Result<IdentifierParam, ProviderError> {
    let mut found = None;
    for pair in query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = decode(name)?;
        match name.as_str() {
            "_format" => continue,
            "identifier" => {
                if found.is_some() {
                    return Err(ProviderError::BadRequest(
                        "the identifier parameter may be given only once".into(),
                    ));
                }
                found = Some(decode(value)?);
            }
            other => {
                return Err(ProviderError::BadRequest(format!(
                    "unknown search parameter '{}'; this search takes exactly one 'identifier'",
                    other.chars().take(40).collect::<String>()
                )));
            }
        }
    }
    let raw = found.ok_or_else(|| {
        ProviderError::BadRequest("the search needs an identifier=system|value parameter".into())
    })?;
    let (system, value) = raw.split_once('|').ok_or_else(|| {
        ProviderError::InvalidParameter(
            "the identifier parameter must be system|value; the system is missing".into(),
        )
    })?;
    if system.trim().is_empty() {
        return Err(ProviderError::InvalidParameter(
            "the identifier parameter's system is blank".into(),
        ));
    }
    if value.trim().is_empty() {
        return Err(ProviderError::InvalidParameter(
            "the identifier parameter's value is blank".into(),
        ));
    }
    Ok(IdentifierParam {
        system: system.to_owned(),
        value: value.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_forms() {
        let sys = "http://fhir.nhs.net/Id/nhs-number";
        for q in [
            format!("identifier={sys}|9476719931"),
            format!("identifier={sys}%7C9476719931"),
            format!("identifier={sys}%7c9476719931&_format=xml"),
        ] {
            let p = identifier(Some(&q)).unwrap();
            assert_eq!(p.system, sys);
            assert_eq!(p.value, "9476719931");
        }
    }

    #[test]
    fn refused_forms() {
        let bad = |q: &str| identifier(Some(q)).unwrap_err().catalogue();
        for q in [
            "",
            "Identifier=a|b",
            "identifiers=a|b",
            "nhsNumberParam=a|b",
            "identifier=a|b&identifier=a|b",
            "identifier=a|b&foo=1",
        ] {
            assert_eq!(bad(q).status, 400, "{q}");
        }
        for q in [
            "identifier=9476719931",
            "identifier=|9476719931",
            "identifier=sys|",
        ] {
            let row = bad(q);
            assert_eq!((row.status, row.code), (422, "INVALID_PARAMETER"), "{q}");
        }
    }
}
