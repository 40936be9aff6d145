//! Hostile and forgetful connections over real sockets: sockets that send nothing or part of
//! a request (HTTP/1 or HTTP/2), kept-alive connections left idle, HTTP/2 peers that stop
//! answering pings, and more of them than the connection cap.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use chat_server::AppConfig;
use common::{Backing, Kind, Server, response_complete, service_config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const HTTP2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// An empty SETTINGS frame, and its acknowledgement.
const HTTP2_SETTINGS: &[u8] = &[0, 0, 0, 4, 0, 0, 0, 0, 0];
const HTTP2_SETTINGS_ACK: &[u8] = &[0, 0, 0, 4, 1, 0, 0, 0, 0];
const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n";

/// What a hostile client sends before going quiet.
const OPENINGS: [&[u8]; 4] = [
    b"",
    b"PRI * HTTP/2.0\r\n",
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0",
    b"GET /healthz HTTP/1.1\r\nhost",
];

async fn start(config: AppConfig) -> (Backing, Server) {
    let backing = Backing::new(Kind::Memory).unwrap();
    let server = Server::start_with(&backing, service_config(), config).await;
    (backing, server)
}

/// A HEADERS frame on stream 1 asking for `GET /healthz`, ending the stream: HPACK-indexed
/// `:method GET` and `:scheme http`, then `:path` and `:authority` as literals.
fn http2_get_healthz() -> Vec<u8> {
    let mut block = vec![0x82, 0x86, 0x04, 8];
    block.extend_from_slice(b"/healthz");
    block.extend_from_slice(&[0x01, 1, b'x']);
    let mut frame = vec![
        0,
        0,
        u8::try_from(block.len()).unwrap(),
        1,
        0x05,
        0,
        0,
        0,
        1,
    ];
    frame.extend_from_slice(&block);
    frame
}

/// The (type, flags, stream) of each whole frame in `bytes`, which follow the server's
/// side of the connection start (no preface: servers send none).
fn http2_frames(bytes: &[u8]) -> Vec<(u8, u8, u32)> {
    let mut frames = Vec::new();
    let mut rest = bytes;
    while rest.len() >= 9 {
        let len = usize::from(rest[0]) << 16 | usize::from(rest[1]) << 8 | usize::from(rest[2]);
        let stream = u32::from_be_bytes([rest[5] & 0x7f, rest[6], rest[7], rest[8]]);
        frames.push((rest[3], rest[4], stream));
        rest = rest.get(9 + len..).unwrap_or_default();
    }
    frames
}

/// Reads until the server closes the connection; what it sent and when it closed, or
/// `None` if it was still open after `limit`.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> Option<(Vec<u8>, Duration)> {
    let started = Instant::now();
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = limit.checked_sub(started.elapsed())?;
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0) | Err(_)) => return Some((received, started.elapsed())),
            Ok(Ok(n)) => received.extend_from_slice(&buf[..n]),
        }
    }
}

/// Sends one HTTP/1.1 request on `stream` and reads its (small, fixed-length) response.
async fn exchange(stream: &mut TcpStream, request: &[u8]) -> String {
    stream.write_all(request).await.unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !response_complete(&answer) {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .expect("an answer")
            .unwrap();
        assert!(
            n > 0,
            "closed before answering: {}",
            String::from_utf8_lossy(&answer)
        );
        answer.extend_from_slice(&buf[..n]);
    }
    String::from_utf8_lossy(&answer).into_owned()
}

