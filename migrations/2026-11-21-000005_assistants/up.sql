-- AI assistants: configured per workspace, chosen per conversation and thread, answering
-- with streamed assistant messages.

CREATE TABLE assistants (
    id            uuid PRIMARY KEY,
    workspace_id  uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    name          text NOT NULL,
    -- A provider name from the configuration.
    provider      text NOT NULL,
    model         text NOT NULL,
    system_prompt text,
    temperature   real,
    max_tokens    integer,
    created_by    uuid NOT NULL REFERENCES users (id),
    created_at    timestamptz NOT NULL DEFAULT now(),
    -- Deleted assistants stay for the messages they wrote.
    deleted_at    timestamptz
);
CREATE INDEX assistants_workspace_idx ON assistants (workspace_id, id) WHERE deleted_at IS NULL;

ALTER TABLE conversations ADD COLUMN default_assistant_id uuid REFERENCES assistants (id) ON DELETE SET NULL;
-- The thread's AI settings (`ThreadSettings`), overriding the conversation's assistant.
ALTER TABLE threads ADD COLUMN settings jsonb NOT NULL DEFAULT '{}';

-- One row per assistant message: how it is (or was) generated.
CREATE TABLE generations (
    message_id       uuid PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
    -- The message answered.
    parent_id        uuid NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    conversation_id  uuid NOT NULL,
    assistant_id     uuid REFERENCES assistants (id) ON DELETE SET NULL,
    provider         text NOT NULL,
    model            text NOT NULL,
    requested_by     uuid NOT NULL REFERENCES users (id),
    -- The instance running it. Each instance holds a session advisory lock on its id while it
    -- lives; a generation whose runner's lock is free was abandoned and is failed.
    runner           uuid NOT NULL,
    finish_reason    text,
    input_tokens     integer,
    output_tokens    integer,
    total_tokens     integer,
    error_code       text,
    error_message    text,
    started_at       timestamptz NOT NULL DEFAULT now(),
    first_token_at   timestamptz,
    finished_at      timestamptz,
    -- Set by a cancel that reached an instance not running the generation; the running one
    -- notices at its next flush.
    cancel_requested boolean NOT NULL DEFAULT false
);
-- One running generation per parent message.
CREATE UNIQUE INDEX generations_running_idx ON generations (parent_id) WHERE finished_at IS NULL;
CREATE INDEX generations_requester_idx ON generations (requested_by) WHERE finished_at IS NULL;

-- Assistant output as flushed: coalesced by time and size, never one row per token.
CREATE TABLE message_chunks (
    message_id   uuid NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    idx          integer NOT NULL,
    -- Position of the chunk's first character in the content (Unicode scalar values).
    char_offset  integer NOT NULL,
    content      text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (message_id, idx)
);

CREATE TABLE message_feedback (
    message_id  uuid NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    rating      text NOT NULL CHECK (rating IN ('up', 'down')),
    reason      text,
    comment     text,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (message_id, user_id)
);
