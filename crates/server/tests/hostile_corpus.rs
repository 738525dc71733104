//! The hostile-input corpus (`tests/corpus/*.jsonl`): malformed, oversized,
//! mistyped, injected and boundary inputs against `POST /Order` (JSON and
//! XML), the searches and reads, the Spine headers, the JWT and the SSP's
//! target URL. Each case states the answer it must get; after each one the
//! server must still answer a valid request. Every request is written byte
//! for byte on its own connection, so nothing is normalised on the way.
//!
//! A case is one JSON object per line (`#` lines are comments):
//!
//! | field | meaning |
//! |---|---|
//! | `name` | unique, shown on failure |
//! | `kind` | `order` (POST /Order to GPC001), `get` (GET under GPC001's root), `ssp` (GET /ssp/{target}), `raw` (a whole request) |
//! | `format` | `json` (default) or `xml`: the Order's format and Content-Type |
//! | `patch` | ops on the valid Order before it is written: `{"op":"set"\|"remove"\|"append","path":"/json/pointer","value":…,"times":n}` |
//! | `json_replace` / `xml_replace` | `[[from, to], …]` on the written body text |
//! | `body` / `body_hex` | the body itself instead of the Order |
//! | `path`, `target`, `request` | the path (`get`), the target URL (`ssp`), the whole request (`raw`) |
//! | `method`, `interaction`, `content_type` | overrides (`"none"` omits the Content-Type) |
//! | `headers` | `{name: value or null}` set or removed; `repeat_header`: `{name, value, count}` |
//! | `jwt_patch` / `jwt_parts` / `authorization` | ops on the JWT's claims; the three raw parts (`b64:` prefix = already encoded); the whole header |
//! | `status` or `status_in`, `code` | the expected answer (`code`: the OperationOutcome's) |
//! | `closed` | `true`: the connection is closed without an answer, at once |
//! | `stored` | `true`: the answer names a stored task whose Order holds, at each `set` op's path, the value set |
//! | `stored_text` | the task text stored with it |
//!
//! Strings may hold `{{repeat:N:text}}`, `{{close:N}}` (N `}`), `{{base}}`, `{{root}}`,
//! `{{authority}}`, `{{authority_port}}`, `{{today}}`, `{{yesterday}}`, `{{uuid}}`.

// A test crate sees every dev-dependency of its package, and uses only some.
#![allow(unused_crate_dependencies)]
// Helpers outside `#[test]` functions panic on purpose too: a failure is the test's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod raw_http;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use gpc_testkit::*;
use raw_http::{Answer, NoAnswer, authority, exchange};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::path::Path;
use std::time::Duration;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    kind: String,
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    patch: Vec<Value>,
    #[serde(default)]
    json_replace: Vec<(String, String)>,
    #[serde(default)]
    xml_replace: Vec<(String, String)>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    body_hex: Option<String>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    target: Option<String>,
    #[serde(default)]
    request: Option<String>,
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    interaction: Option<String>,
    #[serde(default)]
    content_type: Option<String>,
    #[serde(default)]
    headers: Map<String, Value>,
    #[serde(default)]
    repeat_header: Option<RepeatHeader>,
    #[serde(default)]
    jwt_patch: Vec<Value>,
    #[serde(default)]
    jwt_parts: Option<[String; 3]>,
    #[serde(default)]
    authorization: Option<String>,
    #[serde(default)]
    status: Option<u16>,
    #[serde(default)]
    status_in: Vec<u16>,
    #[serde(default)]
    code: Option<String>,
    /// The connection is closed without an answer (a request that is not
    /// HTTP/1 at all); never a hang.
    #[serde(default)]
    closed: bool,
    /// The values the `set` ops wrote are read back from the stored task.
    #[serde(default)]
    stored: bool,
    #[serde(default)]
    stored_text: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RepeatHeader {
    name: String,
    value: String,
    count: usize,
}

struct World {
    base: String,
    addr: String,
}

