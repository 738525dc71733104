//! Limits that end in a clear answer, and faults the server rides out:
//! clients that never finish their headers, more connections than the cap,
//! a request stuck in its handler, header fields too large or too many, and
//! a store that stays locked. None of them is a 500 or takes the server down.

// A test crate sees every dev-dependency of its package, and uses only some.
#![allow(unused_crate_dependencies)]
// Helpers outside `#[test]` functions panic on purpose too: a failure is the test's.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod faulty_store;
mod raw_http;

use faulty_store::{Fault, FaultyStore};
use gpc_server::ServerConfig;
use gpc_server::limits::Limits;
use gpc_testkit::*;
use raw_http::{NoAnswer, authority, exchange, exchange_half_closed, next_answer};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn server_with(limits: Limits) -> TestServer {
    let config = ServerConfig {
        limits,
        ..ServerConfig::default()
    };
    TestServer::start_with(tempfile::tempdir().unwrap(), config).await
}

async fn metadata_ok(s: &TestServer) {
    let (status, _, body) = send(s.get("/metadata", METADATA)).await;
    assert_eq!(status, 200, "{body}");
}

/// How long a test waits for the server to close a connection it must
/// close. Nothing else ends such a connection, so the bound only stops a
/// test whose server never closes it; it is far above the timeouts under
/// test, so that a slow or loaded machine still sees the close.
const CLOSE_WITHIN: Duration = Duration::from_secs(20);

/// Reads until the server closes the connection, and returns what it sent
/// before closing.
async fn read_until_closed(stream: &mut TcpStream, what: &str) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    let read_all = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    };
    if tokio::time::timeout(CLOSE_WITHIN, read_all).await.is_err() {
        panic!("{what}: still open after {CLOSE_WITHIN:?}");
    }
    got
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_cut_off() {
    let s = server_with(Limits {
        header_read_timeout: Duration::from_millis(500),
        ..Limits::default()
    })
    .await;
    let addr = authority(&s.base).to_owned();
    // Half a request line and header, then silence.
    let mut dribbler = TcpStream::connect(&addr).await.unwrap();
    dribbler
        .write_all(b"GET /GPC001/DSTU2/1/metadata HTTP/1.1\r\nHost: x\r\nSsp-")
        .await
        .unwrap();
    // A connection that never sends a byte.
    let mut silent = TcpStream::connect(&addr).await.unwrap();
    let answer = read_until_closed(&mut dribbler, "half a head").await;
    assert!(
        answer.is_empty() || answer.starts_with(b"HTTP/1.1 408"),
        "{answer:?}"
    );
    let answer = read_until_closed(&mut silent, "no head at all").await;
    assert!(
        answer.is_empty() || answer.starts_with(b"HTTP/1.1 408"),
        "{answer:?}"
    );
    // An idle kept-alive connection is closed the same way after its first answer.
    let mut idle = TcpStream::connect(&addr).await.unwrap();
    let mut request = format!("GET /GPC001/DSTU2/1/metadata HTTP/1.1\r\nHost: {addr}\r\n");
    for (k, v) in &headers(
        METADATA,
        GPC001_ASID,
        &Jwt::new("organization/*.read", org_record("GPC001")).encode(),
    ) {
        request.push_str(&format!("{k}: {}\r\n", v.to_str().unwrap()));
    }
    request.push_str("\r\n");
    idle.write_all(request.as_bytes()).await.unwrap();
    let answer = read_until_closed(&mut idle, "an idle kept-alive connection").await;
    assert!(answer.starts_with(b"HTTP/1.1 200"), "answered first");
    metadata_ok(&s).await;
}

#[tokio::test]
async fn connections_over_the_cap_wait_until_one_closes() {
    let s = server_with(Limits {
        max_connections: 2,
        header_read_timeout: Duration::from_millis(1500),
        ..Limits::default()
    })
    .await;
    let addr = authority(&s.base).to_owned();
    // Two silent connections take both slots.
    let _a = TcpStream::connect(&addr).await.unwrap();
    let _b = TcpStream::connect(&addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let third = tokio::spawn({
        let client = reqwest::Client::new();
        let url = format!("{}/metadata", s.root("GPC001"));
        let (scope, record) = scope_for(METADATA);
        let h = headers(METADATA, GPC001_ASID, &Jwt::new(scope, record).encode());
        async move { client.get(url).headers(h).send().await.map(|r| r.status()) }
    });
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(!third.is_finished(), "served while over the cap");
    // The silent ones are cut off by the header timeout, and the third is served.
    let status = tokio::time::timeout(Duration::from_secs(10), third)
        .await
        .expect("served once a slot frees")
        .unwrap()
        .unwrap();
    assert_eq!(status, 200);
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(1000), "{waited:?}");
    metadata_ok(&s).await;
}

