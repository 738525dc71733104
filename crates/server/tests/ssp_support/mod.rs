//! What the SSP test binaries share: requests through the SSP, fake
//! providers that answer exactly what a test wants, a decoy that counts
//! whatever reaches it, and a raw HTTP client for request targets that a
//! URL-normalising client would rewrite. Each binary uses a subset.
#![allow(dead_code)]

use gpc_testkit::*;
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;

pub const XOA001_ASID: &str = "200000000380";
pub const X11101_ASID: &str = "200000000371";
pub const UNREGISTERED_ASID: &str = "999999999999";

/// A client that, like the SSP, never follows redirects.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_gzip()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub fn ssp_url(ssp_base: &str, target: &str) -> String {
    format!("{ssp_base}/ssp/{target}")
}

/// A JWT for `interaction` whose requesting organisation is `ods`; the
/// record is the receiving organisation `to_ods` (or the patient for
/// patient look-ups).
pub fn jwt_from(ods: &str, interaction: &str, to_ods: &str) -> String {
    let (scope, record) = match interaction {
        READ_PATIENT | SEARCH_PATIENT => ("patient/*.read", patient_record("9476719931")),
        CREATE => ("organization/*.write", org_record(to_ods)),
        _ => ("organization/*.read", org_record(to_ods)),
    };
    let mut jwt = Jwt::new(scope, record);
    jwt.claims["requesting_organization"]["identifier"][0]["value"] = ods.into();
    jwt.encode()
}

/// The Spine headers and a JWT, from (`from_ods`, `from_asid`) to `to_asid`.
pub fn spine_headers(
    interaction: &str,
    from_ods: &str,
    from_asid: &str,
    to_ods: &str,
    to_asid: &str,
) -> HeaderMap {
    let mut h = headers(
        interaction,
        to_asid,
        &jwt_from(from_ods, interaction, to_ods),
    );
    h.insert("ssp-from", HeaderValue::from_str(from_asid).unwrap());
    h
}

/// Y00001's headers for `interaction` to GPC001.
pub fn hub_to_gpc001(interaction: &str) -> HeaderMap {
    spine_headers(interaction, "Y00001", Y00001_ASID, "GPC001", GPC001_ASID)
}

/// Asserts the SSP's own OperationOutcome: status, code, issue type, and
/// diagnostics that start with the code.
pub async fn expect_refusal(
    req: reqwest::RequestBuilder,
    status: u16,
    code: &str,
    issue: &str,
) -> Value {
    let (got, headers, body) = send(req).await;
    check_refusal(got, &headers, &body, status, code, issue);
    body
}

pub fn check_refusal(
    got: u16,
    headers: &HeaderMap,
    body: &Value,
    status: u16,
    code: &str,
    issue: &str,
) {
    assert_eq!(got, status, "status; body: {body}");
    assert_eq!(body["resourceType"], "OperationOutcome", "{body}");
    assert_eq!(error_code(body), code, "{body}");
    assert_eq!(body["issue"][0]["code"], issue, "{body}");
    let diagnostics = body["issue"][0]["diagnostics"].as_str().unwrap_or("");
    assert!(
        diagnostics.starts_with(&format!("{code}: ")),
        "diagnostics {diagnostics:?} start with {code}"
    );
    assert_eq!(
        headers["content-type"],
        "application/json+fhir;charset=utf-8"
    );
}

/// A port that nothing listens on (bound, then released).
pub async fn closed_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

/// Accepts connections and counts them, never answering: what an SSRF
/// attempt would reach if it got through.
pub struct Decoy {
    pub port: u16,
    hits: Arc<AtomicUsize>,
    peers: Arc<std::sync::Mutex<Vec<std::net::SocketAddr>>>,
}

