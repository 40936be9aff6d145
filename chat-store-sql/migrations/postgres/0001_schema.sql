-- The chat-store schema for PostgreSQL.
--
-- Ids are UUIDv7 in `uuid` columns, which compare as their 16 bytes, so the database orders
-- them exactly as the Rust types do. Times are `timestamptz`, which keeps microseconds.
-- Every row carries the id of the user it belongs to, so a sharded deployment could keep a
-- user's rows together. There is no foreign key to users: the Store contract lets sessions,
-- conversations and configs name any user id.

CREATE TABLE users (
    id            uuid        NOT NULL,
    username      text        NOT NULL,
    -- chat_core::username_key(username), computed in Rust so every store agrees on it.
    username_key  text        NOT NULL,
    email         text,
    password_hash text        NOT NULL,
    created_at    timestamptz NOT NULL,
    CONSTRAINT users_pkey PRIMARY KEY (id)
);
CREATE UNIQUE INDEX users_username_key ON users (username_key);

CREATE TABLE sessions (
    token_hash bytea       NOT NULL,
    id         uuid        NOT NULL,
    user_id    uuid        NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    CONSTRAINT sessions_pkey PRIMARY KEY (token_hash)
);
CREATE UNIQUE INDEX sessions_id ON sessions (id);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

CREATE TABLE conversations (
    id            uuid        NOT NULL,
    user_id       uuid        NOT NULL,
    title         text        NOT NULL,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    message_count bigint      NOT NULL DEFAULT 0 CHECK (message_count >= 0),
    -- The last seq handed out. It only goes up, so a deleted message's seq is never reused.
    -- Appends bump it with UPDATE … RETURNING, whose row lock orders concurrent appenders.
    last_seq      bigint      NOT NULL DEFAULT 0 CHECK (last_seq >= 0),
    CONSTRAINT conversations_pkey PRIMARY KEY (id)
);
CREATE INDEX conversations_user_id ON conversations (user_id, id);

CREATE TABLE messages (
    id              uuid        NOT NULL,
    conversation_id uuid        NOT NULL,
    user_id         uuid        NOT NULL,
    seq             bigint      NOT NULL CHECK (seq > 0),
    role            text        NOT NULL CHECK (role IN ('system', 'user', 'assistant', 'tool')),
    content         text        NOT NULL,
    -- `json`, not `jsonb`: jsonb rewrites numbers and drops the text as written, and the
    -- contract is that metadata comes back as it went in.
    metadata        json,
    created_at      timestamptz NOT NULL,
    CONSTRAINT messages_pkey PRIMARY KEY (id),
    CONSTRAINT messages_conversation_fkey FOREIGN KEY (conversation_id)
        REFERENCES conversations (id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX messages_conversation_seq ON messages (conversation_id, seq);

CREATE TABLE attachments (
    id              uuid        NOT NULL,
    message_id      uuid        NOT NULL,
    conversation_id uuid        NOT NULL,
    user_id         uuid        NOT NULL,
    file_type       text        NOT NULL,
    file_path       text        NOT NULL,
    created_at      timestamptz NOT NULL,
    CONSTRAINT attachments_pkey PRIMARY KEY (id),
    CONSTRAINT attachments_message_fkey FOREIGN KEY (message_id)
        REFERENCES messages (id) ON DELETE CASCADE
);
CREATE INDEX attachments_message_id ON attachments (message_id, id);

CREATE TABLE providers (
    id           uuid        NOT NULL,
    -- NULL for a shared provider set up by the operator.
    owner_id     uuid,
    name         text        NOT NULL,
    -- chat_core::provider_name_key(name): Rust's Unicode lower case, not SQL lower(),
    -- whose result depends on the database's collation.
    name_key     text        NOT NULL,
    api_endpoint text        NOT NULL,
    created_at   timestamptz NOT NULL,
    CONSTRAINT providers_pkey PRIMARY KEY (id)
);
CREATE INDEX providers_owner_id ON providers (owner_id, id);
-- NULLs never collide in a unique index, so shared providers need an index of their own.
CREATE UNIQUE INDEX providers_owner_name_key ON providers (owner_id, name_key)
    WHERE owner_id IS NOT NULL;
CREATE UNIQUE INDEX providers_shared_name_key ON providers (name_key)
    WHERE owner_id IS NULL;

CREATE TABLE configs (
    id           uuid        NOT NULL,
    user_id      uuid        NOT NULL,
    provider_id  uuid        NOT NULL,
    sealed_key   bytea       NOT NULL,
    api_key_hint text,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    CONSTRAINT configs_pkey PRIMARY KEY (id),
    CONSTRAINT configs_provider_fkey FOREIGN KEY (provider_id)
        REFERENCES providers (id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX configs_user_provider ON configs (user_id, provider_id);
CREATE INDEX configs_provider_id ON configs (provider_id);