/// The head of a valid `POST /Order` to GPC001 with `framing` (the
/// Content-Length or Transfer-Encoding fields, each ending in CRLF), up to
/// and including the blank line.
fn order_head(addr: &str, framing: &str) -> String {
    let jwt = Jwt::new("organization/*.write", org_record("GPC001")).encode();
    let mut head = format!(
        "POST /GPC001/DSTU2/1/Order HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {JSON}\r\n{framing}"
    );
    for (k, v) in &headers(CREATE, GPC001_ASID, &jwt) {
        head.push_str(&format!("{k}: {}\r\n", v.to_str().unwrap()));
    }
    head.push_str("\r\n");
    head
}

#[tokio::test]
async fn a_request_stuck_in_its_handler_gets_a_503_in_time() {
    let request_timeout = Duration::from_millis(700);
    // The request timeout is kept above the SSP's (10 s by default); this
    // server's SSP is not used, so its timeout is lowered for the test.
    let config = ServerConfig {
        limits: Limits {
            request_timeout,
            ..Limits::default()
        },
        ssp: gpc_server::ssp::SspConfig {
            timeout: Duration::from_millis(100),
            ..Default::default()
        },
        ..ServerConfig::default()
    };
    let s = TestServer::start_with(tempfile::tempdir().unwrap(), config).await;
    let addr = authority(&s.base).to_owned();
    // A body announced as 1000 bytes of which 10 ever arrive: the handler
    // waits for the rest.
    let mut head = order_head(&addr, "Content-Length: 1000\r\n");
    head.push_str("{\"resource");
    let mut stream = TcpStream::connect(&addr).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
            .await
            .expect("an answer in time")
            .unwrap();
        assert!(n > 0, "closed without an answer");
        got.extend_from_slice(&buf[..n]);
    }
    let took = started.elapsed();
    let text = String::from_utf8_lossy(&got).to_ascii_lowercase();
    assert!(text.starts_with("http/1.1 503"), "{text}");
    assert!(text.contains("retry-after: 1"), "{text}");
    assert!(
        took >= request_timeout && took < Duration::from_secs(5),
        "{took:?}"
    );
    metadata_ok(&s).await;
}

/// Extra header fields of a request.
type Fields = Vec<(String, String)>;

