//! FHIR DSTU2 XML → FHIR JSON, driven by the schema tables.
//!
//! Decisions where FHIR XML is broken rather than merely invalid FHIR:
//! - a DOCTYPE (so any entity declaration), an entity reference other than the
//!   five XML ones or a numeric character reference, text content in a FHIR
//!   element, an attribute the element does not define, or an element outside
//!   the FHIR namespace (other than the XHTML narrative `div`) is a
//!   [`ParseError`]; nothing is ever expanded or fetched;
//! - an unknown element in the FHIR namespace is not dropped: it is mapped
//!   into the JSON under its own name (a string for `<x value=".."/>`, an
//!   object otherwise) so that validation reports it as an unknown element;
//! - a malformed primitive value is kept as a JSON string, so validation
//!   reports it exactly as it would for JSON input;
//! - `xsi:*` attributes (`xsi:schemaLocation` in published examples) are
//!   tolerated on a resource element and carry no data.

use quick_xml::NsReader;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::{Namespace, ResolveResult};
use serde_json::{Map, Number, Value};

use crate::error::ParseError;
use crate::primitive;
use crate::schema::{ElementDef, Kind, Prim, Ty};

pub(crate) const FHIR_NS: &str = "http://hl7.org/fhir";
pub(crate) const XHTML_NS: &str = "http://www.w3.org/1999/xhtml";
const XSI_NS: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// Element nesting allowed in a body, the narrative included.
pub(crate) const MAX_XML_DEPTH: usize = 64;

/// Attributes allowed on one element. Duplicate detection and namespace
/// lookups in the XML reader are linear per attribute or binding, so an
/// unbounded count would make parsing quadratic.
pub(crate) const MAX_ATTRIBUTES: usize = 64;

/// Distinct child element names allowed in one element; no DSTU2 type comes
/// near it, and it keeps the name grouping in [`Fields`] linear.
const MAX_DISTINCT_CHILDREN: usize = 256;

/// Whether an element carries more than [`MAX_ATTRIBUTES`] attributes, counted
/// without the reader's quadratic duplicate check.
pub(crate) fn too_many_attributes(e: &BytesStart<'_>) -> bool {
    e.attributes()
        .with_checks(false)
        .take(MAX_ATTRIBUTES + 1)
        .count()
        > MAX_ATTRIBUTES
}

/// Parses a FHIR XML resource into its JSON form.
pub fn from_xml(xml: &str) -> Result<Value, ParseError> {
    let xml = xml.strip_prefix('\u{FEFF}').unwrap_or(xml);
    let mut reader = XmlReader::new(xml);
    let root = loop {
        let (ns, event) = reader.next()?;
        match event {
            Event::Decl(decl) => {
                if let Some(Ok(encoding)) = decl.encoding()
                    && !encoding.eq_ignore_ascii_case(b"utf-8")
                    && !encoding.eq_ignore_ascii_case(b"utf8")
                {
                    return Err(reader.error(format!(
                        "the XML declares the encoding {}; only UTF-8 is supported",
                        String::from_utf8_lossy(&encoding)
                    )));
                }
            }
            Event::Start(e) => break reader.root(&ns, &e, false)?,
            Event::Empty(e) => break reader.root(&ns, &e, true)?,
            Event::Eof => return Err(reader.error("the XML body has no root element")),
            other => reader.misc(&other, "before the root element")?,
        }
    };
    loop {
        let (_, event) = reader.next()?;
        match event {
            Event::Eof => return Ok(root),
            Event::Start(_) | Event::Empty(_) => {
                return Err(reader.error("the XML body has more than one root element"));
            }
            other => reader.misc(&other, "after the root element")?,
        }
    }
}

/// Where an element's name is bound.
#[derive(Debug, PartialEq, Eq)]
enum Ns {
    Fhir,
    Xhtml,
    Xsi,
    None,
    Other(String),
}

impl Ns {
    fn of(resolved: &ResolveResult<'_>) -> Ns {
        match resolved {
            ResolveResult::Bound(Namespace(ns)) => match *ns {
                n if n == FHIR_NS.as_bytes() => Ns::Fhir,
                n if n == XHTML_NS.as_bytes() => Ns::Xhtml,
                n if n == XSI_NS.as_bytes() => Ns::Xsi,
                n => Ns::Other(String::from_utf8_lossy(n).into_owned()),
            },
            ResolveResult::Unbound => Ns::None,
            ResolveResult::Unknown(prefix) => Ns::Other(format!(
                "undeclared prefix '{}'",
                String::from_utf8_lossy(prefix)
            )),
        }
    }

