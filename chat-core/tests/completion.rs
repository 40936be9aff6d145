//! `ChatService::complete` with a substitute `LlmClient`: the history budget, the key handed
//! to the client, the reply's size limit, and a handle dropped mid-call.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chat_core::accounts::PasswordCost;
use chat_core::completion::{
    CompletionEvent, CompletionRequest, DeltaSink, Finished, LlmClient, UpstreamCall, UpstreamError,
};
use chat_core::{
    Caller, ChatService, Error, Limit, MasterKey, MemoryStore, MessageOrder, NewConfig,
    NewConversation, NewMessage, NewProvider, NewUser, Role, Sealer, ServiceConfig,
};

/// What a call carried: the key, and the history as (role, content).
type Seen = (String, Vec<(Role, String)>);

/// Answers with `pieces`, after `delay`, and keeps what it was asked.
struct Scripted {
    pieces: Vec<String>,
    delay: Duration,
    seen: Mutex<Vec<Seen>>,
}

#[async_trait]
impl LlmClient for Scripted {
    async fn complete(
        &self,
        call: UpstreamCall,
        on_delta: DeltaSink<'_>,
    ) -> Result<Finished, UpstreamError> {
        self.seen.lock().unwrap().push((
            call.api_key.expose_secret().to_owned(),
            call.messages
                .iter()
                .map(|t| (t.role, t.content.clone()))
                .collect(),
        ));
        drop(call);
        for piece in &self.pieces {
            tokio::time::sleep(self.delay).await;
            on_delta(piece)?;
        }
        Ok(Finished {
            finish_reason: Some("stop".into()),
            usage: None,
        })
    }
}

fn scripted(pieces: &[&str], delay: Duration) -> Arc<Scripted> {
    Arc::new(Scripted {
        pieces: pieces.iter().map(|p| (*p).to_owned()).collect(),
        delay,
        seen: Mutex::new(Vec::new()),
    })
}

async fn setup(
    config: ServiceConfig,
) -> (
    ChatService,
    Caller,
    chat_core::ConversationId,
    chat_core::ProviderId,
) {
    let service = ChatService::new(
        Arc::new(MemoryStore::new()),
        Sealer::new(1, MasterKey::generate()),
        ServiceConfig {
            password_cost: PasswordCost::INSECURE_FOR_TESTS,
            ..config
        },
    );
    let user = service
        .register(NewUser::parse("ada", "password-of-ada", None).unwrap())
        .await
        .unwrap();
    let ada = Caller::trusted(user.id);
    let provider = service
        .create_provider(
            &ada,
            NewProvider::parse("p", "https://llm.example/v1").unwrap(),
        )
        .await
        .unwrap();
    add_key(&service, &ada, provider.id, "sk-the-key-1234").await;
    let chat = service
        .create_conversation(&ada, NewConversation::parse(None, "c").unwrap())
        .await
        .unwrap();
    for text in ["one", "two", "three"] {
        service
            .append_message(
                &ada,
                NewMessage::parse(chat.id, "user", text, None).unwrap(),
            )
            .await
            .unwrap();
    }
    (service, ada, chat.id, provider.id)
}

async fn add_key(service: &ChatService, who: &Caller, provider: chat_core::ProviderId, key: &str) {
    service
        .create_config(who, NewConfig::parse(None, provider, key).unwrap())
        .await
        .unwrap();
}

async fn stored(
    service: &ChatService,
    who: &Caller,
    chat: chat_core::ConversationId,
) -> Vec<chat_core::Message> {
    service
        .list_messages(
            who,
            chat,
            MessageOrder::Ascending { after: None },
            Limit::DEFAULT,
        )
        .await
        .unwrap()
}

fn request(provider: chat_core::ProviderId, stream: bool) -> CompletionRequest {
    CompletionRequest::parse(provider, "m", None, None, stream).unwrap()
}