async fn metadata_with(s: &TestServer, extra: &[(String, String)]) -> Result<u16, NoAnswer> {
    let addr = authority(&s.base);
    let mut request =
        format!("GET /GPC001/DSTU2/1/metadata HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in &headers(
        METADATA,
        GPC001_ASID,
        &Jwt::new("organization/*.read", org_record("GPC001")).encode(),
    ) {
        request.push_str(&format!("{k}: {}\r\n", v.to_str().unwrap()));
    }
    for (k, v) in extra {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    exchange(addr, request.as_bytes(), Duration::from_secs(10))
        .await
        .map(|a| {
            if a.status == 400 {
                assert_eq!(a.error_code(), "BAD_REQUEST", "an OperationOutcome");
            }
            a.status
        })
}

#[tokio::test]
async fn header_fields_too_large_or_too_many_are_refused_clearly() {
    let s = TestServer::start().await;
    let field = |n: usize| vec![("X-Pad".to_owned(), "p".repeat(n))];
    let many = |n: usize| -> Fields {
        (0..n)
            .map(|i| (format!("X-H{i}"), "1".to_owned()))
            .collect()
    };
    let cases: [(&str, Fields, u16); 7] = [
        ("one field under the limit", field(30_000), 200),
        ("one field over the limit", field(40_000), 400),
        (
            "fields over the total",
            (0..3)
                .map(|i| (format!("X-P{i}"), "p".repeat(30_000)))
                .collect(),
            400,
        ),
        ("90 fields", many(90), 200),
        ("120 fields", many(120), 400),
        // Beyond what hyper parses: its own bare 431, before any handler.
        ("400 fields", many(400), 431),
        ("a 1 MB field", field(1_000_000), 431),
    ];
    for (name, extra, want) in cases {
        let got = metadata_with(&s, &extra).await;
        assert_eq!(got, Ok(want), "{name}");
        metadata_ok(&s).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_store_is_a_503_with_retry_after_then_recovers() {
    let s = TestServer::start().await;
    let db = s.dir.path().join(gpc_store::DATABASE_FILE);
    // Another process holding the write lock longer than the store's busy
    // timeout (5 s).
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch("BEGIN EXCLUSIVE").unwrap();
        locked_tx.send(()).unwrap();
        let _ = release_rx.recv_timeout(Duration::from_secs(30));
        conn.execute_batch("ROLLBACK").unwrap();
    });
    locked_rx.recv().unwrap();
    let order = dawes_order();
    let started = Instant::now();
    let (status, headers, body) = send(s.post_order("GPC001", GPC001_ASID, &order)).await;
    let took = started.elapsed();
    assert_eq!(status, 503, "{body}");
    assert_eq!(headers["retry-after"], "1");
    assert_eq!(body["resourceType"], "OperationOutcome", "{body}");
    assert_eq!(error_code(&body), "INTERNAL_SERVER_ERROR", "{body}");
    assert_eq!(body["issue"][0]["code"], "transient", "{body}");
    assert!(took < Duration::from_secs(15), "{took:?}");
    // Reads do not need the write lock.
    metadata_ok(&s).await;
    release_tx.send(()).unwrap();
    holder.join().unwrap();
    // The same Order, retried, is stored once.
    let (status, _, first) = send(s.post_order("GPC001", GPC001_ASID, &order)).await;
    assert_eq!(status, 201, "{first}");
    let (status, _, again) = send(s.post_order("GPC001", GPC001_ASID, &order)).await;
    assert_eq!(status, 200);
    assert_eq!(first["id"], again["id"]);
}

#[tokio::test]
async fn a_body_with_broken_framing_is_a_bad_request_never_too_long() {
    let s = TestServer::start().await;
    let addr = authority(&s.base).to_owned();
    let order = dawes_order().to_string();
    // Generous: the answer comes as soon as the framing breaks, and the
    // handler's own timeout (30 s) would be a 503.
    let deadline = Duration::from_secs(20);
    let bad_chunk = format!(
        "{}ZZ\r\n{order}\r\n0\r\n\r\n",
        order_head(&addr, "Transfer-Encoding: chunked\r\nConnection: close\r\n")
    );
    let short = format!(
        "{}{}",
        order_head(
            &addr,
            &format!(
                "Content-Length: {}\r\nConnection: close\r\n",
                order.len() + 100
            )
        ),
        order
    );
    for (case, answer) in [
        (
            "an invalid chunk size",
            exchange(&addr, bad_chunk.as_bytes(), deadline).await,
        ),
        (
            "a body shorter than its Content-Length, then the client's side closed",
            exchange_half_closed(&addr, short.as_bytes(), deadline).await,
        ),
    ] {
        match answer {
            // Closing the connection is an answer too: the request cannot be read.
            Err(NoAnswer::Closed) => {}
            Err(NoAnswer::TimedOut) => panic!("{case}: no answer within {deadline:?}"),
            Ok(a) => {
                assert_eq!(a.status, 400, "{case}: {}", a.head);
                assert_eq!(a.error_code(), "BAD_REQUEST", "{case}");
            }
        }
        metadata_ok(&s).await;
    }
    // Nothing was stored from either.
    let gpc001 = gpc_domain::OdsCode::parse("GPC001").unwrap();
    assert_eq!(s.state.store.count_tasks(&gpc001).await.unwrap(), 0);
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_is_413() {
    // No Content-Length to refuse it by: the limit is met while reading.
    let s = TestServer::start().await;
    let addr = authority(&s.base).to_owned();
    let mut request = order_head(&addr, "Transfer-Encoding: chunked\r\nConnection: close\r\n");
    let chunk = "a".repeat(64 * 1024);
    let start = "{\"resourceType\":\"Order\",\"x\":\"";
    request.push_str(&format!("{:x}\r\n{start}\r\n", start.len()));
    for _ in 0..17 {
        request.push_str(&format!("{:x}\r\n{chunk}\r\n", chunk.len()));
    }
    request.push_str("2\r\n\"}\r\n0\r\n\r\n");
    let answer = exchange(&addr, request.as_bytes(), Duration::from_secs(20))
        .await
        .expect("an answer");
    assert_eq!(answer.status, 413, "{}", answer.head);
    assert_eq!(answer.fhir()["resourceType"], "OperationOutcome");
    assert_eq!(answer.error_code(), "BAD_REQUEST");
    metadata_ok(&s).await;
}

/// A server whose task writes go through a [`FaultyStore`], and that store.
async fn server_with_faults() -> (TestServer, Arc<FaultyStore>) {
    let mut faulty = None;
    let s = TestServer::start_adjusted(
        tempfile::tempdir().unwrap(),
        ServerConfig::default(),
        |state| {
            let store = Arc::new(FaultyStore::new(state.store.clone()));
            state.store = store.clone();
            faulty = Some(store);
        },
    )
    .await;
    (s, faulty.unwrap())
}

async fn gpc001_tasks(s: &TestServer) -> u64 {
    let gpc001 = gpc_domain::OdsCode::parse("GPC001").unwrap();
    s.state.store.count_tasks(&gpc001).await.unwrap()
}

#[tokio::test]
async fn a_handler_that_panics_answers_500_and_the_connection_and_server_carry_on() {
    let (s, faults) = server_with_faults().await;
    faults.queue(Fault::Panic);
    let addr = authority(&s.base).to_owned();
    let order = dawes_order().to_string();
    let mut create = order_head(&addr, &format!("Content-Length: {}\r\n", order.len()));
    create.push_str(&order);
    let mut stream = TcpStream::connect(&addr).await.unwrap();
    stream.write_all(create.as_bytes()).await.unwrap();
    let answer = next_answer(&mut stream, Duration::from_secs(20))
        .await
        .expect("an answer, not a dropped connection");
    assert_eq!(answer.status, 500, "{}", answer.head);
    assert_eq!(answer.fhir()["resourceType"], "OperationOutcome");
    assert_eq!(answer.error_code(), "INTERNAL_SERVER_ERROR");
    assert_eq!(answer.fhir()["issue"][0]["code"], "exception");
    assert_eq!(answer.header("cache-control"), Some("no-store, no-cache"));
    // The same connection serves the next request.
    let mut metadata = format!("GET /GPC001/DSTU2/1/metadata HTTP/1.1\r\nHost: {addr}\r\n");
    for (k, v) in &headers(
        METADATA,
        GPC001_ASID,
        &Jwt::new("organization/*.read", org_record("GPC001")).encode(),
    ) {
        metadata.push_str(&format!("{k}: {}\r\n", v.to_str().unwrap()));
    }
    metadata.push_str("\r\n");
    stream.write_all(metadata.as_bytes()).await.unwrap();
    let answer = next_answer(&mut stream, Duration::from_secs(20))
        .await
        .expect("the connection carries on");
    assert_eq!(answer.status, 200, "{}", answer.head);
    // And the server stores the same Order once the bug is gone.
    let (status, _, body) = send(s.post_order_as("GPC001", GPC001_ASID, order, JSON)).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(gpc001_tasks(&s).await, 1);
}

#[tokio::test]
async fn a_storage_write_error_is_a_503_and_a_retry_stores_the_task_once() {
    let (s, faults) = server_with_faults().await;
    let expect_unavailable =
        |(status, headers, body): (u16, reqwest::header::HeaderMap, serde_json::Value)| {
            assert_eq!(status, 503, "{body}");
            assert_eq!(headers["retry-after"], "1");
            assert_eq!(body["resourceType"], "OperationOutcome", "{body}");
            assert_eq!(error_code(&body), "INTERNAL_SERVER_ERROR", "{body}");
            assert_eq!(body["issue"][0]["code"], "transient", "{body}");
        };
    // The write fails before anything reached the disk.
    let first = dawes_order();
    faults.queue(Fault::FailBeforeWriting);
    expect_unavailable(send(s.post_order("GPC001", GPC001_ASID, &first)).await);
    assert_eq!(gpc001_tasks(&s).await, 0);
    let (status, _, stored) = send(s.post_order("GPC001", GPC001_ASID, &first)).await;
    assert_eq!(status, 201, "{stored}");
    assert_eq!(gpc001_tasks(&s).await, 1);
    // The write fails after the task reached the disk: the retry finds it.
    let second = dawes_order();
    faults.queue(Fault::FailAfterWriting);
    expect_unavailable(send(s.post_order("GPC001", GPC001_ASID, &second)).await);
    assert_eq!(gpc001_tasks(&s).await, 2);
    let (status, _, found) = send(s.post_order("GPC001", GPC001_ASID, &second)).await;
    assert_eq!(status, 200, "the stored task, not a new one: {found}");
    let (status, _, again) = send(s.post_order("GPC001", GPC001_ASID, &second)).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["id"], found["id"]);
    assert_ne!(found["id"], stored["id"]);
    assert_eq!(gpc001_tasks(&s).await, 2);
}
