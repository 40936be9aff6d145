//! Opening whichever store a URL names, as `chat-server --store URL` does, and bringing its
//! schema up to date, as `chat-server migrate` does.
//!
//! ```sh
//! cargo run -p chat-store-examples --example open_from_url                # a temporary SQLite file
//! cargo run -p chat-store-examples --example open_from_url -- sled:./data
//! cargo run -p chat-store-examples --example open_from_url -- postgres://u:p@localhost/chat
//! ```

use chat_core::{
    Caller, ChatService, Limit, MasterKey, NewConversation, NewUser, Sealer, ServiceConfig,
};
use chat_server::store_url::StoreUrl;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Without an argument, a temporary SQLite file, removed at the end.
    let temporary = std::env::temp_dir().join(format!("chat-store-url-{}.db", std::process::id()));
    let given = std::env::args().nth(1);
    let url: StoreUrl = match &given {
        Some(url) => url.parse()?,
        None => format!("sqlite:{}", temporary.display()).parse()?,
    };
    // Display hides a PostgreSQL password.
    println!("store: {url}");

    // Creates the store if needed and applies pending migrations; says the version.
    println!("{}", url.migrate().await?);

    // Any store opens as an `Arc<dyn Store>`, which the service takes.
    let store = url.open().await?;
    println!("backend: {}", store.backend());
    let service = ChatService::new(
        store,
        Sealer::new(1, MasterKey::generate()),
        ServiceConfig::default(),
    );
    let name = format!("url-{}", std::process::id());
    let user = service
        .register(NewUser::parse(&name, "correct horse battery", None)?)
        .await?;
    let caller = Caller::trusted(user.id);
    service
        .create_conversation(&caller, NewConversation::parse(None, "opened from a URL")?)
        .await?;
    let conversations = service
        .list_conversations(&caller, None, Limit::DEFAULT)
        .await?;
    println!(
        "{} has {} conversation(s): {:?}",
        user.username,
        conversations.len(),
        conversations.iter().map(|c| &c.title).collect::<Vec<_>>()
    );
    drop(service);
    if given.is_none() {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", temporary.display()));
        }
    }
    Ok(())
}
