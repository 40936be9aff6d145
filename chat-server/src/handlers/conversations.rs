//! Conversations: a user's, newest first.

use chat_core::{Caller, ConversationId, NewConversation, Title, UserId};

use super::reply::{created, no_content, ok, page};
use super::{Ctx, Reply};
use crate::dto::{ConversationOut, CreateConversationRequest, RenameConversationRequest};
use crate::params::{IdCursor, Query};

pub(crate) async fn create_conversation(caller: &Caller, ctx: Ctx<'_>) -> Reply {
    let req: CreateConversationRequest = ctx.body()?;
    let new = NewConversation::parse(req.user_id.map(UserId::from_uuid), &req.title)?;
    let conversation = ctx.service.create_conversation(caller, new).await?;
    let location = format!("/chat/conversations/{}", conversation.id);
    created(&ConversationOut::from(conversation), Some(location))
}

pub(crate) async fn list_conversations(caller: &Caller, ctx: Ctx<'_>) -> Reply {
    let (limit, before) = Query::parse(ctx.query)?.id_page::<ConversationId>(IdCursor::Before)?;
    let items = ctx
        .service
        .list_conversations(caller, before, limit)
        .await?;
    let n = limit.get();
    page::<_, ConversationOut>(
        items,
        n,
        |c| format!("limit={n}&before={}", c.id),
        "/chat/conversations",
    )
}

pub(crate) async fn get_conversation(caller: &Caller, ctx: Ctx<'_>) -> Reply {
    let id = ctx.param::<ConversationId>("id")?;
    let conversation = ctx.service.get_conversation(caller, id).await?;
    ok(&ConversationOut::from(conversation))
}

pub(crate) async fn rename_conversation(caller: &Caller, ctx: Ctx<'_>) -> Reply {
    let req: RenameConversationRequest = ctx.body()?;
    let title = Title::parse(&req.title)?;
    let id = ctx.param::<ConversationId>("id")?;
    let conversation = ctx.service.rename_conversation(caller, id, title).await?;
    ok(&ConversationOut::from(conversation))
}

pub(crate) async fn delete_conversation(caller: &Caller, ctx: Ctx<'_>) -> Reply {
    let id = ctx.param::<ConversationId>("id")?;
    ctx.service.delete_conversation(caller, id).await?;
    no_content()
}
