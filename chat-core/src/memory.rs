//! [`MemoryStore`]: the reference implementation of [`Store`].

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::{Entity, Error, Forbidden, Result};
use crate::ids::{AttachmentId, ConversationId, MessageId, ProviderId, UserId};
use crate::model::{
    Attachment, Conversation, LlmProvider, Message, MessageDraft, Session, TokenHash, User,
    UserLlmConfig,
};
use crate::records::{Record, ScanCursor, UserAccount, import_plain};
use crate::secrets::SealedKey;
use crate::store::{MessageOrder, Store};
use crate::validation::{Limit, provider_name_key, username_key};

/// A [`Store`] that keeps everything in memory, behind one lock.
///
/// It is the reference the property tests compare every other store against, so it is
/// written to be obviously right rather than fast: every operation takes the one lock, so
/// every operation is atomic and `seq` needs no further care. Nothing survives the process,
/// so "durable" means only "visible to every later call".
///
/// ```
/// # tokio_test_block_on(async {
/// use chat_core::{MemoryStore, Store};
/// let store = MemoryStore::new();
/// assert_eq!(store.backend(), "memory");
/// store.ping().await.unwrap();
/// # });
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    // Ordered maps where `scan` pages by the key.
    users: BTreeMap<UserId, User>,
    disabled: HashSet<UserId>,
    user_by_name: HashMap<String, UserId>,
    sessions: BTreeMap<TokenHash, Session>,
    conversations: BTreeMap<ConversationId, ConversationRow>,
    conversations_by_user: BTreeSet<(UserId, ConversationId)>,
    messages: BTreeMap<(ConversationId, u64), Message>,
    message_position: HashMap<MessageId, (ConversationId, u64)>,
    attachments: BTreeMap<(MessageId, AttachmentId), Attachment>,
    attachment_message: BTreeMap<AttachmentId, MessageId>,
    providers: BTreeMap<ProviderId, LlmProvider>,
    provider_names: HashSet<(Option<UserId>, String)>,
    providers_by_owner: BTreeSet<(Option<UserId>, ProviderId)>,
    configs: BTreeMap<(UserId, ProviderId), UserLlmConfig>,
    configs_by_provider: BTreeSet<(ProviderId, UserId)>,
}

#[derive(Debug)]
struct ConversationRow {
    conversation: Conversation,
    /// The last `seq` handed out; never goes down, so numbers are not reused.
    last_seq: u64,
}

impl MemoryStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave a half-done change behind: every
        // mutation below checks first and then writes, so the data stays usable.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl State {
    /// [`Store::import`] of the kinds no create call can take as they are; `None` for the
    /// others.
    fn import_own(&mut self, record: &Record) -> Option<Result<bool>> {
        if matches!(
            record,
            Record::Session(_) | Record::Provider(_) | Record::Config(_) | Record::Attachment(_)
        ) {
            return None;
        }
        let s = self;
        let mut import = || match record {
            Record::User(account) => {
                if s.users.contains_key(&account.user.id) {
                    return Ok(false);
                }
                let key = username_key(&account.user.username);
                if s.user_by_name.contains_key(&key) {
                    return Err(Error::Conflict {
                        entity: Entity::User,
                        field: "username",
                    });
                }
                s.user_by_name.insert(key, account.user.id);
                s.users.insert(account.user.id, account.user.clone());
                if account.disabled {
                    s.disabled.insert(account.user.id);
                }
                Ok(true)
            }
            Record::Conversation {
                conversation,
                last_seq,
            } => {
                if s.conversations.contains_key(&conversation.id) {
                    return Ok(false);
                }
                s.conversations_by_user
                    .insert((conversation.user_id, conversation.id));
                s.conversations.insert(
                    conversation.id,
                    ConversationRow {
                        conversation: conversation.clone(),
                        last_seq: *last_seq,
                    },
                );
                Ok(true)
            }
            Record::Message(message) => {
                if s.message_position.contains_key(&message.id) {
                    return Ok(false);
                }
                let row = s
                    .conversations
                    .get_mut(&message.conversation_id)
                    .filter(|row| row.conversation.user_id == message.user_id)
                    .ok_or(Error::NotFound(Entity::Conversation))?;
                row.last_seq = row.last_seq.max(message.seq);
                let key = (message.conversation_id, message.seq);
                if s.messages.contains_key(&key) {
                    return Err(Error::Conflict {
                        entity: Entity::Message,
                        field: "seq",
                    });
                }
                s.message_position.insert(message.id, key);
                s.messages.insert(key, message.clone());
                Ok(true)
            }
            Record::Session(_)
            | Record::Provider(_)
            | Record::Config(_)
            | Record::Attachment(_) => Ok(false),
        };
        Some(import())
    }

    fn remove_attachments_of(&mut self, message: MessageId) {
        let range = (message, AttachmentId::from_bytes([0; 16]))
            ..=(message, AttachmentId::from_bytes([0xff; 16]));
        let keys: Vec<_> = self.attachments.range(range).map(|(k, _)| *k).collect();
        for key in keys {
            self.attachments.remove(&key);
            self.attachment_message.remove(&key.1);
        }
    }
}

