//! LLM providers and users' API keys for them.

use super::{Caller, ChatService};
use crate::error::{Entity, Error, Forbidden, Result};
use crate::ids::{ConfigId, ProviderId, UserId};
use crate::input::{NewConfig, NewProvider};
use crate::model::{LlmProvider, UserLlmConfig};
use crate::time;
use crate::validation::{ApiKey, Limit};

impl ChatService {
    /// Creates a provider private to the caller. [`Error::Conflict`] if the caller has one of
    /// that name, ignoring case.
    pub async fn create_provider(&self, caller: &Caller, new: NewProvider) -> Result<LlmProvider> {
        self.insert_provider(Some(caller.user_id()), new).await
    }

    /// Creates a provider shared with every user. For the operator only: no API reaches it,
    /// so no user can plant a provider that others would trust with a key.
    pub async fn create_shared_provider(&self, new: NewProvider) -> Result<LlmProvider> {
        self.insert_provider(None, new).await
    }

    async fn insert_provider(
        &self,
        owner_id: Option<UserId>,
        new: NewProvider,
    ) -> Result<LlmProvider> {
        let provider = LlmProvider {
            id: ProviderId::new(),
            owner_id,
            name: new.name.into_string(),
            api_endpoint: new.api_endpoint.into_string(),
            created_at: time::now(),
        };
        self.inner.store.create_provider(&provider).await?;
        Ok(provider)
    }

    /// A provider the caller can see: a shared one or their own.
    pub async fn get_provider(&self, caller: &Caller, id: ProviderId) -> Result<LlmProvider> {
        self.inner
            .store
            .get_provider(id)
            .await?
            .filter(|p| p.is_visible_to(caller.user_id()))
            .ok_or(Error::NotFound(Entity::Provider))
    }

    /// A page of the providers the caller can see, by id.
    pub async fn list_providers(
        &self,
        caller: &Caller,
        after: Option<ProviderId>,
        limit: Limit,
    ) -> Result<Vec<LlmProvider>> {
        self.inner
            .store
            .list_providers(caller.user_id(), after, limit)
            .await
    }

    /// Deletes one of the caller's providers with every config that uses it.
    /// [`Forbidden::SharedProvider`] for a shared one.
    pub async fn delete_provider(&self, caller: &Caller, id: ProviderId) -> Result<()> {
        let provider = self.get_provider(caller, id).await?;
        if provider.owner_id.is_none() {
            return Err(Error::Forbidden(Forbidden::SharedProvider));
        }
        self.inner.store.delete_provider(id).await?;
        Ok(())
    }

    /// Stores the caller's API key for a provider they can see, sealed.
    /// [`Error::Conflict`] if they already have one for it.
    pub async fn create_config(&self, caller: &Caller, new: NewConfig) -> Result<UserLlmConfig> {
        let user_id = caller.check_user_id(new.user_id)?;
        self.get_provider(caller, new.provider_id).await?;
        let now = time::now();
        let config = UserLlmConfig {
            id: ConfigId::new(),
            user_id,
            provider_id: new.provider_id,
            sealed_key: self
                .inner
                .sealer
                .seal(user_id, new.provider_id, &new.api_key),
            api_key_hint: new.api_key.hint(),
            created_at: now,
            updated_at: now,
        };
        self.inner.store.create_config(&config).await?;
        Ok(config)
    }

    /// The caller's config for a provider. A `user_id` other than the caller's is
    /// [`Error::NotFound`], as the contract's paths require.
    pub async fn get_config(
        &self,
        caller: &Caller,
        user_id: UserId,
        provider: ProviderId,
    ) -> Result<UserLlmConfig> {
        self.own_config_path(caller, user_id)?;
        self.inner
            .store
            .get_config(user_id, provider)
            .await?
            .ok_or(Error::NotFound(Entity::Config))
    }

    /// Replaces the key of an existing config (not an upsert).
    pub async fn update_config(
        &self,
        caller: &Caller,
        user_id: UserId,
        provider: ProviderId,
        api_key: ApiKey,
    ) -> Result<UserLlmConfig> {
        self.own_config_path(caller, user_id)?;
        let sealed = self.inner.sealer.seal(user_id, provider, &api_key);
        self.inner
            .store
            .update_config(user_id, provider, sealed, api_key.hint(), time::now())
            .await?
            .ok_or(Error::NotFound(Entity::Config))
    }

    /// Deletes the caller's config for a provider.
    pub async fn delete_config(
        &self,
        caller: &Caller,
        user_id: UserId,
        provider: ProviderId,
    ) -> Result<()> {
        self.own_config_path(caller, user_id)?;
        if self.inner.store.delete_config(user_id, provider).await? {
            Ok(())
        } else {
            Err(Error::NotFound(Entity::Config))
        }
    }

    /// The caller's API key for a provider in plain text, for the moment the application
    /// calls that provider. This is the only way to the plaintext.
    pub async fn reveal_api_key(&self, caller: &Caller, provider: ProviderId) -> Result<ApiKey> {
        let config = self.get_config(caller, caller.user_id(), provider).await?;
        self.inner
            .sealer
            .open(config.user_id, config.provider_id, &config.sealed_key)
    }

    fn own_config_path(&self, caller: &Caller, user_id: UserId) -> Result<()> {
        if user_id == caller.user_id() {
            Ok(())
        } else {
            Err(Error::NotFound(Entity::Config))
        }
    }
}
