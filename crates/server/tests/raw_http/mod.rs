//! A raw HTTP/1.1 client for hostile requests: the bytes go on the wire as
//! written (no URL normalisation, any header bytes, any body), one request
//! per connection, and the answer is read to the end with a deadline.
#![allow(dead_code)]

use serde_json::Value;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    /// The body as FHIR JSON, whichever format it came in; Null when it is
    /// neither.
    pub fn fhir(&self) -> Value {
        let text = String::from_utf8_lossy(&self.body);
        if let Ok(v) = serde_json::from_str::<Value>(&text) {
            return v;
        }
        gpc_fhir::xml::from_xml(&text).unwrap_or(Value::Null)
    }

    pub fn error_code(&self) -> String {
        self.fhir()["issue"][0]["details"]["coding"][0]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

/// `host:port` of a base URL.
pub fn authority(base: &str) -> &str {
    base.trim_start_matches("http://")
        .trim_start_matches("https://")
        .trim_end_matches('/')
}

/// Why no answer came back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoAnswer {
    /// The server closed (or reset) the connection without a status line.
    Closed,
    /// Nothing within the deadline: the server hung on to the connection.
    TimedOut,
}

/// Writes `request` (a whole request, `Connection: close` included) and
/// reads the answer until the server closes, within `deadline`.
pub async fn exchange(addr: &str, request: &[u8], deadline: Duration) -> Result<Answer, NoAnswer> {
    exchange_with(addr, request, false, deadline).await
}

/// [`exchange`], closing the client's sending side once `request` is
/// written: the server reads the end of the stream where it expects more.
pub async fn exchange_half_closed(
    addr: &str,
    request: &[u8],
    deadline: Duration,
) -> Result<Answer, NoAnswer> {
    exchange_with(addr, request, true, deadline).await
}

async fn exchange_with(
    addr: &str,
    request: &[u8],
    close_sending: bool,
    deadline: Duration,
) -> Result<Answer, NoAnswer> {
    let work = async {
        let Ok(mut stream) = TcpStream::connect(addr).await else {
            return Err(NoAnswer::Closed);
        };
        // The server may answer and close before reading a large request to
        // its end; what it answered is what counts.
        let _ = stream.write_all(request).await;
        if close_sending {
            let _ = stream.shutdown().await;
        }
        let mut raw = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => raw.extend_from_slice(&buf[..n]),
                Err(_) => break,
            }
        }
        parse(&raw).ok_or(NoAnswer::Closed)
    };
    tokio::time::timeout(deadline, work)
        .await
        .unwrap_or(Err(NoAnswer::TimedOut))
}

/// Reads one answer from a connection that stays open (a kept-alive one),
/// its body framed by Content-Length or chunked, within `deadline`.
pub async fn next_answer(stream: &mut TcpStream, deadline: Duration) -> Result<Answer, NoAnswer> {
    let work = async {
        let mut raw = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        loop {
            if let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
                let body = &raw[split + 4..];
                let complete = if head.contains("transfer-encoding: chunked") {
                    body.ends_with(b"0\r\n\r\n")
                } else {
                    let length = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    body.len() >= length
                };
                if complete {
                    return parse(&raw).ok_or(NoAnswer::Closed);
                }
            }
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return Err(NoAnswer::Closed),
                Ok(n) => raw.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(deadline, work)
        .await
        .unwrap_or(Err(NoAnswer::TimedOut))
}

fn parse(raw: &[u8]) -> Option<Answer> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let mut body = raw[split + 4..].to_vec();
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    if chunked {
        body = dechunk(&body);
    }
    Some(Answer { status, head, body })
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = data.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&data[..eol])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next()?.trim(), 16).ok())
            .unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = eol + 2;
        let end = (start + size).min(data.len());
        out.extend_from_slice(&data[start..end]);
        data = data.get(end + 2..).unwrap_or_default();
    }
    out
}