/// `GET /healthz` on a new connection, answered within `limit`; how long it took.
async fn healthz_within(addr: SocketAddr, limit: Duration) -> Duration {
    let started = Instant::now();
    let answer = tokio::time::timeout(limit, async {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        exchange(&mut stream, HEALTHZ).await
    })
    .await
    .unwrap_or_else(|_| panic!("/healthz did not answer within {limit:?}"));
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_half_open_sockets_past_the_cap_leave_room_for_others() {
    let cap = 16;
    let (backing, server) = start(AppConfig {
        max_connections: cap,
        ..AppConfig::default()
    })
    .await;
    // Kept-alive connections that were served and went quiet…
    let mut quiet = Vec::new();
    for _ in 0..4 {
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        assert!(
            exchange(&mut stream, HEALTHZ)
                .await
                .starts_with("HTTP/1.1 200")
        );
        quiet.push(stream);
    }
    // …then three times the cap of sockets that send nothing or part of a request.
    let mut hostile = Vec::new();
    for n in 0..3 * cap {
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        stream
            .write_all(OPENINGS[n % OPENINGS.len()])
            .await
            .unwrap();
        hostile.push(stream);
    }
    for _ in 0..5 {
        healthz_within(server.addr, Duration::from_secs(2)).await;
    }
    // The room was made by closing the connections idle the longest: the first ones.
    for stream in quiet.iter_mut().chain(&mut hostile[..8]) {
        assert!(
            read_until_closed(stream, Duration::from_secs(2))
                .await
                .is_some(),
            "an old idle connection was left open"
        );
    }
    // The newest hostile sockets are still open: only what was needed was closed.
    let newest = hostile.last_mut().unwrap();
    assert!(
        read_until_closed(newest, Duration::from_millis(100))
            .await
            .is_none()
    );
    drop((quiet, hostile));
    server.stop().await;
    backing.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_request_unfinished_by_its_deadline_is_dropped_whatever_the_protocol() {
    let deadline = Duration::from_millis(300);
    let (backing, server) = start(AppConfig {
        header_read_timeout: deadline,
        ..AppConfig::default()
    })
    .await;
    let mut partial_http2_headers = HTTP2_PREFACE.to_vec();
    partial_http2_headers.extend_from_slice(HTTP2_SETTINGS);
    partial_http2_headers.extend_from_slice(&http2_get_healthz()[..12]);
    let openings: Vec<&[u8]> = OPENINGS
        .iter()
        .copied()
        .chain([&partial_http2_headers[..]])
        .collect();
    let mut streams = Vec::new();
    for opening in &openings {
        let connected = Instant::now();
        let mut stream = TcpStream::connect(server.addr).await.unwrap();
        stream.write_all(opening).await.unwrap();
        streams.push((stream, connected));
    }
    for ((stream, connected), opening) in streams.iter_mut().zip(&openings) {
        let closed = read_until_closed(stream, Duration::from_secs(3)).await;
        assert!(
            closed.is_some(),
            "still open long past the deadline after {:?}",
            String::from_utf8_lossy(opening)
        );
        let after = connected.elapsed();
        assert!(
            after >= deadline / 2,
            "closed before its deadline: {after:?}"
        );
    }
    server.stop().await;
    backing.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_alive_http1_connection_lives_for_the_idle_timeout_then_closes() {
    let idle = Duration::from_millis(1500);
    let (backing, server) = start(AppConfig {
        header_read_timeout: Duration::from_millis(300),
        idle_timeout: idle,
        ..AppConfig::default()
    })
    .await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    assert!(
        exchange(&mut stream, HEALTHZ)
            .await
            .starts_with("HTTP/1.1 200")
    );
    // Longer than the first request's deadline, shorter than the idle timeout.
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        exchange(&mut stream, HEALTHZ)
            .await
            .starts_with("HTTP/1.1 200")
    );
    let (_, after) = read_until_closed(&mut stream, idle + Duration::from_secs(3))
        .await
        .expect("an idle kept-alive connection is closed");
    assert!(
        after >= idle / 2,
        "closed before the idle timeout: {after:?}"
    );
    server.stop().await;
    backing.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_http2_connection_is_closed() {
    use http_body_util::Empty;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let (backing, server) = start(AppConfig {
        idle_timeout: Duration::from_millis(500),
        ..AppConfig::default()
    })
    .await;
    let stream = TcpStream::connect(server.addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    let connection = tokio::spawn(connection);
    let request = hyper::Request::get(format!("http://{}/healthz", server.addr))
        .body(Empty::<bytes::Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    drop(response);
    // The client keeps the connection (and `sender`) and would answer pings: only the
    // server's idle timeout ends it.
    tokio::time::timeout(Duration::from_secs(4), connection)
        .await
        .expect("the server closes an idle HTTP/2 connection")
        .unwrap()
        .ok();
    drop(sender);
    server.stop().await;
    backing.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_peer_that_stops_answering_pings_is_dropped() {
    let (backing, server) = start(AppConfig {
        http2_keep_alive_interval: Duration::from_millis(200),
        http2_keep_alive_timeout: Duration::from_millis(300),
        ..AppConfig::default()
    })
    .await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let mut hello = HTTP2_PREFACE.to_vec();
    hello.extend_from_slice(HTTP2_SETTINGS);
    hello.extend_from_slice(HTTP2_SETTINGS_ACK);
    hello.extend_from_slice(&http2_get_healthz());
    stream.write_all(&hello).await.unwrap();
    // Read everything, answer nothing.
    let (received, _) = read_until_closed(&mut stream, Duration::from_secs(4))
        .await
        .expect("a peer that does not answer pings is dropped");
    let frames = http2_frames(&received);
    assert!(
        frames
            .iter()
            .any(|&(kind, _, stream)| kind == 1 && stream == 1),
        "the request was answered first: {frames:?}"
    );
    assert!(
        frames
            .iter()
            .any(|&(kind, flags, _)| kind == 6 && flags & 1 == 0),
        "the server pinged: {frames:?}"
    );
    server.stop().await;
    backing.cleanup().await;
}
