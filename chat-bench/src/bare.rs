//! The bare hyper server the HTTP figures are read against: no routing, no
//! authentication, no store. A GET answers a stored JSON body of the size the real server
//! sends for the same path; a POST parses its JSON body and echoes it, as the real server
//! parses a body and answers with the object.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::CONTENT_TYPE;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

/// The bare server's options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The address to listen on.
    #[arg(long)]
    listen: SocketAddr,
    /// The body of a GET whose path ends in `/messages` (a page).
    #[arg(long)]
    page_body: PathBuf,
    /// The body of any other GET (a conversation).
    #[arg(long)]
    conversation_body: PathBuf,
}

struct Bodies {
    page: Bytes,
    conversation: Bytes,
}

/// Serves until killed.
pub async fn serve(args: Args) {
    let bodies = Arc::new(Bodies {
        page: std::fs::read(&args.page_body)
            .expect("the page body")
            .into(),
        conversation: std::fs::read(&args.conversation_body)
            .expect("the conversation body")
            .into(),
    });
    let listener = TcpListener::bind(args.listen).await.expect("binding");
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        stream.set_nodelay(true).ok();
        let bodies = Arc::clone(&bodies);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| answer(Arc::clone(&bodies), req));
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn answer(
    bodies: Arc<Bodies>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, body) = if req.method() == Method::POST {
        match req.into_body().collect().await {
            Ok(collected) => {
                match serde_json::from_slice::<serde_json::Value>(&collected.to_bytes()) {
                    Ok(value) => (
                        StatusCode::CREATED,
                        Bytes::from(serde_json::to_vec(&value).unwrap_or_default()),
                    ),
                    Err(_) => (StatusCode::BAD_REQUEST, Bytes::new()),
                }
            }
            Err(_) => (StatusCode::BAD_REQUEST, Bytes::new()),
        }
    } else if req.uri().path().ends_with("/messages") {
        (StatusCode::OK, bodies.page.clone())
    } else {
        (StatusCode::OK, bodies.conversation.clone())
    };
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, "application/json".parse().expect("a header"));
    Ok(response)
}
