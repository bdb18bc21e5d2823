-- Streams for implicit members: non-guest workspace members see workspace-visible
-- conversations without joining them. Each event records whether it was visible that way
-- when it was written (under the conversation's lock, so in the conversation's order), and
-- workspace membership gets spans like conversation membership. A user may see an event if
-- a member span covers it, or it is `open` and a workspace span of its workspace covers it.

ALTER TABLE events ALTER COLUMN conversation_id DROP NOT NULL;
ALTER TABLE events ADD COLUMN workspace_id uuid;
ALTER TABLE events ADD COLUMN open boolean NOT NULL DEFAULT false;
UPDATE events SET workspace_id = c.workspace_id, open = (c.visibility = 'workspace')
    FROM conversations c WHERE c.id = events.conversation_id;
ALTER TABLE events ALTER COLUMN workspace_id SET NOT NULL;
-- Workspace-level events (a user's own workspace membership) have no conversation.
ALTER TABLE events ADD CONSTRAINT events_scope CHECK (conversation_id IS NOT NULL OR audience IS NOT NULL);

-- When a user was a non-guest member of a workspace, as event positions (inclusive).
CREATE TABLE workspace_spans (
    workspace_id uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    user_id      uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    from_tx      bigint NOT NULL,
    from_id      bigint NOT NULL,
    until_tx     bigint,
    until_id     bigint,
    PRIMARY KEY (workspace_id, user_id, from_tx, from_id)
);
CREATE INDEX workspace_spans_user_idx ON workspace_spans (user_id, workspace_id);
INSERT INTO workspace_spans (workspace_id, user_id, from_tx, from_id)
    SELECT workspace_id, user_id, 0, 0 FROM workspace_members WHERE role <> 'guest';
