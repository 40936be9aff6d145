//! A user's API key for a provider, never returned once stored.

use chat_core::{Caller, NewConfig, ProviderId, UserId};

use super::reply::{created, no_content, ok};
use super::{Ctx, Reply};
use crate::dto::{ConfigOut, CreateConfigRequest, UpdateConfigRequest};
use crate::error::ApiError;

pub(crate) async fn create_config(caller: &Caller, ctx: Ctx<'_>) -> Reply {
    let req: CreateConfigRequest = ctx.body()?;
    let new = NewConfig::parse(
        req.user_id.map(UserId::from_uuid),
        ProviderId::from_uuid(req.provider_id),
        req.api_key.expose_secret(),
    )?;
    let config = ctx.service.create_config(caller, new).await?;
    let location = format!(
        "/chat/user-llm-configs/{}/{}",
        config.user_id, config.provider_id
    );
    created(&ConfigOut::from(config), Some(location))
}

fn config_path(ctx: &Ctx<'_>) -> Result<(UserId, ProviderId), ApiError> {
    Ok((ctx.param("user_id")?, ctx.param("provider_id")?))
}

pub(crate) async fn get_config(caller: &Caller, ctx: Ctx<'_>) -> Reply {
    let (user, provider) = config_path(&ctx)?;
    let config = ctx.service.get_config(caller, user, provider).await?;
    ok(&ConfigOut::from(config))
}

pub(crate) async fn update_config(caller: &Caller, ctx: Ctx<'_>) -> Reply {
    let req: UpdateConfigRequest = ctx.body()?;
    let api_key = chat_core::ApiKey::parse(req.api_key.expose_secret())?;
    let (user, provider) = config_path(&ctx)?;
    let config = ctx
        .service
        .update_config(caller, user, provider, api_key)
        .await?;
    ok(&ConfigOut::from(config))
}

pub(crate) async fn delete_config(caller: &Caller, ctx: Ctx<'_>) -> Reply {
    let (user, provider) = config_path(&ctx)?;
    ctx.service.delete_config(caller, user, provider).await?;
    no_content()
}
