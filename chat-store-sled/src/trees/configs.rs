//! Users' LLM configs: one per user and provider, each moving its provider's revision so
//! that a racing delete of the provider sees it.

use chat_core::{Entity, Error, ProviderId, Result, SealedKey, UserId, UserLlmConfig};
use chrono::{DateTime, Utc};
use sled::Transactional;

use super::{Trees, conflict, fail, read, settle, sled_err, tx_decode};
use crate::keys;
use crate::records::{ConfigRec, ProviderRec, encode};

impl Trees {
    pub(crate) fn create_config(&self, config: &UserLlmConfig) -> Result<()> {
        let id = config.id.to_bytes();
        let user = config.user_id.to_bytes();
        let provider = config.provider_id.to_bytes();
        let key = keys::pair(user, provider);
        let value = encode(&ConfigRec::new(config));
        let trees = (
            &self.providers,
            &self.configs,
            &self.config_ids,
            &self.provider_configs,
        );
        settle(
            trees.transaction(|(providers, configs, config_ids, provider_configs)| {
                let Some(bytes) = providers.get(provider)? else {
                    return fail(Error::NotFound(Entity::Provider));
                };
                if configs.get(key)?.is_some() {
                    return fail(conflict(Entity::Config, "provider_id"));
                }
                if config_ids.get(id)?.is_some() {
                    return fail(conflict(Entity::Config, "id"));
                }
                let mut rec: ProviderRec = tx_decode(&bytes)?;
                rec.revision += 1;
                providers.insert(&provider, encode(&rec))?;
                configs.insert(&key, value.as_slice())?;
                config_ids.insert(&id, &key)?;
                provider_configs.insert(&keys::pair(provider, user), &[])?;
                Ok(())
            }),
        )
    }

    pub(crate) fn get_config(
        &self,
        user: UserId,
        provider: ProviderId,
    ) -> Result<Option<UserLlmConfig>> {
        let key = keys::pair(user.to_bytes(), provider.to_bytes());
        let rec: Option<ConfigRec> = read(self.configs.get(key).map_err(sled_err)?)?;
        Ok(rec.map(ConfigRec::into_model).transpose()?)
    }

    pub(crate) fn update_config(
        &self,
        user: UserId,
        provider: ProviderId,
        sealed_key: &SealedKey,
        api_key_hint: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<Option<UserLlmConfig>> {
        let key = keys::pair(user.to_bytes(), provider.to_bytes());
        settle(self.configs.transaction(|configs| {
            let Some(bytes) = configs.get(key)? else {
                return Ok(None);
            };
            let mut rec: ConfigRec = tx_decode(&bytes)?;
            rec.sealed_key = sealed_key.0.clone();
            rec.api_key_hint = api_key_hint.map(str::to_owned);
            rec.updated_at = at.into();
            configs.insert(&key, encode(&rec))?;
            match rec.into_model() {
                Ok(config) => Ok(Some(config)),
                Err(e) => fail(e),
            }
        }))
    }

    pub(crate) fn delete_config(&self, user: UserId, provider: ProviderId) -> Result<bool> {
        let user = user.to_bytes();
        let provider = provider.to_bytes();
        let key = keys::pair(user, provider);
        settle(
            (&self.configs, &self.config_ids, &self.provider_configs).transaction(
                |(configs, config_ids, provider_configs)| {
                    let Some(bytes) = configs.remove(&key)? else {
                        return Ok(false);
                    };
                    let rec: ConfigRec = tx_decode(&bytes)?;
                    config_ids.remove(&rec.id)?;
                    provider_configs.remove(&keys::pair(provider, user))?;
                    Ok(true)
                },
            ),
        )
    }
}
