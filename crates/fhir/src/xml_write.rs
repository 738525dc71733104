//! FHIR JSON → FHIR DSTU2 XML, elements in schema definition order whatever
//! the JSON key order.
//!
//! Output has no XML declaration (the HTTP Content-Type already says UTF-8)
//! and no indentation. Keys the schema does not know are still written, after
//! the known ones, so nothing is silently lost; keys that are not XML names are
//! the one thing skipped, as no XML could carry them.

use serde_json::{Map, Value};

use crate::schema::{ElementDef, Kind, Ty};
use crate::xml_read::FHIR_NS;

/// Serialises a FHIR JSON resource as FHIR XML. Never fails: shapes the
/// schema does not expect are written generically.
pub fn to_xml(resource: &Value) -> String {
    let mut out = String::with_capacity(1024);
    if let Value::Object(obj) = resource {
        write_resource(&mut out, obj, true);
    }
    out
}

fn write_resource(out: &mut String, obj: &Map<String, Value>, root: bool) {
    let name = obj
        .get("resourceType")
        .and_then(Value::as_str)
        .filter(|n| is_xml_name(n))
        .unwrap_or("Resource");
    out.push('<');
    out.push_str(name);
    if root {
        out.push_str(" xmlns=\"");
        out.push_str(FHIR_NS);
        out.push('"');
    }
    out.push('>');
    write_fields(out, obj, Ty::resource(name), true);
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

/// Child elements of an object: known ones in definition order, then the rest.
fn write_fields(out: &mut String, obj: &Map<String, Value>, ty: Option<Ty>, is_resource: bool) {
    let has_companions = obj.keys().any(|k| k.starts_with('_'));
    if let Some(ty) = ty {
        for def in ty.elements().into_iter().flatten().filter(|d| !d.attr) {
            write_element(out, obj, def, has_companions);
        }
    }
    for (key, value) in obj {
        if (is_resource && key == "resourceType") || is_known(ty, key) {
            continue;
        }
        write_generic(out, key, value);
    }
}

fn is_known(ty: Option<Ty>, key: &str) -> bool {
    let Some(ty) = ty else { return false };
    match key.strip_prefix('_') {
        Some(name) => ty.find(name).is_some_and(ElementDef::is_prim),
        None => ty.find(key).is_some(),
    }
}

fn write_element(
    out: &mut String,
    obj: &Map<String, Value>,
    def: &ElementDef,
    has_companions: bool,
) {
    let value = obj.get(def.name);
    match def.kind {
        Kind::Prim(_) => {
            let companion = if has_companions {
                companion_of(obj, def.name)
            } else {
                None
            };
            let values = items(value);
            let companions = items(companion);
            for i in 0..values.len().max(companions.len()) {
                write_primitive(out, def.name, values.get(i), companions.get(i));
            }
        }
        Kind::Xhtml => match value {
            // Checked as well-formed XHTML before it was stored: written verbatim.
            Some(Value::String(div)) => out.push_str(div),
            Some(other) => write_generic(out, def.name, other),
            None => {}
        },
        Kind::Complex(ty) => {
            for item in items(value) {
                match item {
                    Value::Object(o) => write_complex(out, def.name, o, ty),
                    other => write_generic(out, def.name, other),
                }
            }
        }
        Kind::Contained | Kind::Resource => {
            for item in items(value) {
                match item {
                    Value::Object(o) => {
                        open(out, def.name);
                        write_resource(out, o, false);
                        close(out, def.name);
                    }
                    other => write_generic(out, def.name, other),
                }
            }
        }
    }
}

/// `<name value=".." id=".."/>`, with the `_name` extensions as children.
fn write_primitive(out: &mut String, name: &str, value: Option<&Value>, companion: Option<&Value>) {
    let value = value.filter(|v| !v.is_null());
    let companion = companion.and_then(Value::as_object);
    if value.is_none() && companion.is_none() {
        return;
    }
    if let Some(v @ (Value::Array(_) | Value::Object(_))) = value {
        write_generic(out, name, v);
        return;
    }
    out.push('<');
    out.push_str(name);
    if let Some(id) = companion.and_then(|c| c.get("id")) {
        write_attribute(out, "id", id);
    }
    if let Some(v) = value {
        write_attribute(out, "value", v);
    }
    out.push('>');
    let mark = out.len();
    if let Some(c) = companion {
        write_fields(out, c, Some(Ty::PrimitiveExtension), false);
    }
    end_element(out, name, mark);
}

fn write_complex(out: &mut String, name: &str, obj: &Map<String, Value>, ty: Ty) {
    out.push('<');
    out.push_str(name);
    for def in ty.elements().into_iter().flatten().filter(|d| d.attr) {
        if let Some(v) = obj.get(def.name) {
            write_attribute(out, def.name, v);
        }
    }
    out.push('>');
    let mark = out.len();
    write_fields(out, obj, Some(ty), false);
    end_element(out, name, mark);
}

/// Closes an element opened with `>` at `mark`, as `/>` if nothing was written.
fn end_element(out: &mut String, name: &str, mark: usize) {
    if out.len() == mark {
        out.truncate(mark - 1);
        out.push_str("/>");
    } else {
        close(out, name);
    }
}

/// Best-effort form for what the schema does not know, mirroring how the
/// reader maps unknown elements.
fn write_generic(out: &mut String, name: &str, value: &Value) {
    if !is_xml_name(name) {
        return;
    }
    match value {
        Value::Array(items) => {
            for item in items {
                write_generic(out, name, item);
            }
        }
        Value::Object(obj) => {
            out.push('<');
            out.push_str(name);
            out.push('>');
            let mark = out.len();
            for (k, v) in obj {
                write_generic(out, k, v);
            }
            end_element(out, name, mark);
        }
        Value::Null => {
            out.push('<');
            out.push_str(name);
            out.push_str("/>");
        }
        scalar => {
            out.push('<');
            out.push_str(name);
            write_attribute(out, "value", scalar);
            out.push_str("/>");
        }
    }
}

fn write_attribute(out: &mut String, name: &str, value: &Value) {
    let number;
    let text = match value {
        Value::String(s) => s.as_str(),
        Value::Bool(true) => "true",
        Value::Bool(false) => "false",
        Value::Number(n) => {
            number = n.to_string();
            &number
        }
        Value::Null | Value::Array(_) | Value::Object(_) => return,
    };
    out.push(' ');
    out.push_str(name);
    out.push_str("=\"");
    escape_attribute(out, text);
    out.push('"');
}

/// Escapes for a double-quoted attribute. Tab, CR and LF become character
/// references so attribute-value normalisation cannot turn them into spaces;
/// characters XML cannot carry at all become U+FFFD.
fn escape_attribute(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c if crate::narrative::is_forbidden_char(c) => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
}

fn open(out: &mut String, name: &str) {
    out.push('<');
    out.push_str(name);
    out.push('>');
}

fn close(out: &mut String, name: &str) {
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

fn items(value: Option<&Value>) -> &[Value] {
    match value {
        None => &[],
        Some(Value::Array(items)) => items,
        Some(single) => std::slice::from_ref(single),
    }
}

fn companion_of<'m>(obj: &'m Map<String, Value>, name: &str) -> Option<&'m Value> {
    obj.iter()
        .find(|(k, _)| k.strip_prefix('_') == Some(name))
        .map(|(_, v)| v)
}

/// A conservative XML name: ASCII letter or `_`, then letters, digits, `_`, `-`, `.`.
fn is_xml_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}
