//! Accounts: registering, logging in and out, and who the caller is.

use chat_core::{Caller, NewUser};

use super::reply::{created, no_content, ok};
use super::{Ctx, Reply};
use crate::dto::{LoginRequest, RegisterRequest, TokenOut, UserOut};

pub(crate) async fn register(ctx: Ctx<'_>) -> Reply {
    let req: RegisterRequest = ctx.body()?;
    let new = NewUser::parse(
        &req.username,
        req.password.expose_secret(),
        req.email.as_deref(),
    )?;
    // Counted after the body checks but whatever the store then says, so an address cannot
    // probe which names are taken faster than it could register.
    ctx.throttle.register(ctx.client)?;
    let user = ctx.service.register(new).await?;
    created(&UserOut::from(user), None)
}

pub(crate) async fn login(ctx: Ctx<'_>) -> Reply {
    let req: LoginRequest = ctx.body()?;
    // After the body checks, before the password is looked at: a locked username is refused
    // even with the right password, and such a refusal is not a failure.
    ctx.throttle.login_allowed(ctx.client, &req.username)?;
    let issued = match ctx
        .service
        .login(&req.username, req.password.expose_secret())
        .await
    {
        Ok(issued) => issued,
        Err(e) => {
            if matches!(e, chat_core::Error::Unauthorized) {
                ctx.throttle.login_failed(ctx.client, &req.username);
            }
            return Err(e.into());
        }
    };
    ctx.throttle.login_succeeded(&req.username);
    ok(&TokenOut {
        token: issued.token.expose_secret().to_owned(),
        token_type: "Bearer",
        expires_at: issued.expires_at,
        user_id: issued.user_id.into(),
    })
}

pub(crate) async fn logout(_caller: &Caller, ctx: Ctx<'_>) -> Reply {
    // The route authenticated with this very token; the service checks it again as it
    // ends the session, so an absent one could only be refused.
    ctx.service.logout(ctx.token.unwrap_or("")).await?;
    no_content()
}

pub(crate) async fn me(caller: &Caller, ctx: Ctx<'_>) -> Reply {
    let user = ctx.service.me(caller).await?;
    ok(&UserOut::from(user))
}
