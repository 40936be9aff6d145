-- The chat-store schema for SQLite.
--
-- Ids are UUIDv7 kept as 16-byte BLOBs: BLOBs compare with memcmp, so the database orders
-- them exactly as the Rust types do (big-endian bytes = creation order). Times are whole
-- microseconds since the Unix epoch in an INTEGER, so they read back exactly.
-- Every row carries the id of the user it belongs to. There is no foreign key to users:
-- the Store contract lets sessions, conversations and configs name any user id.

CREATE TABLE users (
    id            BLOB    NOT NULL PRIMARY KEY,
    username      TEXT    NOT NULL,
    -- chat_core::username_key(username), computed in Rust so every store agrees on it.
    username_key  TEXT    NOT NULL,
    email         TEXT,
    password_hash TEXT    NOT NULL,
    created_at    INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX users_username_key ON users (username_key);

CREATE TABLE sessions (
    token_hash BLOB    NOT NULL PRIMARY KEY,
    id         BLOB    NOT NULL,
    user_id    BLOB    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX sessions_id ON sessions (id);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

CREATE TABLE conversations (
    id            BLOB    NOT NULL PRIMARY KEY,
    user_id       BLOB    NOT NULL,
    title         TEXT    NOT NULL,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    message_count INTEGER NOT NULL DEFAULT 0 CHECK (message_count >= 0),
    -- The last seq handed out. It only goes up, so a deleted message's seq is never reused.
    last_seq      INTEGER NOT NULL DEFAULT 0 CHECK (last_seq >= 0)
) STRICT;
CREATE INDEX conversations_user_id ON conversations (user_id, id);

CREATE TABLE messages (
    id              BLOB    NOT NULL PRIMARY KEY,
    conversation_id BLOB    NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    user_id         BLOB    NOT NULL,
    seq             INTEGER NOT NULL CHECK (seq > 0),
    role            TEXT    NOT NULL CHECK (role IN ('system', 'user', 'assistant', 'tool')),
    content         TEXT    NOT NULL,
    -- The JSON object as serde_json wrote it, kept as text so it reads back unchanged.
    metadata        TEXT,
    created_at      INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX messages_conversation_seq ON messages (conversation_id, seq);

-- An append is one INSERT … SELECT that reads last_seq + 1 from the conversation, and this
-- trigger moves the conversation's counters in the same statement. A writing statement
-- holds SQLite's write lock from its first step, so no other connection or process can
-- read the same last_seq in between. max() keeps last_seq from ever going down, so a seq
-- is never handed out twice, even for rows inserted by hand.
CREATE TRIGGER messages_append_moves_conversation AFTER INSERT ON messages
BEGIN
    UPDATE conversations
    SET last_seq = max(last_seq, NEW.seq),
        message_count = message_count + 1,
        updated_at = NEW.created_at
    WHERE id = NEW.conversation_id;
END;

CREATE TABLE attachments (
    id              BLOB    NOT NULL PRIMARY KEY,
    message_id      BLOB    NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    conversation_id BLOB    NOT NULL,
    user_id         BLOB    NOT NULL,
    file_type       TEXT    NOT NULL,
    file_path       TEXT    NOT NULL,
    created_at      INTEGER NOT NULL
) STRICT;
CREATE INDEX attachments_message_id ON attachments (message_id, id);

CREATE TABLE providers (
    id           BLOB    NOT NULL PRIMARY KEY,
    -- NULL for a shared provider set up by the operator.
    owner_id     BLOB,
    name         TEXT    NOT NULL,
    -- chat_core::provider_name_key(name): Rust's Unicode lower case, not SQL lower().
    name_key     TEXT    NOT NULL,
    api_endpoint TEXT    NOT NULL,
    created_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX providers_owner_id ON providers (owner_id, id);
-- NULLs never collide in a unique index, so shared providers need an index of their own.
CREATE UNIQUE INDEX providers_owner_name_key ON providers (owner_id, name_key)
    WHERE owner_id IS NOT NULL;
CREATE UNIQUE INDEX providers_shared_name_key ON providers (name_key)
    WHERE owner_id IS NULL;

CREATE TABLE configs (
    id           BLOB    NOT NULL PRIMARY KEY,
    user_id      BLOB    NOT NULL,
    provider_id  BLOB    NOT NULL REFERENCES providers (id) ON DELETE CASCADE,
    sealed_key   BLOB    NOT NULL,
    api_key_hint TEXT,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
) STRICT;
CREATE UNIQUE INDEX configs_user_provider ON configs (user_id, provider_id);
CREATE INDEX configs_provider_id ON configs (provider_id);