    fn describe(&self) -> String {
        match self {
            Ns::Fhir => FHIR_NS.into(),
            Ns::Xhtml => XHTML_NS.into(),
            Ns::Xsi => XSI_NS.into(),
            Ns::None => "no namespace".into(),
            Ns::Other(ns) => ns.clone(),
        }
    }
}

struct XmlReader<'i> {
    reader: NsReader<&'i [u8]>,
    src: &'i str,
    depth: usize,
}

impl<'i> XmlReader<'i> {
    fn new(src: &'i str) -> Self {
        let mut reader = NsReader::from_str(src);
        reader.config_mut().check_comments = true;
        XmlReader {
            reader,
            src,
            depth: 0,
        }
    }

    fn position(&self) -> usize {
        usize::try_from(self.reader.buffer_position()).unwrap_or(usize::MAX)
    }

    fn error(&self, message: impl std::fmt::Display) -> ParseError {
        let line = line_of(self.src, self.reader.buffer_position());
        ParseError::new(format!("{message} (at line {line})"))
    }

    /// The next event with its element namespace, keeping the depth count.
    fn next(&mut self) -> Result<(Ns, Event<'i>), ParseError> {
        let (ns, event) = match self.reader.read_resolved_event() {
            Ok((resolved, event)) => (Ns::of(&resolved), event),
            Err(e) => {
                let line = line_of(self.src, self.reader.error_position());
                return Err(ParseError::new(format!(
                    "the body is not well-formed XML: {e} at line {line}"
                )));
            }
        };
        match &event {
            Event::Start(e) | Event::Empty(e) => {
                if too_many_attributes(e) {
                    return Err(self.error(format!(
                        "an element has more than {MAX_ATTRIBUTES} attributes"
                    )));
                }
                if self.depth >= MAX_XML_DEPTH {
                    return Err(self.error(format!(
                        "the XML body nests elements more than {MAX_XML_DEPTH} levels deep"
                    )));
                }
                if matches!(event, Event::Start(_)) {
                    self.depth += 1;
                }
            }
            Event::End(_) => self.depth = self.depth.saturating_sub(1),
            _ => {}
        }
        Ok((ns, event))
    }

    /// Whitespace, comments and processing instructions pass; anything else
    /// where `where_` says no content belongs is refused.
    fn misc(&self, event: &Event<'_>, where_: &str) -> Result<(), ParseError> {
        match event {
            Event::Comment(_) | Event::PI(_) => Ok(()),
            Event::Text(t) if is_xml_whitespace(t) => Ok(()),
            Event::DocType(_) => Err(self.error(
                "the XML body has a DOCTYPE declaration; DTDs and entity declarations are refused",
            )),
            Event::Decl(_) => Err(self.error("the XML declaration is misplaced")),
            Event::GeneralRef(r) => Err(self.error(format!(
                "unexpected entity reference &{}; {where_}",
                String::from_utf8_lossy(r)
            ))),
            _ => Err(self.error(format!("unexpected text {where_}"))),
        }
    }

    fn root(&mut self, ns: &Ns, e: &BytesStart<'_>, empty: bool) -> Result<Value, ParseError> {
        let name = local_name(e);
        if *ns != Ns::Fhir {
            return Err(self.error(format!(
                "the root element <{name}> is not in the FHIR namespace ({FHIR_NS})"
            )));
        }
        if !name.starts_with(|c: char| c.is_ascii_uppercase()) {
            return Err(self.error(format!("the root element <{name}> is not a FHIR resource")));
        }
        self.resource(&name, e, empty)
    }

    fn resource(
        &mut self,
        name: &str,
        e: &BytesStart<'_>,
        empty: bool,
    ) -> Result<Value, ParseError> {
        for attr in e.attributes() {
            let attr =
                attr.map_err(|err| self.error(format!("bad attribute on <{name}>: {err}")))?;
            if attr.key.as_namespace_binding().is_some() {
                continue;
            }
            let (resolved, local) = self.reader.resolve_attribute(attr.key);
            if Ns::of(&resolved) != Ns::Xsi {
                let local = String::from_utf8_lossy(local.as_ref()).into_owned();
                return Err(self.error(format!("unknown attribute '{local}' on <{name}>")));
            }
        }
        let mut fields = Fields::default();
        fields.push_scalar("resourceType", Value::String(name.to_owned()));
        if !empty {
            self.children(Ty::resource(name), &mut fields, name)?;
        }
        Ok(fields.finish())
    }

