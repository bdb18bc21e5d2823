-- Each member's own settings for a conversation. A table of its own rather than columns of
-- conversation_members: implicit members of workspace channels have no member row.
CREATE TABLE member_preferences (
    user_id         uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    conversation_id uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    starred         boolean NOT NULL DEFAULT false,
    -- NULL: not muted. "Until I unmute" is stored as 9999-12-31, so that "muted now" is
    -- always `mute_until > now()`.
    mute_until      timestamptz,
    notify_level    text NOT NULL DEFAULT 'all' CHECK (notify_level IN ('all', 'mentions', 'none')),
    PRIMARY KEY (user_id, conversation_id)
);
CREATE INDEX member_preferences_conversation_idx ON member_preferences (conversation_id);
