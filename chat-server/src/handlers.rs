//! One function per endpoint: read the request's parts, call the service, shape the answer.
//! The rules of access and validation live in the service, not here.

use bytes::Bytes;
use chat_core::{
    AttachmentId, Caller, ChatService, ConversationId, MessageId, MessageOrder, NewAttachment,
    NewConfig, NewConversation, NewMessage, NewProvider, NewUser, ProviderId, Title, UserId,
};
use http_body_util::Full;
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};
use serde::Serialize;

use crate::dto::{
    AttachmentOut, ConfigOut, ConversationOut, CreateAttachmentRequest, CreateConfigRequest,
    CreateConversationRequest, CreateMessageRequest, CreateProviderRequest, Health, LoginRequest,
    MessageOut, ProviderOut, RegisterRequest, RenameConversationRequest, TokenOut,
    UpdateConfigRequest, UserOut,
};
use crate::dto::{Fields, FromFields};
use crate::error::ApiError;
use crate::params::{Query, cursor_id, cursor_seq, path_id};
use crate::response;
use crate::routes::Endpoint;

type Reply = Result<Response<Full<Bytes>>, ApiError>;

/// What a handler gets: the request taken apart, after routing, authentication and the
/// body checks.
pub(crate) struct Ctx<'a> {
    pub(crate) service: &'a ChatService,
    pub(crate) caller: Option<Caller>,
    pub(crate) token: Option<&'a str>,
    pub(crate) path: &'a str,
    pub(crate) params: &'a matchit::Params<'a, 'a>,
    pub(crate) query: Option<&'a str>,
    pub(crate) body: Bytes,
    pub(crate) openapi: &'a Bytes,
}

impl Ctx<'_> {
    fn caller(&self) -> Result<&Caller, ApiError> {
        // Routing marks which endpoints authenticate; reaching here without a caller would
        // be a bug in the table, answered as a refusal rather than a panic.
        self.caller
            .as_ref()
            .ok_or(ApiError::Core(chat_core::Error::Unauthorized))
    }

    fn param<T: std::str::FromStr>(&self, name: &'static str) -> Result<T, ApiError> {
        Ok(path_id(self.params.get(name).unwrap_or(""), name)?)
    }

    fn body<T: FromFields>(&self) -> Result<T, ApiError> {
        Fields::read(&self.body)
    }

    fn max_content_bytes(&self) -> usize {
        self.service.config().max_content_bytes
    }
}

/// Runs an endpoint.
pub(crate) async fn call(endpoint: Endpoint, ctx: Ctx<'_>) -> Reply {
    use Endpoint as E;
    match endpoint {
        E::Register => register(ctx).await,
        E::Login => login(ctx).await,
        E::Logout => logout(ctx).await,
        E::Me => me(ctx).await,
        E::CreateConversation => create_conversation(ctx).await,
        E::ListConversations => list_conversations(ctx).await,
        E::GetConversation => get_conversation(ctx).await,
        E::RenameConversation => rename_conversation(ctx).await,
        E::DeleteConversation => delete_conversation(ctx).await,
        E::CreateMessage => create_message(ctx).await,
        E::ListMessages => list_messages(ctx).await,
        E::GetMessage => get_message(ctx).await,
        E::DeleteMessage => delete_message(ctx).await,
        E::CreateAttachment => create_attachment(ctx).await,
        E::ListAttachments => list_attachments(ctx).await,
        E::GetAttachment => get_attachment(ctx).await,
        E::DeleteAttachment => delete_attachment(ctx).await,
        E::CreateProvider => create_provider(ctx).await,
        E::ListProviders => list_providers(ctx).await,
        E::GetProvider => get_provider(ctx).await,
        E::DeleteProvider => delete_provider(ctx).await,
        E::CreateConfig => create_config(ctx).await,
        E::GetConfig => get_config(ctx).await,
        E::UpdateConfig => update_config(ctx).await,
        E::DeleteConfig => delete_config(ctx).await,
        E::Healthz => Ok(response::json(StatusCode::OK, &Health { status: "ok" })),
        E::Readyz => readyz(ctx).await,
        E::OpenApi => Ok(openapi(&ctx)),
    }
}

fn ok<T: Serialize>(value: &T) -> Reply {
    Ok(response::json(StatusCode::OK, value))
}

