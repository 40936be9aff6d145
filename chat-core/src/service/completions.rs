//! Completions: the history sent, the key opened for the call, the reply stored once.

use std::sync::Arc;

use tokio::sync::mpsc;

use super::{Caller, ChatService};
use crate::completion::{
    Completion, CompletionEvent, CompletionRequest, Finished, LlmClient, ModelName, Turn,
    UpstreamCall, UpstreamError,
};
use crate::error::{Entity, Error, Result};
use crate::ids::{ConversationId, MessageId, ProviderId};
use crate::model::{Message, MessageDraft, Role};
use crate::store::MessageOrder;
use crate::time;
use crate::validation::{Content, Metadata, Rule, ValidationError};

/// The longest `finish_reason` kept; the ones providers send are a word.
const MAX_FINISH_REASON_CHARS: usize = 64;

impl ChatService {
    /// Answers one of the caller's conversations through `client`, with the caller's own key
    /// for the provider `request` names, and stores the reply as the next `assistant`
    /// message, with metadata `{"provider_id","model","finish_reason","usage"?}`.
    ///
    /// The checks happen before anything runs, in this order: the conversation must be the
    /// caller's ([`Error::NotFound`]) and have a message ([`Error::Invalid`] on `id`), the
    /// provider must be visible to them and their config for it exist
    /// ([`Error::NotFoundField`] on `provider_id`). The newest
    /// [`completion_history`](super::ServiceConfig::completion_history) messages are sent,
    /// oldest first.
    ///
    /// The call then runs in a task of its own, which the returned [`Completion`] reports
    /// on: dropping the handle does not cancel it. The key is opened here, for this call
    /// only, and zeroized when the call ends. The reply is stored once, when the provider has
    /// finished; on any failure (the provider's, a reply over
    /// [`max_content_bytes`](super::ServiceConfig::max_content_bytes), the store's), nothing
    /// is stored and the last event is the error ([`Error::Upstream`],
    /// [`Error::UpstreamTimeout`] or the store's).
    ///
    /// Each completion that ran counts once in the `metrics` counter
    /// `chat_completions_total`, labelled `provider` (a shared provider's name, or
    /// `"private"`: never a user's text) and `outcome` (`stored`, `upstream_error`,
    /// `upstream_timeout`, `store_error`).
    pub async fn complete(
        &self,
        caller: &Caller,
        conversation: ConversationId,
        request: CompletionRequest,
        client: Arc<dyn LlmClient>,
    ) -> Result<Completion> {
        self.get_conversation(caller, conversation).await?;
        let mut history = self
            .inner
            .store
            .list_messages(
                conversation,
                MessageOrder::Descending { before: None },
                self.inner.config.completion_history,
            )
            .await?;
        if history.is_empty() {
            return Err(ValidationError::new(
                "id",
                Rule::Other("must name a conversation with at least one message to answer"),
            )
            .into());
        }
        let provider_id = request.provider_id();
        let not_found = |entity| Error::NotFoundField {
            entity,
            field: "provider_id",
        };
        let provider = match self.get_provider(caller, provider_id).await {
            Err(Error::NotFound(entity)) => return Err(not_found(entity)),
            other => other?,
        };
        let config = self
            .inner
            .store
            .get_config(caller.user_id(), provider_id)
            .await?
            .ok_or(not_found(Entity::Config))?;
        history.reverse();
        // The one place a key is opened for use; the call owns it from here, and it is
        // zeroized when the call is dropped.
        let api_key =
            self.inner
                .sealer
                .open(config.user_id, config.provider_id, &config.sealed_key)?;
        let max_reply_bytes = self.inner.config.max_content_bytes;
        let call = UpstreamCall {
            endpoint: provider.api_endpoint,
            api_key,
            model: request.model().clone(),
            temperature: request.temperature(),
            max_tokens: request.max_tokens(),
            stream: request.stream(),
            messages: history
                .into_iter()
                .map(|m| Turn {
                    role: m.role,
                    content: m.content,
                })
                .collect(),
            max_reply_bytes,
        };
        let (events, receiver) = mpsc::unbounded_channel();
        // Metrics must not carry user data: a shared provider's name is the operator's, a
        // private provider's is the user's.
        let provider_label = match provider.owner_id {
            None => provider.name,
            Some(_) => "private".to_owned(),
        };
        let reply = Reply {
            service: self.clone(),
            caller: *caller,
            conversation,
            provider_id,
            model: request.model().clone(),
            max_reply_bytes,
        };
        // A task of its own, so a client that goes away cancels nothing. The channel is
        // unbounded, but what goes through it is bounded by the reply's size limit.
        tokio::spawn(async move {
            let result = reply.run(client, call, &events).await;
            let outcome = match &result {
                Ok(_) => "stored",
                Err(Error::Upstream(_)) => "upstream_error",
                Err(Error::UpstreamTimeout(_)) => "upstream_timeout",
                Err(_) => "store_error",
            };
            metrics::counter!(
                "chat_completions_total",
                "provider" => provider_label,
                "outcome" => outcome,
            )
            .increment(1);
            let _ = events.send(CompletionEvent::Done(result));
        });
        Ok(Completion { events: receiver })
    }
}

