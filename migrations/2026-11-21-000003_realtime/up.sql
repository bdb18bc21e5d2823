-- Realtime: the event log (outbox, replay source and audit trail in one), membership spans
-- for filtering replay, read cursors, stream tokens and presence.

-- One row per event. Order is (tx, id): `tx` is the writing transaction's id. Every writer
-- takes the conversation's advisory lock *before* its first write (which is when PostgreSQL
-- assigns the id), so within a conversation tx order is commit order. Readers only take
-- rows with tx below the oldest running transaction (pg_snapshot_xmin): every transaction
-- below it has finished, so nothing can later appear before what was read. That is what
-- makes replay gapless under concurrent writers (the "outbox trap").
CREATE TABLE events (
    tx              bigint NOT NULL DEFAULT (pg_current_xact_id()::text::bigint),
    id              bigint GENERATED ALWAYS AS IDENTITY,
    conversation_id uuid NOT NULL,
    kind            text NOT NULL,
    root_id         uuid,
    message_id      uuid,
    -- Only this user receives the event (their own unread counts).
    audience        uuid,
    occurred_at     timestamptz NOT NULL DEFAULT now(),
    -- The event's `data`, serialised once by the writer and sent verbatim.
    data            text NOT NULL,
    PRIMARY KEY (tx, id)
);
CREATE INDEX events_conversation_idx ON events (conversation_id, tx, id);
CREATE INDEX events_occurred_idx ON events (occurred_at);

-- What retention has removed: cursors at or below this get `resync`.
CREATE TABLE event_log_state (
    singleton     boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    pruned_tx     bigint NOT NULL DEFAULT 0,
    pruned_id     bigint NOT NULL DEFAULT 0
);
INSERT INTO event_log_state DEFAULT VALUES;

-- When a user was a member of a conversation, as event positions: from their joining event
-- to their leaving event inclusive. Streams deliver and replay a conversation's events to a
-- user only inside a span.
CREATE TABLE member_spans (
    conversation_id uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    user_id         uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    from_tx         bigint NOT NULL,
    from_id         bigint NOT NULL,
    until_tx        bigint,
    until_id        bigint,
    PRIMARY KEY (conversation_id, user_id, from_tx, from_id)
);
CREATE INDEX member_spans_user_idx ON member_spans (user_id, conversation_id);
-- Members from before the event log existed are members from its beginning.
INSERT INTO member_spans (conversation_id, user_id, from_tx, from_id)
    SELECT conversation_id, user_id, 0, 0 FROM conversation_members;

-- Read cursors: a conversation's (roots, and everything up to it) and a thread's (replies).
-- They only move forward. A new member has read everything from before they joined.
ALTER TABLE conversation_members ADD COLUMN read_seq bigint NOT NULL DEFAULT 0;
UPDATE conversation_members SET read_seq = joined_seq;
CREATE TABLE thread_reads (
    user_id         uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    root_id         uuid NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    read_seq        bigint NOT NULL,
    PRIMARY KEY (user_id, root_id)
);
-- Unread counting scans a member's conversations from their read cursor by sequence.
CREATE INDEX messages_unread_idx ON messages (conversation_id, seq) INCLUDE (root_id, parent_id, author_id);

-- Short-lived, single-purpose tokens for opening a stream where headers cannot be set
-- (EventSource). Stored as digests, tied to the session that asked for them.
CREATE TABLE stream_tokens (
    token_digest bytea PRIMARY KEY,
    session_id   uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    expires_at   timestamptz NOT NULL
);

-- Presence: the latest heartbeat and the state last announced to others (so that, of many
-- instances sweeping for timeouts, exactly one announces each change).
CREATE TABLE presence (
    user_id        uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    last_seen_at   timestamptz NOT NULL,
    away           boolean NOT NULL DEFAULT false,
    announced      text NOT NULL CHECK (announced IN ('online', 'away', 'offline'))
);