impl World {
    fn expand(&self, s: &str) -> String {
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(start) = rest.find("{{") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let token = after
                .find("}}")
                .map(|end| (&after[..end], &after[end + 2..]));
            let Some(expanded) = token.and_then(|(token, _)| self.template(token)) else {
                // Not a template: literal braces (a body may well hold them).
                out.push_str("{{");
                rest = after;
                continue;
            };
            out.push_str(&expanded);
            rest = token.map(|(_, r)| r).unwrap_or_default();
        }
        out.push_str(rest);
        out
    }

    fn template(&self, token: &str) -> Option<String> {
        if let Some(spec) = token.strip_prefix("repeat:") {
            let (n, text) = spec.split_once(':')?;
            return Some(text.repeat(n.parse().ok()?));
        }
        if let Some(n) = token.strip_prefix("close:") {
            return Some("}".repeat(n.parse().ok()?));
        }
        Some(match token {
            "base" => self.base.clone(),
            "root" => format!("{}/GPC001/DSTU2/1", self.base),
            "authority" => self.addr.clone(),
            "authority_port" => self.addr.rsplit(':').next()?.to_owned(),
            "today" => today(),
            "yesterday" => jiff::civil::Date::strptime("%Y-%m-%d", today())
                .ok()?
                .yesterday()
                .ok()?
                .to_string(),
            "uuid" => uuid::Uuid::new_v4().to_string(),
            _ => return None,
        })
    }

    fn expand_value(&self, v: &Value) -> Value {
        match v {
            Value::String(s) => Value::String(self.expand(s)),
            Value::Array(a) => Value::Array(a.iter().map(|v| self.expand_value(v)).collect()),
            Value::Object(o) => Value::Object(
                o.iter()
                    .map(|(k, v)| (self.expand(k), self.expand_value(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }

    fn apply(&self, target: &mut Value, ops: &[Value]) {
        for op in ops {
            let path = op["path"].as_str().expect("an op has a path");
            let value = self.expand_value(&op["value"]);
            match op["op"].as_str().expect("an op has an op") {
                "set" => {
                    let (parent, key) = split_pointer(path);
                    match target.pointer_mut(parent).expect("the parent exists") {
                        Value::Object(o) => {
                            o.insert(key.to_owned(), value);
                        }
                        Value::Array(a) => a[key.parse::<usize>().unwrap()] = value,
                        other => panic!("cannot set in {other}"),
                    }
                }
                "remove" => {
                    let (parent, key) = split_pointer(path);
                    match target.pointer_mut(parent).expect("the parent exists") {
                        Value::Object(o) => {
                            o.remove(key).expect("the element exists");
                        }
                        Value::Array(a) => {
                            a.remove(key.parse::<usize>().unwrap());
                        }
                        other => panic!("cannot remove from {other}"),
                    }
                }
                "append" => {
                    let times = op["times"].as_u64().unwrap_or(1);
                    let array = target
                        .pointer_mut(path)
                        .and_then(Value::as_array_mut)
                        .expect("an array to append to");
                    for _ in 0..times {
                        array.push(value.clone());
                    }
                }
                other => panic!("unknown op {other}"),
            }
        }
    }
}

fn split_pointer(path: &str) -> (&str, &str) {
    let i = path.rfind('/').expect("a JSON pointer");
    (&path[..i], &path[i + 1..])
}

fn interaction_id(name: &str) -> String {
    match name {
        "metadata" => METADATA,
        "create" => CREATE,
        "read_patient" => READ_PATIENT,
        "search_patient" => SEARCH_PATIENT,
        "read_org" => READ_ORG,
        "search_org" => SEARCH_ORG,
        "read_practitioner" => READ_PRACTITIONER,
        "search_practitioner" => SEARCH_PRACTITIONER,
        other => other,
    }
    .to_owned()
}

/// The interaction a GET path needs when the case does not say.
fn interaction_for_path(path: &str) -> &'static str {
    let p = path.split('?').next().unwrap_or("");
    let search = path.contains('?');
    if p.starts_with("/Patient") {
        if search { SEARCH_PATIENT } else { READ_PATIENT }
    } else if p.starts_with("/Organization") {
        if search { SEARCH_ORG } else { READ_ORG }
    } else if p.starts_with("/Practitioner") {
        if search {
            SEARCH_PRACTITIONER
        } else {
            READ_PRACTITIONER
        }
    } else {
        METADATA
    }
}

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn encode_part(text: &str) -> String {
    match text.strip_prefix("b64:") {
        Some(encoded) => encoded.to_owned(),
        None => URL_SAFE_NO_PAD.encode(text),
    }
}

/// The request bytes of a case.
fn request_of(w: &World, case: &Case) -> Vec<u8> {
    if let Some(raw) = &case.request {
        return w.expand(raw).into_bytes();
    }
    let (method, target, interaction, mut body, default_ct) = match case.kind.as_str() {
        "order" => {
            let xml = case.format.as_deref() == Some("xml");
            let body = if let Some(h) = &case.body_hex {
                hex(h)
            } else if let Some(b) = &case.body {
                w.expand(b).into_bytes()
            } else {
                let mut order = dawes_order();
                w.apply(&mut order, &case.patch);
                let mut text = if xml {
                    gpc_fhir::xml::to_xml(&order)
                } else {
                    order.to_string()
                };
                for (from, to) in if xml {
                    &case.xml_replace
                } else {
                    &case.json_replace
                } {
                    assert!(
                        text.contains(from.as_str()),
                        "{}: '{from}' is not in the body",
                        case.name
                    );
                    text = text.replace(from.as_str(), &w.expand(to));
                }
                text.into_bytes()
            };
            let ct = if xml { XML } else { JSON };
            (
                "POST",
                "/GPC001/DSTU2/1/Order".to_owned(),
                CREATE.to_owned(),
                body,
                Some(ct),
            )
        }
        "get" => {
            let path = w.expand(case.path.as_deref().expect("a get case has a path"));
            let interaction = interaction_for_path(&path).to_owned();
            (
                "GET",
                format!("/GPC001/DSTU2/1{path}"),
                interaction,
                Vec::new(),
                None,
            )
        }
        "ssp" => {
            let target = w.expand(case.target.as_deref().expect("an ssp case has a target"));
            (
                "GET",
                format!("/ssp/{target}"),
                METADATA.to_owned(),
                Vec::new(),
                None,
            )
        }
        other => panic!("unknown kind {other}"),
    };
    if case.kind != "order"
        && let Some(b) = &case.body
    {
        body = w.expand(b).into_bytes();
    }
    let method = case.method.as_deref().unwrap_or(method);
    let interaction = case
        .interaction
        .as_deref()
        .map(interaction_id)
        .unwrap_or(interaction);

    let (scope, record) = scope_for(&interaction);
    let mut jwt = Jwt::new(scope, record);
    w.apply(&mut jwt.claims, &case.jwt_patch);
    let mut token = jwt.encode();
    if let Some([h, p, s]) = &case.jwt_parts {
        token = format!(
            "{}.{}.{}",
            encode_part(&w.expand(h)),
            encode_part(&w.expand(p)),
            w.expand(s)
        );
    }
    let mut headers: Vec<(String, String)> = headers(&interaction, GPC001_ASID, &token)
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap().to_owned()))
        .collect();
    let mut set = |name: &str, value: Option<String>| {
        headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        if let Some(v) = value {
            headers.push((name.to_owned(), v));
        }
    };
    if let Some(a) = &case.authorization {
        set("Authorization", Some(w.expand(a)));
    }
    match case.content_type.as_deref() {
        Some("none") => set("Content-Type", None),
        Some(ct) => set("Content-Type", Some(ct.to_owned())),
        None => set("Content-Type", default_ct.map(str::to_owned)),
    }
    for (name, value) in &case.headers {
        set(name, value.as_str().map(|v| w.expand(v)));
    }
    if let Some(r) = &case.repeat_header {
        for i in 0..r.count {
            headers.push((format!("{}{i}", r.name), w.expand(&r.value)));
        }
    }

    let mut out = format!(
        "{method} {target} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
        w.addr
    );
    for (k, v) in &headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.append(&mut body);
    bytes
}

fn check(case: &Case, answer: Result<&Answer, NoAnswer>) -> Result<(), String> {
    let answer = match (answer, case.closed) {
        (Err(NoAnswer::Closed), true) => return Ok(()),
        (Err(NoAnswer::TimedOut), _) => return Err("no answer within the deadline".into()),
        (Err(NoAnswer::Closed), false) => {
            return Err("the connection was closed without an answer".into());
        }
        (Ok(a), true) => {
            return Err(format!("expected the connection closed, got {}", a.status));
        }
        (Ok(answer), false) => answer,
    };
    let expected: Vec<u16> = match case.status {
        Some(s) => vec![s],
        None => case.status_in.clone(),
    };
    assert!(!expected.is_empty(), "{}: no expected status", case.name);
    let code = answer.error_code();
    let diagnostics = answer.fhir()["issue"][0]["diagnostics"]
        .as_str()
        .unwrap_or_default()
        .chars()
        .take(160)
        .collect::<String>();
    let got = format!("got {} {code} ({diagnostics})", answer.status);
    if answer.status >= 500 && answer.status != 503 && !expected.contains(&answer.status) {
        return Err(format!("a server error: {got}"));
    }
    if !expected.contains(&answer.status) {
        return Err(format!("expected status {expected:?}, {got}"));
    }
    if let Some(want) = &case.code {
        if answer.fhir()["resourceType"] != "OperationOutcome" {
            return Err(format!("expected an OperationOutcome, {got}"));
        }
        if &code != want {
            return Err(format!("expected code {want}, {got}"));
        }
    }
    Ok(())
}

/// For a case that says what is stored: the task the answer names, read
/// from the store, holds what the case sent.
async fn check_stored(
    w: &World,
    store: &dyn gpc_store::Store,
    case: &Case,
    answer: &Answer,
) -> Result<(), String> {
    if !case.stored && case.stored_text.is_none() {
        return Ok(());
    }
    let id = answer.fhir()["id"]
        .as_str()
        .ok_or("the answer names no stored task")?
        .to_owned();
    let gpc001 = gpc_domain::OdsCode::parse("GPC001").unwrap();
    let task = store
        .get_task(&gpc001, &id)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("task {id} is not in the store"))?
        .task;
    if case.stored {
        let sets: Vec<_> = case.patch.iter().filter(|op| op["op"] == "set").collect();
        assert!(!sets.is_empty(), "{}: stored, but no set op", case.name);
        for op in sets {
            let path = op["path"].as_str().unwrap();
            let sent = w.expand_value(&op["value"]);
            let kept = task.resource.pointer(path);
            if kept != Some(&sent) {
                return Err(format!("stored {path} is {kept:?}, not {sent}"));
            }
        }
    }
    if let Some(text) = &case.stored_text
        && &task.text != text
    {
        return Err(format!("stored text {:?}, not {text:?}", task.text));
    }
    Ok(())
}

