//! LLM providers: the shared ones and the caller's private ones.

use chat_core::{Caller, NewProvider, ProviderId};

use super::reply::{created, no_content, ok, page};
use super::{Ctx, Reply};
use crate::dto::{CreateProviderRequest, ProviderOut};
use crate::params::{IdCursor, Query};

pub(crate) async fn create_provider(caller: &Caller, ctx: Ctx<'_>) -> Reply {
    let req: CreateProviderRequest = ctx.body()?;
    let new = NewProvider::parse(&req.name, &req.api_endpoint)?;
    let provider = ctx.service.create_provider(caller, new).await?;
    let location = format!("/chat/llm-providers/{}", provider.id);
    created(&ProviderOut::from(provider), Some(location))
}

pub(crate) async fn list_providers(caller: &Caller, ctx: Ctx<'_>) -> Reply {
    let (limit, after) = Query::parse(ctx.query)?.id_page::<ProviderId>(IdCursor::After)?;
    let items = ctx.service.list_providers(caller, after, limit).await?;
    let n = limit.get();
    page::<_, ProviderOut>(
        items,
        n,
        |p| format!("limit={n}&after={}", p.id),
        "/chat/llm-providers",
    )
}

pub(crate) async fn get_provider(caller: &Caller, ctx: Ctx<'_>) -> Reply {
    let id = ctx.param::<ProviderId>("id")?;
    let provider = ctx.service.get_provider(caller, id).await?;
    ok(&ProviderOut::from(provider))
}

pub(crate) async fn delete_provider(caller: &Caller, ctx: Ctx<'_>) -> Reply {
    let id = ctx.param::<ProviderId>("id")?;
    ctx.service.delete_provider(caller, id).await?;
    no_content()
}
