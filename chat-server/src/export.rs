//! Everything of one user's as NDJSON lines: what `GET /chat/export` streams and
//! `chat-server export --user NAME` prints, made by one producer.
//!
//! The order is the contract's: the `user`; then conversation by conversation, newest first,
//! a `conversation` line, then its `message` lines in `seq` order, each followed by its
//! `attachment` lines; then `provider` lines (the user's own, and the shared ones the user
//! has a config for); then `config` lines. Each `data` is the object as its `GET` shows it,
//! so no hash, token or key appears.
//!
//! The producer reads the store a page at a time and hands each line to a bounded channel,
//! so memory holds one page and a few lines whatever the amount exported, and a slow reader
//! slows the reading of the store instead of filling memory.

use bytes::Bytes;
use chat_core::{
    Caller, ChatService, ConversationId, Entity, Error, Limit, MessageOrder, ProviderId, Result,
};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::dto::{AttachmentOut, ConfigOut, ConversationOut, MessageOut, ProviderOut, UserOut};

/// How many lines may wait between the producer and the reader. A message line can be as
/// large as the content limit (256 KiB by default), so this is kept small.
pub const BUFFERED_LINES: usize = 16;

/// Conversations, attachments and providers read from the store per call.
const PAGE: Limit = Limit::DEFAULT;

/// Messages read per call: fewer, since each may be as large as the content limit.
const MESSAGE_PAGE: u64 = 16;

#[derive(Serialize)]
struct Line<'a, T> {
    #[serde(rename = "type")]
    kind: &'a str,
    data: T,
}

/// The lines of `caller`'s export, in order, each ending in `\n`; an `Err` ends them early.
/// The producer runs on its own task and stops when the receiver is dropped.
#[must_use]
pub fn lines(service: ChatService, caller: Caller) -> mpsc::Receiver<Result<Bytes>> {
    let (tx, rx) = mpsc::channel(BUFFERED_LINES);
    tokio::spawn(async move {
        let mut out = Sender(tx);
        if let Err(Stop::Failed(e)) = produce(&service, &caller, &mut out).await {
            // The reader learns the export is incomplete; it may be gone already.
            let _ = out.0.send(Err(e)).await;
        }
    });
    rx
}

/// Why producing stopped early.
enum Stop {
    /// The reader went away: nothing more to do.
    Gone,
    /// The store failed.
    Failed(Error),
}

impl From<Error> for Stop {
    fn from(e: Error) -> Self {
        Stop::Failed(e)
    }
}

struct Sender(mpsc::Sender<Result<Bytes>>);

impl Sender {
    async fn line<T: Serialize>(&mut self, kind: &str, data: T) -> Result<(), Stop> {
        let mut bytes = serde_json::to_vec(&Line { kind, data })
            .map_err(|e| Stop::Failed(Error::backend("export", e)))?;
        bytes.push(b'\n');
        self.0
            .send(Ok(Bytes::from(bytes)))
            .await
            .map_err(|_| Stop::Gone)
    }
}

/// A conversation deleted while it is being exported is left out from then on.
fn gone<T>(result: Result<T>) -> Result<Option<T>> {
    match result {
        Ok(found) => Ok(Some(found)),
        Err(Error::NotFound(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

async fn produce(service: &ChatService, caller: &Caller, out: &mut Sender) -> Result<(), Stop> {
    out.line("user", UserOut::from(service.me(caller).await?))
        .await?;

    let mut before: Option<ConversationId> = None;
    loop {
        let page = service.list_conversations(caller, before, PAGE).await?;
        let Some(last) = page.last() else { break };
        before = Some(last.id);
        for conversation in page {
            let id = conversation.id;
            out.line("conversation", ConversationOut::from(conversation))
                .await?;
            conversation_messages(service, caller, id, out).await?;
        }
    }

    // Two passes over the providers, so the configs need not be held until the providers
    // are written.
    providers(service, caller, out, Pass::Providers).await?;
    providers(service, caller, out, Pass::Configs).await?;
    Ok(())
}

async fn conversation_messages(
    service: &ChatService,
    caller: &Caller,
    conversation: ConversationId,
    out: &mut Sender,
) -> Result<(), Stop> {
    let mut after = None;
    loop {
        let order = MessageOrder::Ascending { after };
        let limit = Limit::new(MESSAGE_PAGE).map_err(Error::from)?;
        let Some(page) = gone(
            service
                .list_messages(caller, conversation, order, limit)
                .await,
        )?
        else {
            return Ok(());
        };
        let Some(last) = page.last() else {
            return Ok(());
        };
        after = Some(last.seq);
        for message in page {
            let id = message.id;
            out.line("message", MessageOut::from(message)).await?;
            let mut after = None;
            loop {
                let Some(attachments) =
                    gone(service.list_attachments(caller, id, after, PAGE).await)?
                else {
                    break;
                };
                let Some(last) = attachments.last() else {
                    break;
                };
                after = Some(last.id);
                for attachment in attachments {
                    out.line("attachment", AttachmentOut::from(attachment))
                        .await?;
                }
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Pass {
    Providers,
    Configs,
}

async fn providers(
    service: &ChatService,
    caller: &Caller,
    out: &mut Sender,
    pass: Pass,
) -> Result<(), Stop> {
    let mut after: Option<ProviderId> = None;
    loop {
        let page = service.list_providers(caller, after, PAGE).await?;
        let Some(last) = page.last() else {
            return Ok(());
        };
        after = Some(last.id);
        for provider in page {
            let config = match service
                .get_config(caller, caller.user_id(), provider.id)
                .await
            {
                Ok(config) => Some(config),
                Err(Error::NotFound(Entity::Config)) => None,
                Err(e) => return Err(e.into()),
            };
            let own = provider.owner_id == Some(caller.user_id());
            match (pass, config) {
                (Pass::Providers, config) if own || config.is_some() => {
                    out.line("provider", ProviderOut::from(provider)).await?;
                }
                (Pass::Configs, Some(config)) => {
                    out.line("config", ConfigOut::from(config)).await?;
                }
                _ => {}
            }
        }
    }
}