/// What the task needs to store the reply.
struct Reply {
    service: ChatService,
    caller: Caller,
    conversation: ConversationId,
    provider_id: ProviderId,
    model: ModelName,
    max_reply_bytes: usize,
}

impl Reply {
    async fn run(
        self,
        client: Arc<dyn LlmClient>,
        call: UpstreamCall,
        events: &mpsc::UnboundedSender<CompletionEvent>,
    ) -> Result<Message> {
        let limit = self.max_reply_bytes;
        let mut text = String::new();
        let mut on_delta = |delta: &str| {
            if text.len() + delta.len() > limit {
                return Err(UpstreamError::TooLarge { limit });
            }
            if !delta.is_empty() {
                text.push_str(delta);
                // The caller may have gone away; the reply is still stored.
                let _ = events.send(CompletionEvent::Delta(delta.to_owned()));
            }
            Ok(())
        };
        let finished = client.complete(call, &mut on_delta).await?;
        let content = Content::parse_with_limit(&text, limit).map_err(|_| {
            UpstreamError::Malformed(if text.is_empty() {
                "the reply was empty".into()
            } else {
                "the reply held the character U+0000".into()
            })
        })?;
        let metadata = self.metadata(finished)?;
        let draft = MessageDraft {
            id: MessageId::new(),
            conversation_id: self.conversation,
            user_id: self.caller.user_id(),
            role: Role::Assistant,
            content: content.into_string(),
            metadata: Some(metadata),
            created_at: time::now(),
        };
        self.service.inner.store.append_message(draft).await
    }

    /// `{"provider_id","model","finish_reason","usage"?}`, compact, `usage` as the provider
    /// sent it. A `usage` that is not a JSON object the metadata rules accept is left out
    /// rather than fail a reply that is otherwise whole.
    fn metadata(&self, finished: Finished) -> Result<Metadata> {
        let finish_reason = match &finished.finish_reason {
            Some(reason) if reason.chars().count() > MAX_FINISH_REASON_CHARS => {
                return Err(
                    UpstreamError::Malformed("the finish_reason is too long".into()).into(),
                );
            }
            Some(reason) => json_string(reason),
            None => "null".to_owned(),
        };
        let head = format!(
            r#"{{"provider_id":{},"model":{},"finish_reason":{finish_reason}"#,
            json_string(&self.provider_id.to_string()),
            json_string(self.model.as_str()),
        );
        if let Some(usage) = finished.usage
            && usage.get().trim_start().starts_with('{')
            && let Ok(metadata) = Metadata::parse_json(&format!(r#"{head},"usage":{}}}"#, usage))
        {
            return Ok(metadata);
        }
        Metadata::parse_json(&format!("{head}}}")).map_err(|_| {
            UpstreamError::Malformed("the finish_reason cannot be stored".into()).into()
        })
    }
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).expect("a string always serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_must_be_an_object_to_be_kept() {
        let reply = Reply {
            service: ChatService::new(
                Arc::new(crate::MemoryStore::new()),
                crate::Sealer::new(1, crate::MasterKey::generate()),
                super::super::ServiceConfig::default(),
            ),
            caller: Caller::trusted(crate::UserId::new()),
            conversation: ConversationId::new(),
            provider_id: ProviderId::new(),
            model: ModelName::parse("m").unwrap(),
            max_reply_bytes: 10,
        };
        let raw = |s: &str| Some(serde_json::value::RawValue::from_string(s.into()).unwrap());
        let with = |usage, reason: Option<&str>| {
            reply
                .metadata(Finished {
                    finish_reason: reason.map(str::to_owned),
                    usage,
                })
                .map(|m| m.as_str().to_owned())
        };
        let p = reply.provider_id;
        assert_eq!(
            with(raw(r#"{ "total_tokens": 3 }"#), Some("stop")).unwrap(),
            format!(
                r#"{{"provider_id":"{p}","model":"m","finish_reason":"stop","usage":{{"total_tokens":3}}}}"#
            )
        );
        assert_eq!(
            with(raw("[1]"), None).unwrap(),
            format!(r#"{{"provider_id":"{p}","model":"m","finish_reason":null}}"#)
        );
        assert_eq!(
            with(raw(r#"{"a":1,"a":2}"#), None).unwrap(),
            format!(r#"{{"provider_id":"{p}","model":"m","finish_reason":null}}"#)
        );
        assert!(with(None, Some(&"x".repeat(65))).is_err());
        assert!(with(None, Some("a\0b")).is_err());
    }
}