    /// Reads child elements up to the parent's end tag.
    fn children(
        &mut self,
        ty: Option<Ty>,
        fields: &mut Fields,
        parent: &str,
    ) -> Result<(), ParseError> {
        loop {
            let start = self.position();
            let (ns, event) = self.next()?;
            let (e, empty) = match event {
                Event::Start(e) => (e, false),
                Event::Empty(e) => (e, true),
                Event::End(_) => return Ok(()),
                Event::Eof => {
                    return Err(self.error(format!("the XML body ends inside <{parent}>")));
                }
                Event::Text(ref t) if !is_xml_whitespace(t) => {
                    return Err(self.error(format!(
                        "unexpected text inside <{parent}>: FHIR values belong in value attributes"
                    )));
                }
                other => {
                    self.misc(&other, &format!("inside <{parent}>"))?;
                    continue;
                }
            };
            let name = local_name(&e);
            match ty.and_then(|t| t.find(&name)) {
                Some(def) if def.attr => {
                    return Err(self.error(format!(
                        "<{name}> must be an attribute of <{parent}>, not an element"
                    )));
                }
                Some(def) => {
                    let (wanted, label) = match def.kind {
                        Kind::Xhtml => (Ns::Xhtml, "XHTML"),
                        _ => (Ns::Fhir, "FHIR"),
                    };
                    if ns != wanted {
                        return Err(self.error(format!(
                            "<{name}> must be in the {label} namespace ({}), not {}",
                            wanted.describe(),
                            ns.describe()
                        )));
                    }
                    let (value, companion) = self.element(def, &e, empty, start, &name)?;
                    fields.push(def.name, value, companion, def.many);
                }
                None => {
                    if ns != Ns::Fhir {
                        return Err(self.error(format!(
                            "<{name}> must be in the FHIR namespace ({FHIR_NS}), not {}",
                            ns.describe()
                        )));
                    }
                    let value = self.unknown(&e, empty, &name)?;
                    fields.push(&name, Some(value), None, false);
                }
            }
            if fields.entries.len() > MAX_DISTINCT_CHILDREN {
                return Err(self.error(format!(
                    "<{parent}> has more than {MAX_DISTINCT_CHILDREN} different child elements"
                )));
            }
        }
    }

    /// One known element: its JSON value and, for primitives, its `_name` companion.
    fn element(
        &mut self,
        def: &ElementDef,
        e: &BytesStart<'_>,
        empty: bool,
        start: usize,
        name: &str,
    ) -> Result<(Option<Value>, Option<Value>), ParseError> {
        match def.kind {
            Kind::Prim(prim) => {
                let mut value = None;
                let mut companion = Fields::default();
                for (key, text) in self.attributes(e, name)? {
                    match key.as_str() {
                        "value" => value = Some(prim_value(prim, text)),
                        "id" => companion.push_scalar("id", Value::String(text)),
                        _ => {
                            return Err(
                                self.error(format!("unknown attribute '{key}' on <{name}>"))
                            );
                        }
                    }
                }
                if !empty {
                    self.children(Some(Ty::PrimitiveExtension), &mut companion, name)?;
                }
                let companion = (!companion.is_empty()).then(|| companion.finish());
                if value.is_none() && companion.is_none() {
                    // `<date/>`: validation reports the missing value as null.
                    value = Some(Value::Null);
                }
                Ok((value, companion))
            }
            Kind::Xhtml => {
                if !empty {
                    self.skip_div()?;
                }
                let end = self.position();
                let raw = self.src.get(start..end).unwrap_or_default();
                Ok((Some(Value::String(raw.to_owned())), None))
            }
            Kind::Complex(ty) => {
                let mut fields = Fields::default();
                for (key, text) in self.attributes(e, name)? {
                    match ty.find(&key).filter(|d| d.attr) {
                        Some(&ElementDef {
                            kind: Kind::Prim(prim),
                            name,
                            ..
                        }) => {
                            fields.push_scalar(name, prim_value(prim, text));
                        }
                        _ => {
                            return Err(
                                self.error(format!("unknown attribute '{key}' on <{name}>"))
                            );
                        }
                    }
                }
                if !empty {
                    self.children(Some(ty), &mut fields, name)?;
                }
                Ok((Some(fields.finish()), None))
            }
            Kind::Contained | Kind::Resource => {
                if let Some((key, _)) = self.attributes(e, name)?.into_iter().next() {
                    return Err(self.error(format!("unknown attribute '{key}' on <{name}>")));
                }
                if empty {
                    return Err(self.error(format!("<{name}> is empty: it must hold a resource")));
                }
                Ok((Some(self.wrapped(name)?), None))
            }
        }
    }

