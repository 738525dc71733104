//! The narrative `div`: well-formed XHTML without active content (FHIR
//! narrative rules), and its text.
//!
//! Named entities: only the five XML ones (`&lt;` `&gt;` `&amp;` `&quot;`
//! `&apos;`) and numeric character references are accepted. HTML entities
//! such as `&nbsp;` are refused because without a DTD they make the div
//! ill-formed XML, and the same div must also be sent inside FHIR XML.

use quick_xml::NsReader;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::{Namespace, ResolveResult};

use crate::xml_read::{
    MAX_ATTRIBUTES, MAX_XML_DEPTH, XHTML_NS, line_of, resolve_entity, too_many_attributes,
};

/// Elements that are active content, document-level or form controls; FHIR
/// forbids them in a narrative. Compared without regard to case, because a
/// browser rendering the text as HTML would not distinguish `<SCRIPT>`.
const FORBIDDEN_ELEMENTS: &[&str] = &[
    "script", "object", "embed", "iframe", "frame", "frameset", "applet", "form", "input",
    "button", "select", "textarea", "option", "base", "link", "meta", "style", "head", "body",
    "html", "title", "noscript", "svg", "math",
];

/// Elements after or before which rendered text is separated.
const BLOCK_ELEMENTS: &[&str] = &[
    "div",
    "p",
    "br",
    "hr",
    "li",
    "ul",
    "ol",
    "dl",
    "dt",
    "dd",
    "tr",
    "td",
    "th",
    "table",
    "thead",
    "tbody",
    "tfoot",
    "caption",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "blockquote",
    "pre",
];

/// Checks a narrative div (the JSON string of `text.div`) and returns its text
/// content with runs of whitespace collapsed to one space and trimmed.
pub fn div_text(div: &str) -> Result<String, String> {
    if let Some(c) = div.chars().find(|&c| is_forbidden_char(c)) {
        return Err(format!(
            "the div contains the control character U+{:04X}",
            u32::from(c)
        ));
    }
    let mut reader = NsReader::from_str(div);
    reader.config_mut().check_comments = true;
    let mut raw = String::new();
    let mut depth = 0usize;
    let mut seen_root = false;
    loop {
        let (in_xhtml, event) = match reader.read_resolved_event() {
            Ok((ns, event)) => (
                matches!(ns, ResolveResult::Bound(Namespace(n)) if n == XHTML_NS.as_bytes()),
                event,
            ),
            Err(e) => {
                return Err(format!(
                    "the div is not well-formed XML: {e} at line {}",
                    line_of(div, reader.error_position())
                ));
            }
        };
        let opens = matches!(event, Event::Start(_));
        match event {
            Event::Start(e) | Event::Empty(e) if depth == 0 => {
                if seen_root {
                    return Err("the narrative must be a single <div> element".into());
                }
                seen_root = true;
                if e.local_name().as_ref() != b"div" || !in_xhtml {
                    return Err(format!(
                        "the narrative must be a <div> in the XHTML namespace ({XHTML_NS})"
                    ));
                }
                check_element(&e, &reader)?;
                if opens {
                    depth = 1;
                }
            }
            Event::Start(e) | Event::Empty(e) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).into_owned();
                if !in_xhtml {
                    return Err(format!(
                        "the element <{name}> is not in the XHTML namespace"
                    ));
                }
                check_element(&e, &reader)?;
                if is_block(&name) {
                    raw.push(' ');
                }
                if opens {
                    depth += 1;
                    if depth > MAX_XML_DEPTH {
                        return Err(format!("the div nests more than {MAX_XML_DEPTH} levels"));
                    }
                }
            }
            Event::End(e) => {
                depth -= 1;
                if is_block(&String::from_utf8_lossy(e.local_name().as_ref())) {
                    raw.push(' ');
                }
            }
            Event::Text(t) if depth > 0 => {
                let text = t.xml10_content().map_err(|e| e.to_string())?;
                raw.push_str(&text);
            }
            Event::CData(t) if depth > 0 => {
                raw.push_str(&String::from_utf8_lossy(&t));
            }
            Event::GeneralRef(r) if depth > 0 => {
                let name = r.decode().map_err(|e| e.to_string())?;
                raw.push(resolve_entity(&name)?);
            }
            Event::Text(t) if t.iter().all(u8::is_ascii_whitespace) => {}
            Event::Text(_) | Event::CData(_) | Event::GeneralRef(_) => {
                return Err("there is text outside the <div> element".into());
            }
            Event::Comment(_) => {}
            Event::Decl(_) => return Err("an XML declaration is not allowed in a narrative".into()),
            Event::PI(_) => {
                return Err("processing instructions are not allowed in a narrative".into());
            }
            Event::DocType(_) => {
                return Err(
                    "DOCTYPE and entity declarations are not allowed in a narrative".into(),
                );
            }
            Event::Eof => break,
        }
    }
    if !seen_root {
        return Err("the narrative is empty: expected a <div> element".into());
    }
    // The reader stops at the end of the text without complaining about
    // elements left open; such a div would break every XML document it is
    // written into.
    if depth > 0 {
        return Err("the div is not well-formed XML: an element is not closed".into());
    }
    Ok(raw.split_whitespace().collect::<Vec<_>>().join(" "))
}

