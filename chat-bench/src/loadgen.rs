//! The load generator: N HTTP/1.1 keep-alive connections over hyper's client, each
//! sending its next request as soon as the previous answer has been read in full.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::report::percentile;

/// Why a request could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The connection could not be opened.
    #[error("connecting to {addr}: {source}")]
    Connect {
        /// Where to.
        addr: SocketAddr,
        /// Why not.
        source: std::io::Error,
    },
    /// HTTP failed.
    #[error("HTTP: {0}")]
    Http(#[from] hyper::Error),
    /// The request could not be built.
    #[error("building a request: {0}")]
    Request(#[from] hyper::http::Error),
}

/// One request of the load.
#[derive(Debug, Clone)]
pub struct Req {
    /// Its method.
    pub method: Method,
    /// Its path and query.
    pub path: String,
    /// A JSON body, for POST.
    pub body: Option<Bytes>,
}

impl Req {
    /// A GET of `path`.
    pub fn get(path: String) -> Req {
        Req {
            method: Method::GET,
            path,
            body: None,
        }
    }

    /// A POST of the JSON `body` to `path`.
    pub fn post(path: &str, body: &serde_json::Value) -> Req {
        Req {
            method: Method::POST,
            path: path.to_owned(),
            body: Some(Bytes::from(body.to_string())),
        }
    }
}

/// Chooses request number `i` of connection `c`.
pub type Plan = Arc<dyn Fn(usize, u64) -> Req + Send + Sync>;

/// One open connection, for setting up and for the load.
pub struct Client {
    sender: SendRequest<Full<Bytes>>,
    auth: Option<String>,
}

impl Client {
    /// Connects to `addr`; requests carry `token` as a bearer token when given.
    pub async fn connect(addr: SocketAddr, token: Option<&str>) -> Result<Client, ClientError> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|source| ClientError::Connect { addr, source })?;
        stream.set_nodelay(true).ok();
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(conn);
        Ok(Client {
            sender,
            auth: token.map(|t| format!("Bearer {t}")),
        })
    }

    /// Sends `req` and reads the whole answer.
    pub async fn send(&mut self, req: &Req) -> Result<(StatusCode, Bytes), ClientError> {
        let mut builder = Request::builder()
            .method(req.method.clone())
            .uri(&req.path)
            .header(HOST, "bench");
        if let Some(auth) = &self.auth {
            builder = builder.header(AUTHORIZATION, auth);
        }
        if req.body.is_some() {
            builder = builder.header(CONTENT_TYPE, "application/json");
        }
        let request = builder.body(Full::new(req.body.clone().unwrap_or_default()))?;
        self.sender.ready().await?;
        let response = self.sender.send_request(request).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }
}

/// What one load run measured.
#[derive(Debug, Clone, Copy)]
pub struct Outcome {
    /// Answered requests per second.
    pub rate: f64,
    /// Median latency, ms.
    pub p50: f64,
    /// 99th percentile latency, ms.
    pub p99: f64,
    /// Answers that were not 2xx, or requests that failed.
    pub errors: u64,
}

/// Sends the requests of `plan` over `connections` connections for `seconds` (after a
/// warm-up of a fifth of that, not counted).
pub async fn run(
    addr: SocketAddr,
    token: &str,
    connections: usize,
    seconds: f64,
    plan: Plan,
) -> Outcome {
    let warm_until = Instant::now() + Duration::from_secs_f64(seconds / 5.0);
    let end = warm_until + Duration::from_secs_f64(seconds);
    let mut set = tokio::task::JoinSet::new();
    for c in 0..connections {
        let plan = Arc::clone(&plan);
        let token = token.to_owned();
        set.spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            let Ok(mut client) = Client::connect(addr, Some(&token)).await else {
                return (latencies, 1);
            };
            let mut i = 0u64;
            loop {
                let started = Instant::now();
                if started >= end {
                    break;
                }
                let req = plan(c, i);
                i += 1;
                let result = client.send(&req).await;
                let counted = started >= warm_until;
                match result {
                    Ok((status, _)) if status.is_success() => {}
                    Ok(_) => errors += u64::from(counted),
                    Err(_) => {
                        errors += 1;
                        break;
                    }
                }
                if counted {
                    latencies.push(started.elapsed().as_secs_f64() * 1e3);
                }
            }
            (latencies, errors)
        });
    }
    let mut all = Vec::new();
    let mut errors = 0;
    for (latencies, e) in set.join_all().await {
        all.extend(latencies);
        errors += e;
    }
    all.sort_by(f64::total_cmp);
    Outcome {
        rate: all.len() as f64 / seconds,
        p50: percentile(&all, 50.0),
        p99: percentile(&all, 99.0),
        errors,
    }
}