impl Decoy {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(AtomicUsize::new(0));
        let peers = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (counted, seen) = (hits.clone(), peers.clone());
        tokio::spawn(async move {
            while let Ok((socket, peer)) = listener.accept().await {
                seen.lock().unwrap().push(peer);
                counted.fetch_add(1, Ordering::SeqCst);
                // Held open without an answer until the peer gives up.
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    drop(socket);
                });
            }
        });
        Self { port, hits, peers }
    }

    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// The connections made before this call, each counted: a probe of its
    /// own goes last into the listener's queue, which is served in order, so
    /// once the probe is accepted every connection before it has been. The
    /// probe itself is not counted.
    pub async fn settled_hits(&self) -> usize {
        let probe = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .unwrap();
        let me = probe.local_addr().unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        while !self.peers.lock().unwrap().contains(&me) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the decoy never accepted its probe"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.hits.fetch_sub(1, Ordering::SeqCst) - 1
    }
}

/// A provider that answers every request with the same raw bytes and keeps
/// the raw requests it received.
pub struct FakeProvider {
    pub base: String,
    pub requests: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl FakeProvider {
    pub async fn start(answer: Vec<u8>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let kept = requests.clone();
        let answer = Arc::new(answer);
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let kept = kept.clone();
                let answer = answer.clone();
                tokio::spawn(async move {
                    let request = read_request(&mut socket).await;
                    kept.lock().await.push(request);
                    let _ = socket.write_all(&answer).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        Self { base, requests }
    }

    /// The requests received, as text (lossy), in order.
    pub async fn received(&self) -> Vec<String> {
        self.requests
            .lock()
            .await
            .iter()
            .map(|r| String::from_utf8_lossy(r).into_owned())
            .collect()
    }
}

/// Reads one HTTP/1.1 request: the head, then a Content-Length or chunked body.
async fn read_request(socket: &mut TcpStream) -> Vec<u8> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i + 4;
        }
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => return buf,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    let chunked = head.contains("transfer-encoding: chunked");
    loop {
        let body = &buf[head_end..];
        let done = match length {
            Some(n) => body.len() >= n,
            None if chunked => find(body, b"0\r\n\r\n").is_some(),
            None => true,
        };
        if done {
            return buf;
        }
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => return buf,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A raw answer: status, headers (lower-cased names, in order) and body.
#[derive(Debug)]
pub struct RawAnswer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawAnswer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// Sends `head` (request line and headers, without the blank line) exactly
/// as written, plus `Connection: close`, and reads the whole answer.
pub async fn raw_request(addr: &str, head: &str, body: &[u8]) -> RawAnswer {
    let mut socket = TcpStream::connect(addr).await.unwrap();
    let mut bytes = format!("{head}\r\nConnection: close\r\n\r\n").into_bytes();
    bytes.extend_from_slice(body);
    socket.write_all(&bytes).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), socket.read_to_end(&mut answer)).await;
    parse_answer(&answer)
}

fn parse_answer(bytes: &[u8]) -> RawAnswer {
    let head_end = find(bytes, b"\r\n\r\n").expect("an HTTP answer") + 4;
    let head = String::from_utf8_lossy(&bytes[..head_end]);
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let raw_body = &bytes[head_end..];
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked {
        dechunk(raw_body)
    } else {
        raw_body.to_vec()
    };
    RawAnswer {
        status,
        headers,
        body,
    }
}

fn dechunk(mut bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = find(bytes, b"\r\n") {
        let size_text = String::from_utf8_lossy(&bytes[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16)
            .expect("chunk size");
        if size == 0 {
            break;
        }
        let start = line_end + 2;
        out.extend_from_slice(&bytes[start..start + size]);
        bytes = &bytes[start + size + 2..];
    }
    out
}

/// `host:port` of a base URL such as `http://127.0.0.1:1234`.
pub fn authority(base: &str) -> &str {
    base.split_once("://").map(|(_, a)| a).unwrap_or(base)
}

/// The Spine headers as raw header lines.
pub fn header_lines(h: &HeaderMap) -> String {
    h.iter()
        .map(|(n, v)| format!("{}: {}", n, v.to_str().unwrap()))
        .collect::<Vec<_>>()
        .join("\r\n")
}