fn load_corpus() -> Vec<(String, Case)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("tests/corpus")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .collect();
    files.sort();
    let mut cases = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let file_name = file.file_name().unwrap().to_string_lossy().into_owned();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let at = format!("corpus/{file_name}:{}", i + 1);
            let case: Case =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("{at}: not a case: {e}"));
            cases.push((at, case));
        }
    }
    cases
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_hostile_input_gets_its_answer_and_the_server_stays_up() {
    let cases = load_corpus();
    let mut names = std::collections::HashSet::new();
    for (at, case) in &cases {
        assert!(names.insert(case.name.clone()), "{at}: duplicate name");
    }
    assert!(cases.len() >= 200, "only {} cases", cases.len());

    let s = TestServer::start().await;
    let w = World {
        addr: authority(&s.base).to_owned(),
        base: s.base.clone(),
    };
    let healthy = || async {
        let mut h = String::new();
        for (k, v) in &headers(
            METADATA,
            GPC001_ASID,
            &Jwt::new("organization/*.read", org_record("GPC001")).encode(),
        ) {
            h.push_str(&format!("{}: {}\r\n", k, v.to_str().unwrap()));
        }
        let req = format!(
            "GET /GPC001/DSTU2/1/metadata HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n{h}\r\n",
            w.addr
        );
        exchange(&w.addr, req.as_bytes(), Duration::from_secs(10))
            .await
            .map(|a| a.status)
            .ok()
    };

    let mut failures = Vec::new();
    for (at, case) in &cases {
        let request = request_of(&w, case);
        let answer = exchange(&w.addr, &request, Duration::from_secs(15)).await;
        let checked = match check(case, answer.as_ref().map_err(|e| *e)) {
            Ok(()) => match &answer {
                Ok(a) => check_stored(&w, &*s.state.store, case, a).await,
                Err(_) => Ok(()),
            },
            Err(why) => Err(why),
        };
        if let Err(why) = checked {
            failures.push(format!("{at} '{}': {why}", case.name));
        }
        let after = healthy().await;
        if after != Some(200) {
            failures.push(format!(
                "{at} '{}': the server did not answer a valid request afterwards ({after:?})",
                case.name
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
