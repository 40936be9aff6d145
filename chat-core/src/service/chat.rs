//! Conversations, messages and attachments.

use super::{Caller, ChatService};
use crate::error::{Entity, Error, Result};
use crate::ids::{AttachmentId, ConversationId, MessageId};
use crate::input::{NewAttachment, NewConversation, NewMessage};
use crate::model::{Attachment, Conversation, Message, MessageDraft};
use crate::store::MessageOrder;
use crate::time;
use crate::validation::{Limit, Title};

impl ChatService {
    /// Starts a conversation for the caller.
    pub async fn create_conversation(
        &self,
        caller: &Caller,
        new: NewConversation,
    ) -> Result<Conversation> {
        let user_id = caller.check_user_id(new.user_id)?;
        let now = time::now();
        let conversation = Conversation {
            id: ConversationId::new(),
            user_id,
            title: new.title.into_string(),
            created_at: now,
            updated_at: now,
            message_count: 0,
        };
        self.inner.store.create_conversation(&conversation).await?;
        Ok(conversation)
    }

    /// One of the caller's conversations.
    pub async fn get_conversation(
        &self,
        caller: &Caller,
        id: ConversationId,
    ) -> Result<Conversation> {
        let found = self.inner.store.get_conversation(id).await?;
        caller.own(found, Entity::Conversation, |c| c.user_id)
    }

    /// A page of the caller's conversations, newest first, older than `before`.
    pub async fn list_conversations(
        &self,
        caller: &Caller,
        before: Option<ConversationId>,
        limit: Limit,
    ) -> Result<Vec<Conversation>> {
        self.inner
            .store
            .list_conversations(caller.user_id(), before, limit)
            .await
    }

    /// Renames one of the caller's conversations.
    pub async fn rename_conversation(
        &self,
        caller: &Caller,
        id: ConversationId,
        title: Title,
    ) -> Result<Conversation> {
        self.get_conversation(caller, id).await?;
        // A delete may slip in between the check and the rename; the store then reports it.
        self.inner
            .store
            .rename_conversation(id, title.as_str(), time::now())
            .await?
            .ok_or(Error::NotFound(Entity::Conversation))
    }

    /// Deletes one of the caller's conversations with its messages and their attachments.
    pub async fn delete_conversation(&self, caller: &Caller, id: ConversationId) -> Result<()> {
        self.get_conversation(caller, id).await?;
        self.inner.store.delete_conversation(id).await?;
        Ok(())
    }

    /// Appends a message to one of the caller's conversations; the store gives it its `seq`.
    ///
    /// One store call: the store itself refuses a conversation that is missing or not the
    /// caller's, so this is also the access check.
    ///
    /// The content's length is checked here, against
    /// [`ServiceConfig::max_content_bytes`](super::ServiceConfig::max_content_bytes), and
    /// only here: [`NewMessage::parse`] leaves it to the service. Content of the wrong
    /// length is [`Error::Invalid`] on `content`, before the store is asked.
    pub async fn append_message(&self, caller: &Caller, new: NewMessage) -> Result<Message> {
        new.content
            .check_length(self.inner.config.max_content_bytes)?;
        let draft = MessageDraft {
            id: MessageId::new(),
            conversation_id: new.conversation_id,
            user_id: caller.user_id(),
            role: new.role,
            content: new.content.into_string(),
            metadata: new.metadata,
            created_at: time::now(),
        };
        self.inner.store.append_message(draft).await
    }

    /// A page of one of the caller's conversations, in `order`.
    pub async fn list_messages(
        &self,
        caller: &Caller,
        conversation: ConversationId,
        order: MessageOrder,
        limit: Limit,
    ) -> Result<Vec<Message>> {
        self.get_conversation(caller, conversation).await?;
        self.inner
            .store
            .list_messages(conversation, order, limit)
            .await
    }

    /// One of the caller's messages.
    pub async fn get_message(&self, caller: &Caller, id: MessageId) -> Result<Message> {
        let found = self.inner.store.get_message(id).await?;
        caller.own(found, Entity::Message, |m| m.user_id)
    }

    /// Deletes one of the caller's messages with its attachments.
    pub async fn delete_message(&self, caller: &Caller, id: MessageId) -> Result<()> {
        self.get_message(caller, id).await?;
        self.inner.store.delete_message(id, time::now()).await?;
        Ok(())
    }

    /// Adds an attachment to one of the caller's messages.
    pub async fn create_attachment(
        &self,
        caller: &Caller,
        new: NewAttachment,
    ) -> Result<Attachment> {
        let message = self.get_message(caller, new.message_id).await?;
        let attachment = Attachment {
            id: AttachmentId::new(),
            message_id: message.id,
            conversation_id: message.conversation_id,
            user_id: message.user_id,
            file_type: new.file_type.into_string(),
            file_path: new.file_path.into_string(),
            created_at: time::now(),
        };
        self.inner.store.create_attachment(&attachment).await?;
        Ok(attachment)
    }

    /// A page of the attachments of one of the caller's messages, oldest first.
    pub async fn list_attachments(
        &self,
        caller: &Caller,
        message: MessageId,
        after: Option<AttachmentId>,
        limit: Limit,
    ) -> Result<Vec<Attachment>> {
        self.get_message(caller, message).await?;
        self.inner
            .store
            .list_attachments(message, after, limit)
            .await
    }

    /// One of the caller's attachments.
    pub async fn get_attachment(&self, caller: &Caller, id: AttachmentId) -> Result<Attachment> {
        let found = self.inner.store.get_attachment(id).await?;
        caller.own(found, Entity::Attachment, |a| a.user_id)
    }

    /// Deletes one of the caller's attachments.
    pub async fn delete_attachment(&self, caller: &Caller, id: AttachmentId) -> Result<()> {
        self.get_attachment(caller, id).await?;
        self.inner.store.delete_attachment(id).await?;
        Ok(())
    }
}