    /// `<contained><Basic>…</Basic></contained>`: exactly one resource inside.
    fn wrapped(&mut self, wrapper: &str) -> Result<Value, ParseError> {
        let mut resource = None;
        loop {
            let (ns, event) = self.next()?;
            let (e, empty) = match event {
                Event::Start(e) => (e, false),
                Event::Empty(e) => (e, true),
                Event::End(_) => break,
                Event::Eof => {
                    return Err(self.error(format!("the XML body ends inside <{wrapper}>")));
                }
                other => {
                    self.misc(&other, &format!("inside <{wrapper}>"))?;
                    continue;
                }
            };
            let name = local_name(&e);
            if resource.is_some() {
                return Err(self.error(format!("<{wrapper}> must hold exactly one resource")));
            }
            if ns != Ns::Fhir || !name.starts_with(|c: char| c.is_ascii_uppercase()) {
                return Err(self.error(format!(
                    "<{wrapper}> must hold a FHIR resource, not <{name}>"
                )));
            }
            resource = Some(self.resource(&name, &e, empty)?);
        }
        resource.ok_or_else(|| self.error(format!("<{wrapper}> is empty: it must hold a resource")))
    }

    /// An element the schema does not know, kept so validation can name it.
    fn unknown(
        &mut self,
        e: &BytesStart<'_>,
        empty: bool,
        name: &str,
    ) -> Result<Value, ParseError> {
        let mut fields = Fields::default();
        let mut value = None;
        for (key, text) in self.attributes(e, name)? {
            if key == "value" {
                value = Some(text);
            } else {
                fields.push_scalar(&key, Value::String(text));
            }
        }
        if !empty {
            self.children(None, &mut fields, name)?;
        }
        Ok(match value {
            Some(text) if fields.is_empty() => Value::String(text),
            Some(text) => {
                fields.push_scalar("value", Value::String(text));
                fields.finish()
            }
            None => fields.finish(),
        })
    }

    /// Consumes a narrative div up to its end tag; its markup is kept verbatim
    /// by the caller and checked in full by validation.
    fn skip_div(&mut self) -> Result<(), ParseError> {
        let mut level = 1usize;
        loop {
            let (_, event) = self.next()?;
            match event {
                Event::Start(_) => level += 1,
                Event::End(_) => {
                    level -= 1;
                    if level == 0 {
                        return Ok(());
                    }
                }
                Event::GeneralRef(r) => {
                    let name = String::from_utf8_lossy(&r).into_owned();
                    resolve_entity(&name).map_err(|m| self.error(m))?;
                }
                Event::Eof => return Err(self.error("the XML body ends inside the narrative div")),
                Event::DocType(_) | Event::Decl(_) => {
                    self.misc(&event, "inside the narrative div")?
                }
                _ => {}
            }
        }
    }

    /// The element's attributes other than namespace declarations, unescaped.
    fn attributes(
        &self,
        e: &BytesStart<'_>,
        name: &str,
    ) -> Result<Vec<(String, String)>, ParseError> {
        let mut out = Vec::new();
        for attr in e.attributes() {
            let attr =
                attr.map_err(|err| self.error(format!("bad attribute on <{name}>: {err}")))?;
            if attr.key.as_namespace_binding().is_some() {
                continue;
            }
            let key = String::from_utf8_lossy(attr.key.as_ref()).into_owned();
            let value = attribute_value(&attr.value)
                .map_err(|m| self.error(format!("attribute '{key}' of <{name}>: {m}")))?;
            out.push((key, value));
        }
        Ok(out)
    }
}

/// JSON keys of one object in document order, gathering repeats into arrays.
#[derive(Default)]
struct Fields {
    entries: Vec<Entry>,
}

struct Entry {
    name: String,
    values: Vec<Option<Value>>,
    companions: Vec<Option<Value>>,
    many: bool,
}

impl Fields {
    fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn push_scalar(&mut self, name: &str, value: Value) {
        self.push(name, Some(value), None, false);
    }

    fn push(&mut self, name: &str, value: Option<Value>, companion: Option<Value>, many: bool) {
        let i = match self.entries.iter().position(|e| e.name == name) {
            Some(i) => i,
            None => {
                self.entries.push(Entry {
                    name: name.to_owned(),
                    values: Vec::with_capacity(1),
                    companions: Vec::new(),
                    many,
                });
                self.entries.len() - 1
            }
        };
        let entry = &mut self.entries[i];
        entry.values.push(value);
        entry.companions.push(companion);
    }