fn created<T: Serialize>(value: &T, location: Option<String>) -> Reply {
    let mut response = response::json(StatusCode::CREATED, value);
    if let Some(location) = location
        && let Ok(value) = HeaderValue::from_str(&location)
    {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

fn no_content() -> Reply {
    Ok(response::empty(StatusCode::NO_CONTENT))
}

/// A page as a JSON array, with a `Link` to the next page when this one is full.
fn page<T, O: Serialize + From<T>>(
    items: Vec<T>,
    limit: usize,
    next: impl FnOnce(&T) -> String,
    path: &str,
) -> Reply {
    let link = (items.len() >= limit)
        .then(|| items.last().map(next))
        .flatten()
        .map(|query| format!("<{path}?{query}>; rel=\"next\""));
    let out: Vec<O> = items.into_iter().map(Into::into).collect();
    let mut response = response::json(StatusCode::OK, &out);
    if let Some(link) = link
        && let Ok(value) = HeaderValue::from_str(&link)
    {
        response.headers_mut().insert(header::LINK, value);
    }
    Ok(response)
}

async fn register(ctx: Ctx<'_>) -> Reply {
    let req: RegisterRequest = ctx.body()?;
    let new = NewUser::parse(&req.username, &req.password, req.email.as_deref())?;
    let user = ctx.service.register(new).await?;
    created(&UserOut::from(user), None)
}

async fn login(ctx: Ctx<'_>) -> Reply {
    let req: LoginRequest = ctx.body()?;
    let issued = ctx.service.login(&req.username, &req.password).await?;
    ok(&TokenOut {
        token: issued.token.expose_secret().to_owned(),
        token_type: "Bearer",
        expires_at: issued.expires_at,
        user_id: issued.user_id.into(),
    })
}

async fn logout(ctx: Ctx<'_>) -> Reply {
    ctx.caller()?;
    ctx.service.logout(ctx.token.unwrap_or("")).await?;
    no_content()
}

async fn me(ctx: Ctx<'_>) -> Reply {
    let user = ctx.service.me(ctx.caller()?).await?;
    ok(&UserOut::from(user))
}

async fn create_conversation(ctx: Ctx<'_>) -> Reply {
    let req: CreateConversationRequest = ctx.body()?;
    let new = NewConversation::parse(req.user_id.map(UserId::from_uuid), &req.title)?;
    let conversation = ctx.service.create_conversation(ctx.caller()?, new).await?;
    let location = format!("/chat/conversations/{}", conversation.id);
    created(&ConversationOut::from(conversation), Some(location))
}

async fn list_conversations(ctx: Ctx<'_>) -> Reply {
    let query = Query::parse(ctx.query)?;
    let limit = query.limit()?;
    Query::forbid(
        &query.after,
        "after",
        "is not a parameter of this list; use before",
    )?;
    Query::forbid(&query.order, "order", "is not a parameter of this list")?;
    let before = cursor_id::<ConversationId>(query.before.as_deref(), "before")?;
    let items = ctx
        .service
        .list_conversations(ctx.caller()?, before, limit)
        .await?;
    let n = limit.get();
    page::<_, ConversationOut>(items, n, |c| format!("limit={n}&before={}", c.id), ctx.path)
}

async fn get_conversation(ctx: Ctx<'_>) -> Reply {
    let id = ctx.param::<ConversationId>("id")?;
    let conversation = ctx.service.get_conversation(ctx.caller()?, id).await?;
    ok(&ConversationOut::from(conversation))
}

async fn rename_conversation(ctx: Ctx<'_>) -> Reply {
    let req: RenameConversationRequest = ctx.body()?;
    let title = Title::parse(&req.title)?;
    let id = ctx.param::<ConversationId>("id")?;
    let conversation = ctx
        .service
        .rename_conversation(ctx.caller()?, id, title)
        .await?;
    ok(&ConversationOut::from(conversation))
}

async fn delete_conversation(ctx: Ctx<'_>) -> Reply {
    let id = ctx.param::<ConversationId>("id")?;
    ctx.service.delete_conversation(ctx.caller()?, id).await?;
    no_content()
}

async fn create_message(ctx: Ctx<'_>) -> Reply {
    let req: CreateMessageRequest = ctx.body()?;
    let new = NewMessage::parse(
        ConversationId::from_uuid(req.conversation_id),
        &req.role,
        &req.content,
        req.metadata,
        ctx.max_content_bytes(),
    )?;
    let message = ctx.service.append_message(ctx.caller()?, new).await?;
    let location = format!("/chat/messages/{}", message.id);
    created(&MessageOut::from(message), Some(location))
}

async fn list_messages(ctx: Ctx<'_>) -> Reply {
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
    let items = ctx
        .service
        .list_messages(ctx.caller()?, id, order, limit)
        .await?;
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
        ctx.path,
    )
}

async fn get_message(ctx: Ctx<'_>) -> Reply {
    let id = ctx.param::<MessageId>("id")?;
    let message = ctx.service.get_message(ctx.caller()?, id).await?;
    ok(&MessageOut::from(message))
}

async fn delete_message(ctx: Ctx<'_>) -> Reply {
    let id = ctx.param::<MessageId>("id")?;
    ctx.service.delete_message(ctx.caller()?, id).await?;
    no_content()
}

async fn create_attachment(ctx: Ctx<'_>) -> Reply {
    let req: CreateAttachmentRequest = ctx.body()?;
    let new = NewAttachment::parse(
        MessageId::from_uuid(req.message_id),
        &req.file_type,
        &req.file_path,
    )?;
    let attachment = ctx.service.create_attachment(ctx.caller()?, new).await?;
    let location = format!("/chat/attachments/{}", attachment.id);
    created(&AttachmentOut::from(attachment), Some(location))
}

async fn list_attachments(ctx: Ctx<'_>) -> Reply {
    let id = ctx.param::<MessageId>("id")?;
    let query = Query::parse(ctx.query)?;
    let limit = query.limit()?;
    Query::forbid(
        &query.before,
        "before",
        "is not a parameter of this list; use after",
    )?;
    Query::forbid(&query.order, "order", "is not a parameter of this list")?;
    let after = cursor_id::<AttachmentId>(query.after.as_deref(), "after")?;
    let items = ctx
        .service
        .list_attachments(ctx.caller()?, id, after, limit)
        .await?;
    let n = limit.get();
    page::<_, AttachmentOut>(items, n, |a| format!("limit={n}&after={}", a.id), ctx.path)
}

async fn get_attachment(ctx: Ctx<'_>) -> Reply {
    let id = ctx.param::<AttachmentId>("id")?;
    let attachment = ctx.service.get_attachment(ctx.caller()?, id).await?;
    ok(&AttachmentOut::from(attachment))
}

async fn delete_attachment(ctx: Ctx<'_>) -> Reply {
    let id = ctx.param::<AttachmentId>("id")?;
    ctx.service.delete_attachment(ctx.caller()?, id).await?;
    no_content()
}

async fn create_provider(ctx: Ctx<'_>) -> Reply {
    let req: CreateProviderRequest = ctx.body()?;
    let new = NewProvider::parse(&req.name, &req.api_endpoint)?;
    let provider = ctx.service.create_provider(ctx.caller()?, new).await?;
    let location = format!("/chat/llm-providers/{}", provider.id);
    created(&ProviderOut::from(provider), Some(location))
}

async fn list_providers(ctx: Ctx<'_>) -> Reply {
    let query = Query::parse(ctx.query)?;
    let limit = query.limit()?;
    Query::forbid(
        &query.before,
        "before",
        "is not a parameter of this list; use after",
    )?;
    Query::forbid(&query.order, "order", "is not a parameter of this list")?;
    let after = cursor_id::<ProviderId>(query.after.as_deref(), "after")?;
    let items = ctx
        .service
        .list_providers(ctx.caller()?, after, limit)
        .await?;
    let n = limit.get();
    page::<_, ProviderOut>(items, n, |p| format!("limit={n}&after={}", p.id), ctx.path)
}

async fn get_provider(ctx: Ctx<'_>) -> Reply {
    let id = ctx.param::<ProviderId>("id")?;
    let provider = ctx.service.get_provider(ctx.caller()?, id).await?;
    ok(&ProviderOut::from(provider))
}

async fn delete_provider(ctx: Ctx<'_>) -> Reply {
    let id = ctx.param::<ProviderId>("id")?;
    ctx.service.delete_provider(ctx.caller()?, id).await?;
    no_content()
}

async fn create_config(ctx: Ctx<'_>) -> Reply {
    let req: CreateConfigRequest = ctx.body()?;
    let new = NewConfig::parse(
        req.user_id.map(UserId::from_uuid),
        ProviderId::from_uuid(req.provider_id),
        &req.api_key,
    )?;
    let config = ctx.service.create_config(ctx.caller()?, new).await?;
    let location = format!(
        "/chat/user-llm-configs/{}/{}",
        config.user_id, config.provider_id
    );
    created(&ConfigOut::from(config), Some(location))
}

fn config_path(ctx: &Ctx<'_>) -> Result<(UserId, ProviderId), ApiError> {
    Ok((ctx.param("user_id")?, ctx.param("provider_id")?))
}

async fn get_config(ctx: Ctx<'_>) -> Reply {
    let (user, provider) = config_path(&ctx)?;
    let config = ctx
        .service
        .get_config(ctx.caller()?, user, provider)
        .await?;
    ok(&ConfigOut::from(config))
}

async fn update_config(ctx: Ctx<'_>) -> Reply {
    let req: UpdateConfigRequest = ctx.body()?;
    let api_key = chat_core::ApiKey::parse(&req.api_key)?;
    let (user, provider) = config_path(&ctx)?;
    let config = ctx
        .service
        .update_config(ctx.caller()?, user, provider, api_key)
        .await?;
    ok(&ConfigOut::from(config))
}

async fn delete_config(ctx: Ctx<'_>) -> Reply {
    let (user, provider) = config_path(&ctx)?;
    ctx.service
        .delete_config(ctx.caller()?, user, provider)
        .await?;
    no_content()
}

async fn readyz(ctx: Ctx<'_>) -> Reply {
    ctx.service.ping().await.map_err(ApiError::Unavailable)?;
    ok(&Health { status: "ok" })
}

fn openapi(ctx: &Ctx<'_>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(ctx.openapi.clone()));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
