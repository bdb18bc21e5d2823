-- Messaging: edits with their history, soft deletes (tombstones), reactions and pins.

-- A message's current content is `messages.content`; `edit_count` versions came before it.
ALTER TABLE messages
    ADD COLUMN edited_at  timestamptz,
    ADD COLUMN edit_count integer NOT NULL DEFAULT 0,
    -- A deleted message stays in its tree as a tombstone. Its content and edit history are
    -- erased at once, or kept (never shown) until `purge_at` when a purge delay is set.
    ADD COLUMN deleted_at timestamptz,
    ADD COLUMN deleted_by uuid REFERENCES users (id),
    ADD COLUMN purge_at   timestamptz,
    ADD COLUMN pinned_at  timestamptz,
    ADD COLUMN pinned_by  uuid REFERENCES users (id);
-- Unread counting skips tombstones without reading the rows.
DROP INDEX messages_unread_idx;
CREATE INDEX messages_unread_idx ON messages (conversation_id, seq) INCLUDE (root_id, parent_id, author_id, deleted_at);
CREATE INDEX messages_purge_idx ON messages (purge_at) WHERE purge_at IS NOT NULL;
CREATE INDEX messages_pins_idx ON messages (conversation_id, pinned_at DESC, id DESC) WHERE pinned_at IS NOT NULL;

-- Each edit keeps the text it replaced: version `n` (0 is the original) was replaced at
-- `edited_at` by `editor_id`.
CREATE TABLE message_edits (
    message_id uuid NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    version    integer NOT NULL,
    content    text NOT NULL,
    edited_at  timestamptz NOT NULL,
    editor_id  uuid NOT NULL REFERENCES users (id),
    PRIMARY KEY (message_id, version)
);

-- One row per user per emoji per message.
CREATE TABLE reactions (
    message_id uuid NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    emoji      text NOT NULL,
    user_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (message_id, emoji, user_id)
);
-- Who reacted with an emoji, in order.
CREATE INDEX reactions_listing_idx ON reactions (message_id, emoji, created_at, user_id);

-- Who may pin, and whether viewers may react.
ALTER TABLE conversations
    ADD COLUMN pin_policy text NOT NULL DEFAULT 'members' CHECK (pin_policy IN ('members', 'admins')),
    ADD COLUMN viewer_reactions boolean NOT NULL DEFAULT false;
