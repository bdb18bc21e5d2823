-- Someone who left (or was removed from) a conversation, from that event on until they join
-- again. Implicit members of a workspace-visible conversation have no membership to end, so
-- this is what hides it from them: lists, access and streams skip its workspace-visible
-- events after the leaving event (exclusive: the leaver still gets that one). The shape of
-- member_spans, and like them kept (without a foreign key) until the log is pruned past them.
CREATE TABLE departure_spans (
    conversation_id uuid NOT NULL,
    user_id         uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    from_tx         bigint NOT NULL,
    from_id         bigint NOT NULL,
    until_tx        bigint,
    until_id        bigint,
    PRIMARY KEY (conversation_id, user_id, from_tx, from_id)
);
CREATE INDEX departure_spans_user_idx ON departure_spans (user_id, conversation_id);
-- At most one open departure per user and conversation, and access checks find it by index.
CREATE UNIQUE INDEX departure_spans_open_idx ON departure_spans (conversation_id, user_id) WHERE until_tx IS NULL;

-- Conversation read cursors, for explicit members (from joining) and implicit members of
-- workspace-visible conversations (from their first read). Moved out of conversation_members,
-- which only explicit members have.
CREATE TABLE conversation_reads (
    user_id         uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    conversation_id uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    read_seq        bigint NOT NULL,
    PRIMARY KEY (user_id, conversation_id)
);
INSERT INTO conversation_reads (user_id, conversation_id, read_seq)
    SELECT user_id, conversation_id, read_seq FROM conversation_members;
ALTER TABLE conversation_members DROP COLUMN read_seq;
