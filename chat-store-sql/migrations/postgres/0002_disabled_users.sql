-- Operators can disable a user: a session insert reads the flag under a share lock on the
-- user's row, and disabling deletes the user's sessions, found through the new index.
ALTER TABLE users ADD COLUMN disabled boolean NOT NULL DEFAULT false;
CREATE INDEX sessions_user_id ON sessions (user_id);
-- What a retention policy deletes: conversations not updated for a while.
CREATE INDEX conversations_updated_at ON conversations (updated_at);
