//! Attachments: references to files, under a message.

use chat_core::{AttachmentId, Caller, MessageId, NewAttachment};

use super::reply::{created, no_content, ok, page};
use super::{Ctx, Reply};
use crate::dto::{AttachmentOut, CreateAttachmentRequest};
use crate::params::{IdCursor, Query};

pub(crate) async fn create_attachment(caller: &Caller, ctx: Ctx<'_>) -> Reply {
    let req: CreateAttachmentRequest = ctx.body()?;
    let new = NewAttachment::parse(
        MessageId::from_uuid(req.message_id),
        &req.file_type,
        &req.file_path,
    )?;
    let attachment = ctx.service.create_attachment(caller, new).await?;
    let location = format!("/chat/attachments/{}", attachment.id);
    created(&AttachmentOut::from(attachment), Some(location))
}

pub(crate) async fn list_attachments(caller: &Caller, ctx: Ctx<'_>) -> Reply {
    let id = ctx.param::<MessageId>("id")?;
    let (limit, after) = Query::parse(ctx.query)?.id_page::<AttachmentId>(IdCursor::After)?;
    let items = ctx
        .service
        .list_attachments(caller, id, after, limit)
        .await?;
    let n = limit.get();
    page::<_, AttachmentOut>(
        items,
        n,
        |a| format!("limit={n}&after={}", a.id),
        &format!("/chat/messages/{id}/attachments"),
    )
}

pub(crate) async fn get_attachment(caller: &Caller, ctx: Ctx<'_>) -> Reply {
    let id = ctx.param::<AttachmentId>("id")?;
    let attachment = ctx.service.get_attachment(caller, id).await?;
    ok(&AttachmentOut::from(attachment))
}

pub(crate) async fn delete_attachment(caller: &Caller, ctx: Ctx<'_>) -> Reply {
    let id = ctx.param::<AttachmentId>("id")?;
    ctx.service.delete_attachment(caller, id).await?;
    no_content()
}
