-- Foundation: accounts, sessions, workspaces, conversations, members, invites, threads, messages.
-- Ids are ULIDs stored as uuid (byte order = time order). No extensions and no schema-qualified
-- names, so the whole schema can live in any schema on the search_path (tests use one each).

CREATE TABLE users (
    id                uuid PRIMARY KEY,
    email             text NOT NULL,
    display_name      text NOT NULL,
    password_hash     text NOT NULL,
    is_instance_admin boolean NOT NULL DEFAULT false,
    created_at        timestamptz NOT NULL DEFAULT now()
);
-- Emails are normalised to lower case before they get here; the index keeps it honest.
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

CREATE TABLE sessions (
    id           uuid PRIMARY KEY,
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- SHA-256 of the bearer token; the token itself is never stored.
    token_digest bytea NOT NULL UNIQUE,
    csrf_token   text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    revoked_at   timestamptz
);
CREATE INDEX sessions_user_idx ON sessions (user_id);

CREATE TABLE workspaces (
    id         uuid PRIMARY KEY,
    name       text NOT NULL,
    created_by uuid NOT NULL REFERENCES users (id),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE workspace_members (
    workspace_id uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role         text NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'guest')),
    joined_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace_id, user_id)
);
CREATE INDEX workspace_members_user_idx ON workspace_members (user_id, workspace_id);

CREATE TABLE conversations (
    id               uuid PRIMARY KEY,
    workspace_id     uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    kind             text NOT NULL CHECK (kind IN ('direct', 'group', 'channel')),
    title            text,
    description      text,
    visibility       text NOT NULL CHECK (visibility IN ('private', 'workspace')),
    history_visible  boolean NOT NULL DEFAULT true,
    archived_at      timestamptz,
    created_by       uuid NOT NULL REFERENCES users (id),
    created_at       timestamptz NOT NULL DEFAULT now(),
    last_activity_at timestamptz NOT NULL DEFAULT now(),
    -- Sequence of the latest message. Bumped under this row's lock in the writing
    -- transaction, so sequence order is commit order and readers never see a gap.
    last_seq         bigint NOT NULL DEFAULT 0,
    -- workspace:userA:userB for direct conversations: one per pair.
    direct_key       text UNIQUE
);
CREATE INDEX conversations_activity_idx ON conversations (workspace_id, last_activity_at DESC, id DESC);

CREATE TABLE conversation_members (
    conversation_id uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    user_id         uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role            text NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'viewer')),
    joined_at       timestamptz NOT NULL DEFAULT now(),
    -- The conversation's last_seq at joining: what a member may read when history is hidden.
    joined_seq      bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (conversation_id, user_id)
);
CREATE INDEX conversation_members_user_idx ON conversation_members (user_id, conversation_id);

CREATE TABLE invites (
    code            text PRIMARY KEY,
    conversation_id uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    role            text NOT NULL CHECK (role IN ('admin', 'member', 'viewer')),
    max_uses        integer CHECK (max_uses > 0),
    uses            integer NOT NULL DEFAULT 0,
    expires_at      timestamptz,
    created_by      uuid NOT NULL REFERENCES users (id),
    created_at      timestamptz NOT NULL DEFAULT now(),
    revoked_at      timestamptz
);
CREATE INDEX invites_conversation_idx ON invites (conversation_id);

CREATE TABLE messages (
    id              uuid PRIMARY KEY,
    conversation_id uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    root_id         uuid NOT NULL,
    parent_id       uuid REFERENCES messages (id),
    depth           integer NOT NULL CHECK (depth >= 0),
    -- Ids from the root down to this message. ORDER BY path is depth-first order with
    -- siblings oldest first (ULIDs sort by time); a subtree is one contiguous path range.
    path            uuid[] NOT NULL,
    seq             bigint NOT NULL,
    author_id       uuid REFERENCES users (id),
    role            text NOT NULL CHECK (role IN ('user', 'assistant', 'system')),
    content         text NOT NULL,
    status          text NOT NULL CHECK (status IN ('complete', 'streaming', 'failed', 'cancelled')),
    client_msg_id   text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (cardinality(path) = depth + 1)
);
CREATE UNIQUE INDEX messages_seq_key ON messages (conversation_id, seq);
CREATE INDEX messages_tree_idx ON messages (root_id, path);
CREATE UNIQUE INDEX messages_client_msg_id_key ON messages (conversation_id, author_id, client_msg_id)
    WHERE client_msg_id IS NOT NULL;

CREATE TABLE threads (
    root_id          uuid PRIMARY KEY REFERENCES messages (id) ON DELETE CASCADE,
    conversation_id  uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    title            text,
    tags             text[] NOT NULL DEFAULT '{}',
    reply_count      integer NOT NULL DEFAULT 0,
    -- Distinct authors in order of first message; kept here so a summary is one row.
    participant_ids  uuid[] NOT NULL DEFAULT '{}',
    root_seq         bigint NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    last_activity_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX threads_activity_idx ON threads (conversation_id, last_activity_at DESC, root_id DESC);
