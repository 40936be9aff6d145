//! Messages: appended to a conversation, paged by their position in it.

use chat_core::{Caller, ConversationId, MessageId, MessageOrder, NewMessage};

use super::reply::{created, no_content, ok, page};
use super::{Ctx, Reply};
use crate::dto::{CreateMessageRequest, MessageOut};
use crate::params::{Query, cursor_seq};

pub(crate) async fn create_message(caller: &Caller, ctx: Ctx<'_>) -> Reply {
    let req: CreateMessageRequest = ctx.body()?;
    let new = NewMessage::parse(
        ConversationId::from_uuid(req.conversation_id),
        &req.role,
        &req.content,
        req.metadata,
    )?;
    let message = ctx.service.append_message(caller, new).await?;
    let location = format!("/chat/messages/{}", message.id);
    created(&MessageOut::from(message), Some(location))
}

pub(crate) async fn list_messages(caller: &Caller, ctx: Ctx<'_>) -> Reply {
    let id = ctx.param::<ConversationId>("id")?;
    let query = Query::parse(ctx.query)?;
    let limit = query.limit()?;
    let descending = match query.order.as_deref() {
        None | Some("asc") => false,
        Some("desc") => true,
        Some(_) => {
            return Err(chat_core::ValidationError::new(
                "order",
                chat_core::validation::Rule::OneOf(&["asc", "desc"]),
            )
            .into());
        }
    };
    let order = if descending {
        Query::forbid(&query.after, "after", "goes only with order=asc")?;
        MessageOrder::Descending {
            before: cursor_seq(query.before.as_deref(), "before")?,
        }
    } else {
        Query::forbid(&query.before, "before", "goes only with order=desc")?;
        MessageOrder::Ascending {
            after: cursor_seq(query.after.as_deref(), "after")?,
        }
    };
    let items = ctx.service.list_messages(caller, id, order, limit).await?;
    let n = limit.get();
    page::<_, MessageOut>(
        items,
        n,
        |m| {
            if descending {
                format!("order=desc&limit={n}&before={}", m.seq)
            } else {
                format!("limit={n}&after={}", m.seq)
            }
        },
        &format!("/chat/conversations/{id}/messages"),
    )
}

pub(crate) async fn get_message(caller: &Caller, ctx: Ctx<'_>) -> Reply {
    let id = ctx.param::<MessageId>("id")?;
    let message = ctx.service.get_message(caller, id).await?;
    ok(&MessageOut::from(message))
}

pub(crate) async fn delete_message(caller: &Caller, ctx: Ctx<'_>) -> Reply {
    let id = ctx.param::<MessageId>("id")?;
    ctx.service.delete_message(caller, id).await?;
    no_content()
}
