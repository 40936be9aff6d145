//! LLM providers, shared or a user's own, and their deletion with the configs that use
//! them.

use chat_core::{Entity, LlmProvider, ProviderId, Result, UserId, provider_name_key};
use sled::Transactional;

use super::{Trees, conflict, fail, read, settle, sled_err, stale, tx_decode};
use crate::error::StoreError;
use crate::keys::{self, Id, MAX_ID, MIN_ID};
use crate::records::{ConfigRec, ProviderRec, encode};

impl Trees {
    pub(crate) fn create_provider(&self, provider: &LlmProvider) -> Result<()> {
        let id = provider.id.to_bytes();
        let owner = keys::owner(provider.owner_id.map(UserId::to_bytes));
        let name = keys::join(&owner, provider_name_key(&provider.name).as_bytes());
        let by_owner = keys::join(&owner, &id);
        let value = encode(&ProviderRec::new(provider));
        settle(
            (&self.provider_names, &self.providers, &self.provider_owners).transaction(
                |(names, providers, owners)| {
                    if names.get(name.as_slice())?.is_some() {
                        return fail(conflict(Entity::Provider, "name"));
                    }
                    if providers.get(id)?.is_some() {
                        return fail(conflict(Entity::Provider, "id"));
                    }
                    names.insert(name.as_slice(), &id)?;
                    providers.insert(&id, value.as_slice())?;
                    owners.insert(by_owner.as_slice(), &[])?;
                    Ok(())
                },
            ),
        )
    }

    fn provider_rec(&self, id: Id) -> Result<Option<ProviderRec>> {
        read(self.providers.get(id).map_err(sled_err)?)
    }

    pub(crate) fn get_provider(&self, id: ProviderId) -> Result<Option<LlmProvider>> {
        Ok(self
            .provider_rec(id.to_bytes())?
            .map(ProviderRec::into_model)
            .transpose()?)
    }

    /// Up to `limit` provider ids of one owner, ascending, above `after`.
    fn provider_ids(&self, owner: Option<Id>, after: Option<Id>, limit: usize) -> Result<Vec<Id>> {
        let prefix = keys::owner(owner);
        let first = match after {
            Some(after) => match keys::next_id(after) {
                Some(next) => next,
                None => return Ok(Vec::new()),
            },
            None => MIN_ID,
        };
        self.provider_owners
            .range(keys::join(&prefix, &first)..=keys::join(&prefix, &MAX_ID))
            .keys()
            .take(limit)
            .map(|key| {
                let key = key.map_err(sled_err)?;
                key.get(prefix.len()..)
                    .and_then(|id| Id::try_from(id).ok())
                    .ok_or_else(|| StoreError::Corrupt("provider owner key").into())
            })
            .collect()
    }

    pub(crate) fn list_providers(
        &self,
        user: UserId,
        after: Option<ProviderId>,
        limit: usize,
    ) -> Result<Vec<LlmProvider>> {
        let after = after.map(ProviderId::to_bytes);
        // Shared providers and the user's own are two ranges of one index: take a page of
        // each and merge, so the cost is two pages whatever is stored.
        let mut ids = self.provider_ids(None, after, limit)?;
        ids.extend(self.provider_ids(Some(user.to_bytes()), after, limit)?);
        ids.sort_unstable();
        let mut page = Vec::with_capacity(ids.len().min(limit));
        for id in ids {
            if page.len() == limit {
                break;
            }
            if let Some(rec) = self.provider_rec(id)? {
                page.push(rec.into_model()?);
            }
        }
        Ok(page)
    }

    pub(crate) fn delete_provider(&self, id: ProviderId) -> Result<bool> {
        let id = id.to_bytes();
        let trees = (
            &self.providers,
            &self.provider_names,
            &self.provider_owners,
            &self.configs,
            &self.provider_configs,
            &self.config_ids,
        );
        self.retrying(|| {
            let Some(seen) = self.provider_rec(id)? else {
                return Ok(Ok(false));
            };
            let users: Vec<Id> = self
                .provider_configs
                .scan_prefix(id)
                .keys()
                .map(|key| {
                    let key = key.map_err(sled_err)?;
                    keys::second(&key).ok_or_else(|| StoreError::Corrupt("config index").into())
                })
                .collect::<Result<_>>()?;
            Ok(trees.transaction(
                |(providers, names, owners, configs, provider_configs, config_ids)| {
                    let Some(bytes) = providers.get(id)? else {
                        return Ok(false);
                    };
                    let rec: ProviderRec = tx_decode(&bytes)?;
                    // A new config moves the revision.
                    if rec.revision != seen.revision {
                        return stale();
                    }
                    let owner = keys::owner(rec.owner_id);
                    providers.remove(&id)?;
                    names.remove(keys::join(&owner, provider_name_key(&rec.name).as_bytes()))?;
                    owners.remove(keys::join(&owner, &id))?;
                    for user in &users {
                        let key = keys::pair(*user, id);
                        if let Some(bytes) = configs.remove(&key)? {
                            let config: ConfigRec = tx_decode(&bytes)?;
                            config_ids.remove(&config.id)?;
                        }
                        provider_configs.remove(&keys::pair(id, *user))?;
                    }
                    Ok(true)
                },
            ))
        })
    }
}
