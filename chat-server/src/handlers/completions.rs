//! Completions: the conversation answered through the caller's provider and key, the reply
//! stored, and relayed as it arrives when the client asks for a stream.

mod sse;

use std::sync::Arc;

use chat_core::completion::{CompletionEvent, CompletionRequest};
use chat_core::{Caller, ConversationId, ProviderId};

use super::reply::created;
use super::{Ctx, Reply};
use crate::dto::{CompletionRequestBody, MessageOut};

pub(crate) async fn complete(caller: &Caller, ctx: Ctx<'_>) -> Reply {
    let id = ctx.param::<ConversationId>("id")?;
    let req: CompletionRequestBody = ctx.body()?;
    let request = CompletionRequest::parse(
        ProviderId::from_uuid(req.provider_id),
        &req.model,
        req.temperature,
        req.max_tokens,
        req.stream.unwrap_or(false),
    )?;
    let stream = request.stream();
    let mut completion = ctx
        .service
        .complete(caller, id, request, Arc::clone(ctx.llm))
        .await?;
    if !stream {
        // The completion runs in its own task: if this request is dropped (the client went
        // away), the reply is still stored.
        let message = completion.finish().await?;
        let location = format!("/chat/messages/{}", message.id);
        return created(&MessageOut::from(message), Some(location));
    }
    // Whatever fails before the first piece of the reply (the guard, the provider's status,
    // a timeout before it answered) is an ordinary error response.
    let first = match completion.next().await {
        Some(CompletionEvent::Done(Err(e))) => return Err(e.into()),
        Some(event) => event,
        None => {
            return Err(
                chat_core::Error::backend("completion", "the completion task ended").into(),
            );
        }
    };
    Ok(sse::response(first, completion, ctx.request_id))
}
