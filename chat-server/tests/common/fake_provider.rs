//! A fake OpenAI-compatible provider on a loopback port, for the completion tests.
//!
//! It checks the bearer key (401 otherwise) and keeps every request body it was sent. The
//! model name picks what it does:
//!
//! - `echo`: answers `You said: <last message>` — whole JSON when not asked to stream,
//!   otherwise in three chunks with a comment line, `\r\n` line ends, a role-only chunk, a
//!   `choices: null` usage chunk (when `stream_options.include_usage` was sent) and `[DONE]`;
//! - `slow`: streams `piece 0 … piece 9`, one piece every 150 ms;
//! - `thinking`: sends `: thinking` comment lines every 300 ms for 1.5 s, then `done`;
//! - `stall`: streams one chunk, then sends nothing more while holding the connection;
//! - `mute`: sends nothing at all, not even a head;
//! - `reject`: 401; `fail`: 500 (both with the key in their body, which must never be
//!   relayed);
//! - `garbage`: 200 with a body that is not what the format says;
//! - `no-done`: chunks with no `finish_reason`, then the end of the body without `[DONE]`;
//! - `huge`: streams 64 KiB pieces for ever;
//! - `redirect`: 307 to the address given by [`FakeProvider::redirect_to`].

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

type Body = BoxBody<Bytes, Infallible>;

struct State {
    key: String,
    requests: Mutex<Vec<Value>>,
    connections: AtomicUsize,
    hits: AtomicUsize,
    redirect: Mutex<Option<String>>,
}

/// The running fake; stops when dropped.
pub struct FakeProvider {
    pub addr: SocketAddr,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeProvider {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeProvider {
    /// A fake that accepts `key`.
    pub async fn start(key: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State {
            key: key.to_owned(),
            requests: Mutex::new(Vec::new()),
            connections: AtomicUsize::new(0),
            hits: AtomicUsize::new(0),
            redirect: Mutex::new(None),
        });
        let shared = Arc::clone(&state);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                shared.connections.fetch_add(1, Ordering::SeqCst);
                let state = Arc::clone(&shared);
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        let state = Arc::clone(&state);
                        async move { Ok::<_, Infallible>(answer(&state, request).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self { addr, state, task }
    }

    /// Its endpoint, as a provider's `api_endpoint`.
    pub fn endpoint(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Where `redirect` sends the client.
    pub fn redirect_to(&self, url: &str) {
        *self.state.redirect.lock().unwrap() = Some(url.to_owned());
    }

    /// The request bodies it was sent, in order.
    pub fn requests(&self) -> Vec<Value> {
        self.state.requests.lock().unwrap().clone()
    }

    /// How many TCP connections it accepted.
    pub fn connections(&self) -> usize {
        self.state.connections.load(Ordering::SeqCst)
    }

    /// How many requests it received.
    pub fn hits(&self) -> usize {
        self.state.hits.load(Ordering::SeqCst)
    }
}

fn full(status: u16, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(body.into()).boxed())
        .unwrap()
}

/// A streamed body fed by a task: each item is written as it is sent.
fn streamed(
    feed: impl FnOnce(mpsc::Sender<Bytes>) -> tokio::task::JoinHandle<()>,
) -> Response<Body> {
    let (tx, rx) = mpsc::channel::<Bytes>(4);
    feed(tx);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|bytes| (Ok::<_, Infallible>(Frame::data(bytes)), rx))
    });
    Response::builder()
        .status(200)
        .header("content-type", "text/event-stream")
        .body(StreamBody::new(stream).boxed())
        .unwrap()
}

fn chunk(content: Option<&str>, finish: Option<&str>) -> String {
    let delta = match content {
        Some(text) => json!({"content": text}),
        None => json!({}),
    };
    let chunk = json!({
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    });
    format!("data: {chunk}\n\n")
}