fn check_element(e: &BytesStart<'_>, reader: &NsReader<&[u8]>) -> Result<(), String> {
    if too_many_attributes(e) {
        return Err(format!(
            "an element has more than {MAX_ATTRIBUTES} attributes"
        ));
    }
    let name = e.local_name();
    let name = String::from_utf8_lossy(name.as_ref());
    if FORBIDDEN_ELEMENTS
        .iter()
        .any(|f| f.eq_ignore_ascii_case(&name))
    {
        return Err(format!(
            "the element <{name}> is not allowed in a narrative"
        ));
    }
    for attr in e.attributes() {
        let attr = attr.map_err(|e| format!("the div is not well-formed XML: {e}"))?;
        if attr.key.as_namespace_binding().is_some() {
            continue;
        }
        let (_, local) = reader.resolve_attribute(attr.key);
        let local = String::from_utf8_lossy(local.as_ref());
        if local.len() > 2 && local[..2].eq_ignore_ascii_case("on") {
            return Err(format!(
                "the event attribute '{local}' is not allowed in a narrative"
            ));
        }
        let value = crate::xml_read::attribute_value(&attr.value)?;
        if is_script_url(&value) {
            return Err(format!("the attribute '{local}' holds a script URL"));
        }
    }
    Ok(())
}

/// `javascript:` and friends, however they are padded or cased.
fn is_script_url(value: &str) -> bool {
    let squeezed: String = value
        .chars()
        .filter(|c| !c.is_whitespace() && !c.is_control())
        .take(16)
        .collect::<String>()
        .to_ascii_lowercase();
    ["javascript:", "vbscript:", "data:text/html"]
        .iter()
        .any(|p| squeezed.starts_with(p))
}

fn is_block(name: &str) -> bool {
    BLOCK_ELEMENTS.iter().any(|b| b.eq_ignore_ascii_case(name))
}

/// Characters XML 1.0 cannot carry at all.
pub(crate) fn is_forbidden_char(c: char) -> bool {
    (c < ' ' && !matches!(c, '\t' | '\n' | '\r')) || c == '\u{FFFE}' || c == '\u{FFFF}'
}

#[cfg(test)]
mod tests {
    use super::div_text;

    const NS: &str = "xmlns=\"http://www.w3.org/1999/xhtml\"";

    #[test]
    fn extracts_text_from_nested_markup() {
        let div = format!(
            "<div {NS}><p>Please <b>review</b> the &lt;meds&gt; caf&#233;</p><ul><li>one</li><li>two</li></ul>\n  </div>"
        );
        assert_eq!(
            div_text(&div).unwrap(),
            "Please review the <meds> café one two"
        );
    }

    #[test]
    fn refuses_active_content() {
        for inner in [
            "<script>alert(1)</script>",
            "<SCRIPT>alert(1)</SCRIPT>",
            "<iframe src=\"x\"/>",
            "<form/>",
            "<p onclick=\"alert(1)\">x</p>",
            "<a href=\" JavaScript:alert(1)\">x</a>",
            "<style>p{}</style>",
        ] {
            let div = format!("<div {NS}>{inner}</div>");
            assert!(div_text(&div).is_err(), "{inner}");
        }
    }

    #[test]
    fn refuses_wrong_root_namespace_and_entities() {
        assert!(div_text("<div>text</div>").is_err());
        assert!(div_text(&format!("<p {NS}>text</p>")).is_err());
        assert!(div_text(&format!("<div {NS}>a</div><div {NS}>b</div>")).is_err());
        assert!(div_text(&format!("<div {NS}>a&nbsp;b</div>")).is_err());
        assert!(div_text(&format!("<div {NS}>a<p>b</div>")).is_err());
        assert!(div_text(&format!("<div {NS}>a<div>")).is_err());
        assert!(div_text(&format!("<div {NS}>a")).is_err());
        assert!(div_text(&format!("<div {NS}><p>a</p>")).is_err());
        assert!(div_text(&format!("<!DOCTYPE div><div {NS}>a</div>")).is_err());
        assert!(
            div_text(&format!(
                "<div {NS}><x:p xmlns:x=\"urn:other\">a</x:p></div>"
            ))
            .is_err()
        );
        assert!(div_text("").is_err());
        assert!(div_text(&format!("<div {NS}>a\u{1}</div>")).is_err());
    }

    #[test]
    fn empty_div_has_empty_text() {
        assert_eq!(div_text(&format!("<div {NS}/>")).unwrap(), "");
        assert_eq!(div_text(&format!("<div {NS}> <br/> </div>")).unwrap(), "");
    }

    #[test]
    fn deep_nesting_is_refused() {
        let div = format!(
            "<div {NS}>{}x{}</div>",
            "<span>".repeat(100),
            "</span>".repeat(100)
        );
        assert!(div_text(&div).is_err());
    }
}
