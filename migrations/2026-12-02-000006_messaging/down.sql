ALTER TABLE conversations DROP COLUMN viewer_reactions, DROP COLUMN pin_policy;
DROP TABLE reactions;
DROP TABLE message_edits;
DROP INDEX messages_pins_idx;
DROP INDEX messages_purge_idx;
DROP INDEX messages_unread_idx;
CREATE INDEX messages_unread_idx ON messages (conversation_id, seq) INCLUDE (root_id, parent_id, author_id);
ALTER TABLE messages
    DROP COLUMN pinned_by, DROP COLUMN pinned_at, DROP COLUMN purge_at, DROP COLUMN deleted_by,
    DROP COLUMN deleted_at, DROP COLUMN edit_count, DROP COLUMN edited_at;