    fn finish(self) -> Value {
        let mut map = Map::with_capacity(self.entries.len());
        for entry in self.entries {
            let has_companion = entry.companions.iter().any(Option::is_some);
            let has_value = entry.values.iter().any(Option::is_some);
            let key = if has_companion {
                format!("_{}", entry.name)
            } else {
                String::new()
            };
            if entry.many || entry.values.len() > 1 {
                if has_value {
                    let values = entry.values.into_iter().map(Option::unwrap_or_default);
                    map.insert(entry.name, Value::Array(values.collect()));
                }
                if has_companion {
                    let companions = entry.companions.into_iter().map(Option::unwrap_or_default);
                    map.insert(key, Value::Array(companions.collect()));
                }
            } else {
                let value = entry.values.into_iter().next().flatten();
                let companion = entry.companions.into_iter().next().flatten();
                if let Some(value) = value {
                    map.insert(entry.name, value);
                }
                if let Some(companion) = companion {
                    map.insert(key, companion);
                }
            }
        }
        Value::Object(map)
    }
}

/// The JSON form of a primitive's lexical value: booleans and numbers typed
/// by the schema; anything malformed stays a string for validation to report.
fn prim_value(prim: Prim, text: String) -> Value {
    match prim {
        Prim::Boolean => match text.as_str() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => Value::String(text),
        },
        Prim::Integer | Prim::UnsignedInt | Prim::PositiveInt => match text.parse::<i64>() {
            Ok(n) if primitive::lexical_ok(prim, &text) => Value::Number(n.into()),
            _ => Value::String(text),
        },
        Prim::Decimal if primitive::lexical_ok(prim, &text) => {
            match serde_json::from_str::<Number>(&text) {
                Ok(n) => Value::Number(n),
                Err(_) => Value::String(text),
            }
        }
        _ => Value::String(text),
    }
}

/// An attribute value as XML defines it: literal whitespace normalised to
/// spaces, then references resolved (predefined entities and character
/// references only).
pub(crate) fn attribute_value(raw: &[u8]) -> Result<String, String> {
    let raw = std::str::from_utf8(raw).map_err(|_| "the value is not valid UTF-8".to_owned())?;
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(i) = rest.find(['&', '\r', '\n', '\t']) {
        out.push_str(&rest[..i]);
        let c = rest.as_bytes()[i];
        if c == b'&' {
            let Some(len) = rest[i..].find(';') else {
                return Err("a '&' is not followed by an entity name and ';'".into());
            };
            out.push(resolve_entity(&rest[i + 1..i + len])?);
            rest = &rest[i + len + 1..];
        } else {
            // CR LF is one line end, so one space.
            let skip = if rest[i..].starts_with("\r\n") { 2 } else { 1 };
            out.push(' ');
            rest = &rest[i + skip..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Resolves the name between `&` and `;`: the five XML entities and numeric
/// character references; everything else is refused, never looked up.
pub(crate) fn resolve_entity(name: &str) -> Result<char, String> {
    let refused = || {
        format!(
            "the entity &{name}; is not allowed: only &lt; &gt; &amp; &quot; &apos; and numeric character references are accepted"
        )
    };
    match name {
        "lt" => Ok('<'),
        "gt" => Ok('>'),
        "amp" => Ok('&'),
        "quot" => Ok('"'),
        "apos" => Ok('\''),
        _ => {
            let number = name.strip_prefix('#').ok_or_else(refused)?;
            let code = match number.strip_prefix('x') {
                Some(hex) if hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
                    u32::from_str_radix(hex, 16)
                }
                None if number.bytes().all(|b| b.is_ascii_digit()) => number.parse(),
                _ => return Err(format!("&{name}; is not a valid character reference")),
            };
            match code.ok().and_then(char::from_u32) {
                Some(c) if !crate::narrative::is_forbidden_char(c) && c != '\0' => Ok(c),
                _ => Err(format!("&{name}; refers to a character XML does not allow")),
            }
        }
    }
}

fn local_name(e: &BytesStart<'_>) -> String {
    String::from_utf8_lossy(e.local_name().as_ref()).into_owned()
}

fn is_xml_whitespace(bytes: &[u8]) -> bool {
    bytes
        .iter()
        .all(|b| matches!(b, b' ' | b'\t' | b'\r' | b'\n'))
}

/// 1-based line of a byte offset, for error messages.
pub(crate) fn line_of(src: &str, offset: u64) -> usize {
    let end = usize::try_from(offset).unwrap_or(usize::MAX).min(src.len());
    1 + src.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
}
