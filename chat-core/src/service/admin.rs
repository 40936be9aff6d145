//! What only the operator does, from the command line: adding, listing and disabling
//! users, removing shared providers, and deleting conversations nobody has touched for a
//! while. None of it is reachable through the HTTP API.

use chrono::Duration;

use super::ChatService;
use crate::error::{Entity, Error, Result};
use crate::ids::{ConversationId, ProviderId, UserId};
use crate::model::{LlmProvider, User};
use crate::records::{Record, ScanCursor, UserAccount};
use crate::time;
use crate::validation::{Limit, provider_name_key};

/// How many records a page of the operator's scans reads.
const PAGE: u64 = 500;

fn page() -> Limit {
    Limit::new(PAGE).unwrap_or_default()
}

/// What [`ChatService::prune`] did or, on a dry run, would do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pruned {
    /// Conversations not updated since the cutoff: deleted, or found on a dry run.
    pub conversations: u64,
    /// The messages they held.
    pub messages: u64,
}

impl ChatService {
    /// A page of every user with whether they are disabled, by id, after `after`.
    pub async fn list_users(
        &self,
        after: Option<UserId>,
        limit: Limit,
    ) -> Result<Vec<UserAccount>> {
        let records = self
            .inner
            .store
            .scan(ScanCursor::Users(after), limit)
            .await?;
        Ok(records
            .into_iter()
            .filter_map(|record| match record {
                Record::User(account) => Some(account),
                _ => None,
            })
            .collect())
    }

    /// Disables (or enables again) the user named `username`, matched ignoring case.
    /// Disabling revokes every session of theirs at once and refuses their logins.
    /// [`Error::NotFound`] for an unknown name.
    pub async fn set_user_disabled(&self, username: &str, disabled: bool) -> Result<User> {
        let store = &self.inner.store;
        let user = store
            .get_user_by_username(username)
            .await?
            .ok_or(Error::NotFound(Entity::User))?;
        if store.set_user_disabled(user.id, disabled).await? {
            Ok(user)
        } else {
            Err(Error::NotFound(Entity::User))
        }
    }

    /// A page of every provider, shared and private, by id, after `after`.
    pub async fn list_all_providers(
        &self,
        after: Option<ProviderId>,
        limit: Limit,
    ) -> Result<Vec<LlmProvider>> {
        let records = self
            .inner
            .store
            .scan(ScanCursor::Providers(after), limit)
            .await?;
        Ok(records
            .into_iter()
            .filter_map(|record| match record {
                Record::Provider(provider) => Some(provider),
                _ => None,
            })
            .collect())
    }

    /// Deletes the shared provider named `name` (ignoring case) or with that id, and every
    /// user's config for it. [`Error::NotFound`] when no shared provider matches.
    pub async fn delete_shared_provider(&self, name: &str) -> Result<LlmProvider> {
        let wanted = provider_name_key(name.trim());
        let by_id: Option<ProviderId> = name.trim().parse().ok();
        let mut after = None;
        loop {
            let providers = self.list_all_providers(after, page()).await?;
            let Some(last) = providers.last() else {
                return Err(Error::NotFound(Entity::Provider));
            };
            after = Some(last.id);
            let found = providers.into_iter().find(|p| {
                p.owner_id.is_none()
                    && (Some(p.id) == by_id || provider_name_key(&p.name) == wanted)
            });
            if let Some(provider) = found {
                self.inner.store.delete_provider(provider.id).await?;
                return Ok(provider);
            }
        }
    }

    /// Deletes every conversation (of every user) not updated for `older_than`, with its
    /// messages and attachments, through the store's one delete; with `dry_run`, only
    /// counts them. Answers what was (or would be) deleted.
    pub async fn prune(&self, older_than: Duration, dry_run: bool) -> Result<Pruned> {
        let cutoff = time::now() - older_than;
        let store = &self.inner.store;
        let mut pruned = Pruned::default();
        let mut after: Option<ConversationId> = None;
        loop {
            let idle = store.list_idle_conversations(cutoff, after, page()).await?;
            let Some(last) = idle.last() else {
                return Ok(pruned);
            };
            after = Some(last.id);
            for conversation in idle {
                if dry_run || store.delete_conversation(conversation.id).await? {
                    pruned.conversations += 1;
                    pruned.messages += conversation.message_count;
                }
            }
        }
    }
}
