//! The HTTP server inside an application of your own: the application opens the store,
//! builds the service with its own settings, serves the API on a port it chose, calls it,
//! and stops it when it is done.
//!
//! ```sh
//! cargo run -p chat-store-examples --example embedded_server
//! ```

use std::sync::Arc;

use chat_core::{ChatService, MasterKey, Sealer, ServiceConfig};
use chat_server::metrics::store::MeteredStore;
use chat_server::{AppConfig, app, serve};
use chat_store_sql::SqliteStore;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    // The application's own store: here an SQLite file in a temporary directory.
    let dir = std::env::temp_dir().join(format!("chat-store-embedded-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let store = Arc::new(SqliteStore::open(dir.join("chat.db")).await?);

    // Wrapping the store is optional: it adds store latencies to GET /metrics.
    let service = ChatService::new(
        MeteredStore::wrap(store),
        // A real application loads its master key from somewhere safe.
        Sealer::new(1, MasterKey::generate()),
        ServiceConfig::default(),
    );
    let config = AppConfig {
        max_body_bytes: 256 * 1024,
        ..AppConfig::default()
    };

    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, app(service, config), async {
        let _ = stopped.await;
    }));
    println!("serving the chat API on http://{addr}");

    // The application (or anything on the network) calls it like any HTTP API.
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    for path in ["/healthz", "/readyz"] {
        let response = client.get(format!("http://{addr}{path}").parse()?).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        println!("GET {path}: {status} {}", String::from_utf8_lossy(&body));
    }

    // Stopping lets requests in flight finish, then returns.
    let _ = stop.send(());
    server.await??;
    std::fs::remove_dir_all(&dir)?;
    println!("stopped");
    Ok(())
}
