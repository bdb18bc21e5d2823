-- Mentions parsed from a message's content when it is posted or edited: `mentions` as
-- messages show them (`[{kind, user_id?, assistant_id?}]`), and the users named, which unread
-- counting matches in the same scan it already makes (messages_unread_idx).
ALTER TABLE messages
    ADD COLUMN mentions jsonb NOT NULL DEFAULT '[]',
    ADD COLUMN mentioned_user_ids uuid[] NOT NULL DEFAULT '{}';