async fn answer(state: &State, request: Request<hyper::body::Incoming>) -> Response<Body> {
    state.hits.fetch_add(1, Ordering::SeqCst);
    let auth = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let path = request.uri().path().to_owned();
    let body = request.into_body().collect().await.unwrap().to_bytes();
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return full(400, "application/json", r#"{"error":"not JSON"}"#);
    };
    state.requests.lock().unwrap().push(body.clone());
    if path != "/v1/chat/completions" {
        return full(404, "application/json", r#"{"error":"no such path"}"#);
    }
    let echoed_key = format!(
        r#"{{"error":{{"message":"Incorrect API key provided: {}"}}}}"#,
        state.key
    );
    if auth.as_deref() != Some(&format!("Bearer {}", state.key)) {
        return full(401, "application/json", echoed_key);
    }
    let stream = body["stream"] == json!(true);
    let usage = body["stream_options"]["include_usage"] == json!(true);
    let last = body["messages"]
        .as_array()
        .and_then(|m| m.last())
        .and_then(|m| m["content"].as_str())
        .unwrap_or("")
        .to_owned();
    let reply = format!("You said: {last}");
    match body["model"].as_str().unwrap_or("") {
        "echo" if !stream => full(
            200,
            "application/json",
            json!({
                "id": "chatcmpl-1",
                "object": "chat.completion",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12},
            })
            .to_string(),
        ),
        "echo" => streamed(move |tx| {
            tokio::spawn(async move {
                let (a, rest) = reply.split_at(4);
                let (b, c) = rest.split_at(rest.len() / 2);
                let role = r#"data: {"choices":[{"index":0,"delta":{"role":"assistant"}}]}"#;
                let mut out = vec![
                    ": keep-alive comment\r\n\r\n".to_owned(),
                    format!("{role}\r\n\r\n"),
                    chunk(Some(a), None).replace('\n', "\r\n"),
                    chunk(Some(b), None),
                    chunk(Some(c), None),
                    chunk(None, Some("stop")),
                ];
                if usage {
                    out.push(
                        "data: {\"choices\":null,\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":3}}\n\n"
                            .to_owned(),
                    );
                }
                out.push("data: [DONE]\n\n".to_owned());
                for piece in out {
                    if tx.send(Bytes::from(piece)).await.is_err() {
                        return;
                    }
                }
            })
        }),
        "slow" => streamed(|tx| {
            tokio::spawn(async move {
                for i in 0..10 {
                    let text = format!("piece {i} ");
                    if tx.send(Bytes::from(chunk(Some(&text), None))).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(150)).await;
                }
                let _ = tx.send(Bytes::from(chunk(None, Some("stop")))).await;
                let _ = tx.send(Bytes::from("data: [DONE]\n\n")).await;
            })
        }),
        "thinking" => streamed(|tx| {
            tokio::spawn(async move {
                for _ in 0..5 {
                    if tx.send(Bytes::from(": thinking\n\n")).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(300)).await;
                }
                let _ = tx.send(Bytes::from(chunk(Some("done"), Some("stop")))).await;
                let _ = tx.send(Bytes::from("data: [DONE]\n\n")).await;
            })
        }),
        "stall" => streamed(|tx| {
            tokio::spawn(async move {
                let _ = tx.send(Bytes::from(chunk(Some("the start"), None))).await;
                tokio::time::sleep(Duration::from_secs(3600)).await;
                drop(tx);
            })
        }),
        "mute" => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            full(200, "application/json", "{}")
        }
        "reject" => full(401, "application/json", echoed_key),
        "fail" => full(500, "application/json", echoed_key),
        "garbage" if stream => full(200, "text/event-stream", "data: {this is not json\n\n"),
        "garbage" => full(200, "application/json", "<html>not an answer</html>"),
        "no-done" => full(
            200,
            "text/event-stream",
            format!("{}{}", chunk(Some("half"), None), chunk(Some(" a reply"), None)),
        ),
        "huge" => streamed(|tx| {
            tokio::spawn(async move {
                let piece = "x".repeat(64 * 1024);
                while tx.send(Bytes::from(chunk(Some(&piece), None))).await.is_ok() {}
            })
        }),
        "redirect" => {
            let target = state.redirect.lock().unwrap().clone().unwrap_or_default();
            Response::builder()
                .status(307)
                .header("location", target)
                .body(Full::new(Bytes::new()).boxed())
                .unwrap()
        }
        other => full(404, "application/json", json!({"error": format!("no model {other}")}).to_string()),
    }
}
