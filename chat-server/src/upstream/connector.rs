//! The TCP connector of provider calls: it resolves the host itself and applies the endpoint
//! guard to every address it got, then connects to exactly those addresses. A check of the
//! host before the request would not do: DNS may answer differently a moment later (DNS
//! rebinding), so the address judged must be the address connected to.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper::Uri;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::guard;

/// Why no connection was made.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectError {
    /// The endpoint resolved to an address the guard refuses; nothing was sent.
    #[error("the endpoint's address is not allowed")]
    NotAllowed,
    /// The URL has no host.
    #[error("the endpoint has no host")]
    NoHost,
    /// The host name did not resolve.
    #[error("the endpoint's host name did not resolve")]
    Resolve(#[source] std::io::Error),
    /// No address accepted the connection.
    #[error("could not connect to the endpoint")]
    Connect(#[source] std::io::Error),
}

/// Resolves, guards, connects.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GuardedConnector {
    /// Whether internal addresses are allowed (the operator runs local models).
    pub(crate) allow_private: bool,
}

impl tower_service::Service<Uri> for GuardedConnector {
    type Response = TokioIo<TcpStream>;
    type Error = ConnectError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, ConnectError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), ConnectError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let addrs = resolve(&uri).await?;
            if !allow_private && addrs.iter().any(|a| !guard::is_public(a.ip())) {
                // One internal address is enough to refuse: a name that resolves to a
                // public and a private address is the classic rebinding set-up.
                return Err(ConnectError::NotAllowed);
            }
            let mut last = None;
            for addr in addrs {
                match TcpStream::connect(addr).await {
                    Ok(stream) => {
                        let _ = stream.set_nodelay(true);
                        return Ok(TokioIo::new(stream));
                    }
                    Err(e) => last = Some(e),
                }
            }
            Err(ConnectError::Connect(last.unwrap_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::NotFound, "no address")
            })))
        })
    }
}

/// Every address of the URL's host: the literal itself, or what DNS answers.
async fn resolve(uri: &Uri) -> Result<Vec<SocketAddr>, ConnectError> {
    let host = uri.host().ok_or(ConnectError::NoHost)?;
    let https = uri.scheme_str() == Some("https");
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    // IPv6 literals come bracketed in a URL.
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((bare, port))
        .await
        .map_err(ConnectError::Resolve)?
        .collect();
    if addrs.is_empty() {
        return Err(ConnectError::Resolve(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no address",
        )));
    }
    Ok(addrs)
}
