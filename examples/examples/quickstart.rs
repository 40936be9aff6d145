//! A tour of chat-store from Rust: accounts, a conversation, paging, and a sealed API key,
//! on the embedded sled store.
//!
//! ```sh
//! cargo run -p chat-store-examples --example quickstart [DATA_DIR]
//! ```
//!
//! Without `DATA_DIR` it works in a fresh directory under the system's temporary directory.

use std::sync::Arc;

use chat_core::{
    Caller, ChatService, Limit, MasterKey, MessageOrder, NewConfig, NewConversation, NewMessage,
    NewProvider, NewUser, Sealer, ServiceConfig,
};
use chat_store_sled::SledStore;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).map_or_else(
        || std::env::temp_dir().join(format!("chat-store-quickstart-{}", std::process::id())),
        std::path::PathBuf::from,
    );
    let store = Arc::new(SledStore::open(&dir)?);
    // A real application keeps its master key somewhere safe and loads it at startup.
    let service = ChatService::new(
        store,
        Sealer::new(1, MasterKey::generate()),
        ServiceConfig::default(),
    );

    let user = service
        .register(NewUser::parse("ada", "correct horse battery", None)?)
        .await?;
    let login = service.login("Ada", "correct horse battery").await?;
    println!(
        "registered {} ({}), token valid until {}",
        user.username, user.id, login.expires_at
    );
    let ada: Caller = service.authenticate(login.token.expose_secret()).await?;

    let chat = service
        .create_conversation(&ada, NewConversation::parse(None, "Trip to Lisbon")?)
        .await?;
    let lines = [
        ("system", "You are a helpful travel guide."),
        ("user", "Where should we eat tonight?"),
        ("assistant", "Cervejaria Ramiro, for seafood."),
        ("user", "And tomorrow?"),
    ];
    for (role, text) in lines {
        let message = NewMessage::parse(chat.id, role, text, None)?;
        let message = service.append_message(&ada, message).await?;
        println!("#{} {:>9}: {}", message.seq, message.role, message.content);
    }

    // The end of a long chat: the newest two, then the two before them.
    let newest = service
        .list_messages(
            &ada,
            chat.id,
            MessageOrder::Descending { before: None },
            Limit::new(2)?,
        )
        .await?;
    let before = newest.last().map(|m| m.seq);
    let older = service
        .list_messages(
            &ada,
            chat.id,
            MessageOrder::Descending { before },
            Limit::new(2)?,
        )
        .await?;
    println!(
        "newest page: {:?}, the page before: {:?}",
        newest.iter().map(|m| m.seq).collect::<Vec<_>>(),
        older.iter().map(|m| m.seq).collect::<Vec<_>>()
    );

    let provider = service
        .create_provider(
            &ada,
            NewProvider::parse("Local Ollama", "http://localhost:11434")?,
        )
        .await?;
    let config = service
        .create_config(
            &ada,
            NewConfig::parse(None, provider.id, "sk-local-0123456789abcdef")?,
        )
        .await?;
    println!(
        "stored a key for {}: shown as {:?}",
        provider.name, config.api_key_hint
    );
    let key = service.reveal_api_key(&ada, provider.id).await?;
    println!(
        "revealed on demand: {} characters",
        key.expose_secret().len()
    );

    println!("data kept in {}", dir.display());
    Ok(())
}
