//! Structural validation of FHIR JSON against the DSTU2 schema tables.
//!
//! Paths are kept as a linked list of borrowed segments on the stack and only
//! rendered to a string when an error is reported, so a valid resource is
//! checked without allocating.

use std::fmt::Write as _;

use serde_json::{Map, Value};

use crate::error::StructureError;
use crate::narrative;
use crate::primitive;
use crate::schema::{ElementDef, Kind, Prim, Ty};

/// Object nesting beyond this is refused, so recursion stays bounded even for
/// values that did not come through a depth-limited parser.
pub(crate) const MAX_DEPTH: usize = 64;

#[derive(Clone, Copy)]
enum Seg<'a> {
    Name(&'a str),
    Index(usize),
}

#[derive(Clone, Copy)]
struct Path<'a> {
    parent: Option<&'a Path<'a>>,
    seg: Seg<'a>,
}

impl<'a> Path<'a> {
    fn root(name: &'a str) -> Self {
        Path {
            parent: None,
            seg: Seg::Name(name),
        }
    }

    fn field(&'a self, name: &'a str) -> Path<'a> {
        Path {
            parent: Some(self),
            seg: Seg::Name(name),
        }
    }

    fn index(&'a self, i: usize) -> Path<'a> {
        Path {
            parent: Some(self),
            seg: Seg::Index(i),
        }
    }

    fn render(&self) -> String {
        let mut segs = Vec::new();
        let mut cur = Some(self);
        while let Some(p) = cur {
            segs.push(p.seg);
            cur = p.parent;
        }
        let mut out = String::new();
        for seg in segs.iter().rev() {
            match seg {
                Seg::Name(n) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(n);
                }
                Seg::Index(i) => {
                    let _ = write!(out, "[{i}]");
                }
            }
        }
        out
    }

    fn error(&self, message: impl Into<String>) -> StructureError {
        StructureError {
            path: self.render(),
            message: message.into(),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Placement {
    Root,
    Contained,
    BundleEntry,
}

/// Checks a resource (its `resourceType` read from the value) against DSTU2.
pub fn validate_resource(resource: &Value) -> Result<(), StructureError> {
    check_resource(resource, None, Placement::Root, 0)
}

fn check_resource(
    value: &Value,
    at: Option<&Path<'_>>,
    placement: Placement,
    depth: usize,
) -> Result<(), StructureError> {
    let fail = |message: &str| match at {
        Some(p) => p.error(message),
        None => Path::root("Resource").error(message),
    };
    let Value::Object(obj) = value else {
        return Err(fail("expected a resource (a JSON object)"));
    };
    let resource_type = match obj.get("resourceType") {
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(fail("resourceType must be a string")),
        None => return Err(fail("missing resourceType")),
    };
    let Some(ty) = Ty::resource(resource_type) else {
        let message = format!("unknown resource type '{}'", quote(resource_type));
        return Err(match at {
            Some(p) => p.field("resourceType").error(message),
            None => Path::root("resourceType").error(message),
        });
    };
    let root;
    let path = match at {
        Some(p) => p,
        None => {
            root = Path::root(resource_type);
            &root
        }
    };
    if placement == Placement::Contained {
        check_contained_rules(obj, path)?;
    }
    check_object(obj, ty, path, depth)
}

/// DSTU2 dom-2 and dom-4, plus the identity a `#id` reference needs.
fn check_contained_rules(obj: &Map<String, Value>, path: &Path<'_>) -> Result<(), StructureError> {
    if !obj.contains_key("id") {
        return Err(path
            .field("id")
            .error("a contained resource must have an id"));
    }
    if obj.contains_key("contained") {
        return Err(path
            .field("contained")
            .error("a contained resource must not contain other resources"));
    }
    if let Some(Value::Object(meta)) = obj.get("meta") {
        for key in ["versionId", "lastUpdated"] {
            if meta.contains_key(key) {
                return Err(path
                    .field("meta")
                    .field(key)
                    .error(format!("a contained resource must not have meta.{key}")));
            }
        }
    }
    Ok(())
}

fn check_object(
    obj: &Map<String, Value>,
    ty: Ty,
    path: &Path<'_>,
    depth: usize,
) -> Result<(), StructureError> {
    if depth > MAX_DEPTH {
        return Err(path.error(format!("nested more than {MAX_DEPTH} levels deep")));
    }
    if obj.is_empty() {
        return Err(path.error("an element must have content, not an empty object"));
    }
    // (group, variant) of each choice group seen; a type has at most two groups.
    let mut choices: [Option<(&str, &str)>; 4] = [None; 4];
    for (key, value) in obj {
        if key == "resourceType" && ty.is_resource() {
            continue;
        }
        let field = path.field(key);
        let (name, companion) = match key.strip_prefix('_') {
            Some(name) => (name, true),
            None => (key.as_str(), false),
        };
        let Some(def) = ty.find(name).filter(|d| !companion || d.is_prim()) else {
            return Err(field.error("unknown element"));
        };
        if let Some(group) = def.choice {
            note_choice(&mut choices, group, name, &field)?;
        }
        if companion {
            check_companion(value, def, obj.get(name), &field, depth)?;
        } else {
            check_element(value, def, obj, &field, depth)?;
        }
    }
    for def in ty.elements().into_iter().flatten().filter(|d| d.min > 0) {
        match def.choice {
            None => {
                let present =
                    obj.contains_key(def.name) || (def.is_prim() && has_companion(obj, def.name));
                if !present {
                    return Err(path.field(def.name).error("missing required element"));
                }
            }
            Some(group) => {
                if !choices.iter().flatten().any(|(g, _)| *g == group) {
                    let label = format!("{group}[x]");
                    return Err(path.field(&label).error("missing required element"));
                }
            }
        }
    }
    match ty {
        Ty::Reference => check_reference(obj, path),
        Ty::Extension => check_extension(obj, path),
        _ => Ok(()),
    }
}

fn note_choice<'v>(
    seen: &mut [Option<(&'static str, &'v str)>; 4],
    group: &'static str,
    name: &'v str,
    field: &Path<'_>,
) -> Result<(), StructureError> {
    for slot in seen.iter_mut() {
        match slot {
            Some((g, n)) if *g == group => {
                if *n == name {
                    return Ok(());
                }
                return Err(field.error(format!(
                    "only one of {group}[x] may be given, but {n} is also present"
                )));
            }
            Some(_) => {}
            None => {
                *slot = Some((group, name));
                return Ok(());
            }
        }
    }
    Ok(())
}

fn check_element(
    value: &Value,
    def: &ElementDef,
    obj: &Map<String, Value>,
    field: &Path<'_>,
    depth: usize,
) -> Result<(), StructureError> {
    if !def.many {
        return match value {
            Value::Array(_) => Err(field.error("expected a single value, not an array")),
            Value::Null => Err(field.error("null is not allowed")),
            _ => check_single(value, def.kind, field, depth),
        };
    }
    let items = match value {
        Value::Array(items) => items,
        Value::Null => return Err(field.error("null is not allowed")),
        _ => return Err(field.error("expected an array (this element repeats)")),
    };
    if items.is_empty() {
        return Err(field.error("an array must not be empty"));
    }
    // Looked up once, on the first null, so many nulls cost no rescans of the keys.
    let mut companions: Option<Option<&Vec<Value>>> = None;
    for (i, item) in items.iter().enumerate() {
        let at = field.index(i);
        if item.is_null() {
            // A primitive array may hold null where `_name` carries that item's extensions.
            let companions = *companions
                .get_or_insert_with(|| companion_of(obj, def.name).and_then(Value::as_array));
            let covered = def.is_prim()
                && companions
                    .and_then(|c| c.get(i))
                    .is_some_and(|c| !c.is_null());
            if !covered {
                return Err(at.error("null is not allowed"));
            }
            continue;
        }
        check_single(item, def.kind, &at, depth)?;
    }
    Ok(())
}

/// `_name`: the id and extensions of primitive `name`, aligned item by item for arrays.
fn check_companion(
    value: &Value,
    def: &ElementDef,
    sibling: Option<&Value>,
    field: &Path<'_>,
    depth: usize,
) -> Result<(), StructureError> {
    let kind = Kind::Complex(Ty::PrimitiveExtension);
    if !def.many {
        return match value {
            Value::Array(_) => Err(field.error("expected a single value, not an array")),
            Value::Null => Err(field.error("null is not allowed")),
            _ => check_single(value, kind, field, depth),
        };
    }
    let items = match value {
        Value::Array(items) => items,
        Value::Null => return Err(field.error("null is not allowed")),
        _ => return Err(field.error("expected an array (this element repeats)")),
    };
    if items.is_empty() {
        return Err(field.error("an array must not be empty"));
    }
    let values = sibling.and_then(Value::as_array);
    if let Some(values) = values
        && values.len() != items.len()
    {
        return Err(field.error(format!("must have as many items as {}", def.name)));
    }
    for (i, item) in items.iter().enumerate() {
        let at = field.index(i);
        if item.is_null() {
            let has_value = values.and_then(|v| v.get(i)).is_some_and(|v| !v.is_null());
            if !has_value {
                return Err(at.error("null is not allowed"));
            }
            continue;
        }
        check_single(item, kind, &at, depth)?;
    }
    Ok(())
}

fn check_single(
    value: &Value,
    kind: Kind,
    at: &Path<'_>,
    depth: usize,
) -> Result<(), StructureError> {
    match kind {
        Kind::Prim(prim) => check_prim(value, prim).map_err(|m| at.error(m)),
        Kind::Xhtml => match value {
            Value::String(div) => narrative::div_text(div)
                .map(drop)
                .map_err(|m| at.error(format!("invalid narrative: {m}"))),
            _ => Err(at.error("expected a string (the XHTML div)")),
        },
        Kind::Complex(ty) => match value {
            Value::Object(obj) => check_object(obj, ty, at, depth + 1),
            _ => Err(at.error("expected an object")),
        },
        Kind::Contained => check_resource(value, Some(at), Placement::Contained, depth + 1),
        Kind::Resource => check_resource(value, Some(at), Placement::BundleEntry, depth + 1),
    }
}

fn check_prim(value: &Value, prim: Prim) -> Result<(), String> {
    let range = match prim {
        Prim::Boolean => {
            return if value.is_boolean() {
                Ok(())
            } else {
                Err("expected a boolean".into())
            };
        }
        Prim::Decimal => {
            return if value.is_number() {
                Ok(())
            } else {
                Err("expected a number".into())
            };
        }
        Prim::Integer => i64::from(i32::MIN)..=i64::from(i32::MAX),
        Prim::UnsignedInt => 0..=i64::from(i32::MAX),
        Prim::PositiveInt => 1..=i64::from(i32::MAX),
        _ => return check_string_prim(value, prim),
    };
    match value.as_i64() {
        Some(n) if range.contains(&n) => Ok(()),
        Some(n) => Err(format!("{n} is out of range for {}", primitive::name(prim))),
        None if value.is_number() => Err(format!(
            "expected a whole number ({})",
            primitive::name(prim)
        )),
        None => Err("expected a number".into()),
    }
}

fn check_string_prim(value: &Value, prim: Prim) -> Result<(), String> {
    let Value::String(s) = value else {
        return Err("expected a string".into());
    };
    if s.is_empty() {
        return Err("must not be an empty string".into());
    }
    // XML 1.0 cannot carry these even as character references, so a value
    // holding one could not be answered in XML.
    if s.chars().any(narrative::is_forbidden_char) {
        return Err("must not contain control characters".into());
    }
    if primitive::lexical_ok(prim, s) {
        Ok(())
    } else {
        Err(format!(
            "'{}' is not a valid {}",
            quote(s),
            primitive::name(prim)
        ))
    }
}

fn check_reference(obj: &Map<String, Value>, path: &Path<'_>) -> Result<(), StructureError> {
    match obj.get("reference") {
        Some(Value::String(r)) if !r.is_empty() && !primitive::is_reference(r) => {
            Err(path.field("reference").error(format!(
                "'{}' is not a valid reference: expected Type/id, an absolute URL or #id",
                quote(r)
            )))
        }
        _ => Ok(()),
    }
}

/// DSTU2 ext-1: a value or nested extensions, not both.
fn check_extension(obj: &Map<String, Value>, path: &Path<'_>) -> Result<(), StructureError> {
    let has_value = obj
        .keys()
        .any(|k| k.starts_with("value") || k.starts_with("_value"));
    let has_nested = obj.contains_key("extension");
    match (has_value, has_nested) {
        (true, true) => {
            Err(path.error("an extension must have a value or nested extensions, not both"))
        }
        (false, false) => Err(path.error("an extension must have a value or nested extensions")),
        _ => Ok(()),
    }
}

fn companion_of<'m>(obj: &'m Map<String, Value>, name: &str) -> Option<&'m Value> {
    obj.iter()
        .find(|(k, _)| k.strip_prefix('_') == Some(name))
        .map(|(_, v)| v)
}

fn has_companion(obj: &Map<String, Value>, name: &str) -> bool {
    companion_of(obj, name).is_some()
}

/// Keeps error messages short when a client sends a huge value.
fn quote(s: &str) -> String {
    const MAX: usize = 60;
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}