#[async_trait]
impl Store for MemoryStore {
    fn backend(&self) -> &'static str {
        "memory"
    }

    async fn ping(&self) -> Result<()> {
        Ok(())
    }

    async fn create_user(&self, user: &User) -> Result<()> {
        let mut s = self.state();
        let key = username_key(&user.username);
        if s.user_by_name.contains_key(&key) {
            return Err(Error::Conflict {
                entity: Entity::User,
                field: "username",
            });
        }
        if s.users.contains_key(&user.id) {
            return Err(Error::Conflict {
                entity: Entity::User,
                field: "id",
            });
        }
        s.user_by_name.insert(key, user.id);
        s.users.insert(user.id, user.clone());
        Ok(())
    }

    async fn get_user(&self, id: UserId) -> Result<Option<User>> {
        Ok(self.state().users.get(&id).cloned())
    }

    async fn get_user_by_username(&self, username: &str) -> Result<Option<User>> {
        let s = self.state();
        Ok(s.user_by_name
            .get(&username_key(username))
            .and_then(|id| s.users.get(id))
            .cloned())
    }

    async fn create_session(&self, session: &Session) -> Result<()> {
        let mut s = self.state();
        if s.disabled.contains(&session.user_id) {
            return Err(Error::Forbidden(Forbidden::UserDisabled));
        }
        if s.sessions.contains_key(&session.token_hash) {
            return Err(Error::Conflict {
                entity: Entity::Session,
                field: "token",
            });
        }
        if s.sessions.values().any(|other| other.id == session.id) {
            return Err(Error::Conflict {
                entity: Entity::Session,
                field: "id",
            });
        }
        s.sessions.insert(session.token_hash, session.clone());
        Ok(())
    }

    async fn get_session(&self, token_hash: &TokenHash) -> Result<Option<Session>> {
        Ok(self.state().sessions.get(token_hash).cloned())
    }

    async fn delete_session(&self, token_hash: &TokenHash) -> Result<bool> {
        Ok(self.state().sessions.remove(token_hash).is_some())
    }

    async fn delete_expired_sessions(&self, now: DateTime<Utc>) -> Result<u64> {
        let mut s = self.state();
        let before = s.sessions.len();
        s.sessions.retain(|_, session| session.expires_at > now);
        Ok((before - s.sessions.len()) as u64)
    }

    async fn create_conversation(&self, conversation: &Conversation) -> Result<()> {
        let mut s = self.state();
        if s.conversations.contains_key(&conversation.id) {
            return Err(Error::Conflict {
                entity: Entity::Conversation,
                field: "id",
            });
        }
        s.conversations_by_user
            .insert((conversation.user_id, conversation.id));
        s.conversations.insert(
            conversation.id,
            ConversationRow {
                conversation: conversation.clone(),
                last_seq: 0,
            },
        );
        Ok(())
    }

    async fn get_conversation(&self, id: ConversationId) -> Result<Option<Conversation>> {
        Ok(self
            .state()
            .conversations
            .get(&id)
            .map(|row| row.conversation.clone()))
    }

    async fn list_conversations(
        &self,
        user: UserId,
        before: Option<ConversationId>,
        limit: Limit,
    ) -> Result<Vec<Conversation>> {
        let s = self.state();
        let lower = Bound::Included((user, ConversationId::from_bytes([0; 16])));
        let upper = match before {
            Some(before) => Bound::Excluded((user, before)),
            None => Bound::Included((user, ConversationId::from_bytes([0xff; 16]))),
        };
        Ok(s.conversations_by_user
            .range((lower, upper))
            .rev()
            .take(limit.get())
            .map(|(_, id)| s.conversations[id].conversation.clone())
            .collect())
    }

    async fn rename_conversation(
        &self,
        id: ConversationId,
        title: &str,
        at: DateTime<Utc>,
    ) -> Result<Option<Conversation>> {
        let mut s = self.state();
        Ok(s.conversations.get_mut(&id).map(|row| {
            row.conversation.title = title.to_owned();
            row.conversation.updated_at = at;
            row.conversation.clone()
        }))
    }

    async fn delete_conversation(&self, id: ConversationId) -> Result<bool> {
        let mut s = self.state();
        let Some(row) = s.conversations.remove(&id) else {
            return Ok(false);
        };
        s.conversations_by_user
            .remove(&(row.conversation.user_id, id));
        let keys: Vec<_> = s
            .messages
            .range((id, 0)..=(id, u64::MAX))
            .map(|(k, m)| (*k, m.id))
            .collect();
        for (key, message_id) in keys {
            s.messages.remove(&key);
            s.message_position.remove(&message_id);
            s.remove_attachments_of(message_id);
        }
        Ok(true)
    }

    async fn append_message(&self, draft: MessageDraft) -> Result<Message> {
        let mut s = self.state();
        if s.message_position.contains_key(&draft.id) {
            return Err(Error::Conflict {
                entity: Entity::Message,
                field: "id",
            });
        }
        let row = s
            .conversations
            .get_mut(&draft.conversation_id)
            .filter(|row| row.conversation.user_id == draft.user_id)
            .ok_or(Error::NotFound(Entity::Conversation))?;
        row.last_seq += 1;
        row.conversation.message_count += 1;
        row.conversation.updated_at = draft.created_at;
        let message = draft.with_seq(row.last_seq);
        s.message_position
            .insert(message.id, (message.conversation_id, message.seq));
        s.messages
            .insert((message.conversation_id, message.seq), message.clone());
        Ok(message)
    }

    async fn get_message(&self, id: MessageId) -> Result<Option<Message>> {
        let s = self.state();
        Ok(s.message_position
            .get(&id)
            .map(|key| s.messages[key].clone()))
    }

    async fn list_messages(
        &self,
        conversation: ConversationId,
        order: MessageOrder,
        limit: Limit,
    ) -> Result<Vec<Message>> {
        let s = self.state();
        let page = match order {
            MessageOrder::Ascending { after } => {
                let lower = match after {
                    Some(seq) => Bound::Excluded((conversation, seq)),
                    None => Bound::Included((conversation, 0)),
                };
                let upper = Bound::Included((conversation, u64::MAX));
                s.messages
                    .range((lower, upper))
                    .take(limit.get())
                    .map(|(_, m)| m.clone())
                    .collect()
            }
            MessageOrder::Descending { before } => {
                let lower = Bound::Included((conversation, 0));
                let upper = match before {
                    Some(seq) => Bound::Excluded((conversation, seq)),
                    None => Bound::Included((conversation, u64::MAX)),
                };
                s.messages
                    .range((lower, upper))
                    .rev()
                    .take(limit.get())
                    .map(|(_, m)| m.clone())
                    .collect()
            }
        };
        Ok(page)
    }

    async fn delete_message(&self, id: MessageId, at: DateTime<Utc>) -> Result<bool> {
        let mut s = self.state();
        let Some(key) = s.message_position.remove(&id) else {
            return Ok(false);
        };
        s.messages.remove(&key);
        s.remove_attachments_of(id);
        if let Some(row) = s.conversations.get_mut(&key.0) {
            row.conversation.message_count -= 1;
            row.conversation.updated_at = at;
        }
        Ok(true)
    }

    async fn create_attachment(&self, attachment: &Attachment) -> Result<()> {
        let mut s = self.state();
        if s.attachment_message.contains_key(&attachment.id) {
            return Err(Error::Conflict {
                entity: Entity::Attachment,
                field: "id",
            });
        }
        let parent_matches = s
            .message_position
            .get(&attachment.message_id)
            .map(|key| &s.messages[key])
            .is_some_and(|m| {
                m.conversation_id == attachment.conversation_id && m.user_id == attachment.user_id
            });
        if !parent_matches {
            return Err(Error::NotFound(Entity::Message));
        }
        s.attachment_message
            .insert(attachment.id, attachment.message_id);
        s.attachments
            .insert((attachment.message_id, attachment.id), attachment.clone());
        Ok(())
    }

    async fn get_attachment(&self, id: AttachmentId) -> Result<Option<Attachment>> {
        let s = self.state();
        Ok(s.attachment_message
            .get(&id)
            .map(|message| s.attachments[&(*message, id)].clone()))
    }

    async fn list_attachments(
        &self,
        message: MessageId,
        after: Option<AttachmentId>,
        limit: Limit,
    ) -> Result<Vec<Attachment>> {
        let s = self.state();
        let lower = match after {
            Some(after) => Bound::Excluded((message, after)),
            None => Bound::Included((message, AttachmentId::from_bytes([0; 16]))),
        };
        let upper = Bound::Included((message, AttachmentId::from_bytes([0xff; 16])));
        Ok(s.attachments
            .range((lower, upper))
            .take(limit.get())
            .map(|(_, a)| a.clone())
            .collect())
    }

    async fn delete_attachment(&self, id: AttachmentId) -> Result<bool> {
        let mut s = self.state();
        let Some(message) = s.attachment_message.remove(&id) else {
            return Ok(false);
        };
        s.attachments.remove(&(message, id));
        Ok(true)
    }

    async fn create_provider(&self, provider: &LlmProvider) -> Result<()> {
        let mut s = self.state();
        let name = (provider.owner_id, provider_name_key(&provider.name));
        if s.provider_names.contains(&name) {
            return Err(Error::Conflict {
                entity: Entity::Provider,
                field: "name",
            });
        }
        if s.providers.contains_key(&provider.id) {
            return Err(Error::Conflict {
                entity: Entity::Provider,
                field: "id",
            });
        }
        s.provider_names.insert(name);
        s.providers_by_owner
            .insert((provider.owner_id, provider.id));
        s.providers.insert(provider.id, provider.clone());
        Ok(())
    }

    async fn get_provider(&self, id: ProviderId) -> Result<Option<LlmProvider>> {
        Ok(self.state().providers.get(&id).cloned())
    }

    async fn list_providers(
        &self,
        user: UserId,
        after: Option<ProviderId>,
        limit: Limit,
    ) -> Result<Vec<LlmProvider>> {
        let s = self.state();
        // Shared providers and the user's own are two ranges of one index; merge them.
        let range = |owner: Option<UserId>| {
            let lower = match after {
                Some(after) => Bound::Excluded((owner, after)),
                None => Bound::Included((owner, ProviderId::from_bytes([0; 16]))),
            };
            let upper = Bound::Included((owner, ProviderId::from_bytes([0xff; 16])));
            s.providers_by_owner
                .range((lower, upper))
                .take(limit.get())
                .map(|(_, id)| *id)
        };
        let mut ids: Vec<ProviderId> = range(None).chain(range(Some(user))).collect();
        ids.sort_unstable();
        Ok(ids
            .into_iter()
            .take(limit.get())
            .map(|id| s.providers[&id].clone())
            .collect())
    }

    async fn delete_provider(&self, id: ProviderId) -> Result<bool> {
        let mut s = self.state();
        let Some(provider) = s.providers.remove(&id) else {
            return Ok(false);
        };
        s.provider_names
            .remove(&(provider.owner_id, provider_name_key(&provider.name)));
        s.providers_by_owner.remove(&(provider.owner_id, id));
        let users: Vec<UserId> = s
            .configs_by_provider
            .range((id, UserId::from_bytes([0; 16]))..=(id, UserId::from_bytes([0xff; 16])))
            .map(|(_, user)| *user)
            .collect();
        for user in users {
            s.configs.remove(&(user, id));
            s.configs_by_provider.remove(&(id, user));
        }
        Ok(true)
    }

    async fn create_config(&self, config: &UserLlmConfig) -> Result<()> {
        let mut s = self.state();
        if !s.providers.contains_key(&config.provider_id) {
            return Err(Error::NotFound(Entity::Provider));
        }
        if s.configs
            .contains_key(&(config.user_id, config.provider_id))
        {
            return Err(Error::Conflict {
                entity: Entity::Config,
                field: "provider_id",
            });
        }
        if s.configs.values().any(|c| c.id == config.id) {
            return Err(Error::Conflict {
                entity: Entity::Config,
                field: "id",
            });
        }
        s.configs_by_provider
            .insert((config.provider_id, config.user_id));
        s.configs
            .insert((config.user_id, config.provider_id), config.clone());
        Ok(())
    }

    async fn get_config(
        &self,
        user: UserId,
        provider: ProviderId,
    ) -> Result<Option<UserLlmConfig>> {
        Ok(self.state().configs.get(&(user, provider)).cloned())
    }

    async fn update_config(
        &self,
        user: UserId,
        provider: ProviderId,
        sealed_key: SealedKey,
        api_key_hint: Option<String>,
        at: DateTime<Utc>,
    ) -> Result<Option<UserLlmConfig>> {
        let mut s = self.state();
        Ok(s.configs.get_mut(&(user, provider)).map(|config| {
            config.sealed_key = sealed_key;
            config.api_key_hint = api_key_hint;
            config.updated_at = at;
            config.clone()
        }))
    }

    async fn delete_config(&self, user: UserId, provider: ProviderId) -> Result<bool> {
        let mut s = self.state();
        s.configs_by_provider.remove(&(provider, user));
        Ok(s.configs.remove(&(user, provider)).is_some())
    }

    async fn scan(&self, from: ScanCursor, limit: Limit) -> Result<Vec<Record>> {
        let s = self.state();
        let n = limit.get();
        Ok(match from {
            ScanCursor::Users(after) => after_key(&s.users, after)
                .take(n)
                .map(|(id, user)| {
                    Record::User(UserAccount {
                        user: user.clone(),
                        disabled: s.disabled.contains(id),
                    })
                })
                .collect(),
            ScanCursor::Sessions(after) => after_key(&s.sessions, after)
                .take(n)
                .map(|(_, session)| Record::Session(session.clone()))
                .collect(),
            ScanCursor::Providers(after) => after_key(&s.providers, after)
                .take(n)
                .map(|(_, p)| Record::Provider(p.clone()))
                .collect(),
            ScanCursor::Configs(after) => after_key(&s.configs, after)
                .take(n)
                .map(|(_, c)| Record::Config(c.clone()))
                .collect(),
            ScanCursor::Conversations(after) => after_key(&s.conversations, after)
                .take(n)
                .map(|(_, row)| Record::Conversation {
                    conversation: row.conversation.clone(),
                    last_seq: row.last_seq,
                })
                .collect(),
            ScanCursor::Messages(after) => after_key(&s.messages, after)
                .take(n)
                .map(|(_, m)| Record::Message(m.clone()))
                .collect(),
            ScanCursor::Attachments(after) => after_key(&s.attachment_message, after)
                .take(n)
                .map(|(id, message)| Record::Attachment(s.attachments[&(*message, *id)].clone()))
                .collect(),
        })
    }

    async fn import(&self, record: &Record) -> Result<bool> {
        // The lock is let go before the plain kinds go through the create calls.
        let own = self.state().import_own(record);
        match own {
            Some(outcome) => outcome,
            None => import_plain(self, record).await,
        }
    }

    async fn set_user_disabled(&self, user: UserId, disabled: bool) -> Result<bool> {
        let mut s = self.state();
        if !s.users.contains_key(&user) {
            return Ok(false);
        }
        if disabled {
            s.disabled.insert(user);
            s.sessions.retain(|_, session| session.user_id != user);
        } else {
            s.disabled.remove(&user);
        }
        Ok(true)
    }

    async fn list_idle_conversations(
        &self,
        updated_before: DateTime<Utc>,
        after: Option<ConversationId>,
        limit: Limit,
    ) -> Result<Vec<Conversation>> {
        let s = self.state();
        Ok(after_key(&s.conversations, after)
            .filter(|(_, row)| row.conversation.updated_at < updated_before)
            .take(limit.get())
            .map(|(_, row)| row.conversation.clone())
            .collect())
    }
}

/// The entries of `map` with keys above `after` (all of them without one), in key order.
fn after_key<K: Ord, V>(map: &BTreeMap<K, V>, after: Option<K>) -> impl Iterator<Item = (&K, &V)> {
    let lower = match after {
        Some(key) => Bound::Excluded(key),
        None => Bound::Unbounded,
    };
    map.range((lower, Bound::Unbounded))
}
