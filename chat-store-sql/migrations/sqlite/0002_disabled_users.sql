-- Operators can disable a user: the flag is read in the same statement that inserts a
-- session, and disabling deletes the user's sessions, found through the new index.
ALTER TABLE users ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1));
CREATE INDEX sessions_user_id ON sessions (user_id);
-- What a retention policy deletes: conversations not updated for a while.
CREATE INDEX conversations_updated_at ON conversations (updated_at);