#[tokio::test]
async fn the_newest_messages_that_fit_the_budget_go_oldest_first_with_the_key() {
    let (service, ada, chat, provider) = setup(ServiceConfig {
        completion_history: Limit::new(2).unwrap(),
        ..ServiceConfig::default()
    })
    .await;
    let client = scripted(&["a", "b"], Duration::ZERO);
    let mut completion = service
        .complete(&ada, chat, request(provider, true), client.clone())
        .await
        .unwrap();
    let mut deltas = Vec::new();
    let message = loop {
        match completion.next().await.unwrap() {
            CompletionEvent::Delta(d) => deltas.push(d),
            CompletionEvent::Done(result) => break result.unwrap(),
        }
    };
    assert_eq!(deltas, ["a", "b"]);
    assert_eq!(message.content, "ab");
    assert_eq!(message.seq, 4);
    assert_eq!(message.role, Role::Assistant);
    let seen = client.seen.lock().unwrap();
    assert_eq!(seen[0].0, "sk-the-key-1234");
    assert_eq!(
        seen[0].1,
        [
            (Role::User, "two".to_owned()),
            (Role::User, "three".to_owned())
        ]
    );
}

#[tokio::test]
async fn a_reply_over_the_content_limit_is_refused_and_not_stored() {
    let (service, ada, chat, provider) = setup(ServiceConfig {
        max_content_bytes: 10,
        ..ServiceConfig::default()
    })
    .await;
    let client = scripted(&["12345", "67890", "x"], Duration::ZERO);
    let result = service
        .complete(&ada, chat, request(provider, false), client)
        .await
        .unwrap()
        .finish()
        .await;
    assert!(
        matches!(
            result,
            Err(Error::Upstream(UpstreamError::TooLarge { limit: 10 }))
        ),
        "{result:?}"
    );
    let stored = stored(&service, &ada, chat).await;
    assert_eq!(stored.len(), 3);
}

#[tokio::test]
async fn dropping_the_handle_does_not_cancel_the_completion() {
    let (service, ada, chat, provider) = setup(ServiceConfig::default()).await;
    let client = scripted(&["slow ", "reply"], Duration::from_millis(100));
    let completion = service
        .complete(&ada, chat, request(provider, true), client)
        .await
        .unwrap();
    drop(completion);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stored = stored(&service, &ada, chat).await;
    assert_eq!(stored.len(), 4);
    assert_eq!(stored[3].content, "slow reply");
}

/// Each completion that ran counts once, labelled by the shared provider's name or
/// "private" (never a user's text), and by its outcome.
#[test]
fn each_completion_counts_once_by_provider_and_outcome() {
    use metrics_util::debugging::{DebugValue, DebuggingRecorder};
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    // A current-thread runtime runs the completion's task on this thread, where the local
    // recorder is.
    metrics::with_local_recorder(&recorder, || {
        runtime.block_on(async {
            let (service, ada, chat, provider) = setup(ServiceConfig {
                max_content_bytes: 5,
                ..ServiceConfig::default()
            })
            .await;
            let shared = service
                .create_shared_provider(
                    NewProvider::parse("Operator's LLM", "https://llm.example/v1").unwrap(),
                )
                .await
                .unwrap();
            add_key(&service, &ada, shared.id, "sk-another-key").await;
            for (provider, pieces) in [
                (provider, &["ok"][..]),
                (provider, &["too long"][..]),
                (shared.id, &["ok"][..]),
            ] {
                let _ = service
                    .complete(
                        &ada,
                        chat,
                        request(provider, false),
                        scripted(pieces, Duration::ZERO),
                    )
                    .await
                    .unwrap()
                    .finish()
                    .await;
            }
        });
    });
    let mut counts: Vec<(String, String, u64)> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .filter(|(key, ..)| key.key().name() == "chat_completions_total")
        .map(|(key, _, _, value)| {
            let label = |name: &str| {
                key.key()
                    .labels()
                    .find(|l| l.key() == name)
                    .map(|l| l.value().to_owned())
                    .unwrap()
            };
            let DebugValue::Counter(n) = value else {
                panic!("not a counter")
            };
            (label("provider"), label("outcome"), n)
        })
        .collect();
    counts.sort();
    assert_eq!(
        counts,
        [
            ("Operator's LLM".to_owned(), "stored".to_owned(), 1),
            ("private".to_owned(), "stored".to_owned(), 1),
            ("private".to_owned(), "upstream_error".to_owned(), 1),
        ]
    );
}
