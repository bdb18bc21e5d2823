-- API keys: each acts as a service user of its own, and its secret opens a session whose id
-- is the key's (so authenticating, revoking and "last used" work as for any session).

ALTER TABLE users ADD COLUMN kind text NOT NULL DEFAULT 'person' CHECK (kind IN ('person', 'service'));

CREATE TABLE api_keys (
    -- Also the id of the session the secret opens.
    id               uuid PRIMARY KEY REFERENCES sessions (id) ON DELETE CASCADE,
    workspace_id     uuid NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    -- The service user the key acts as.
    user_id          uuid NOT NULL UNIQUE REFERENCES users (id) ON DELETE CASCADE,
    name             text NOT NULL,
    scopes           text[] NOT NULL CHECK (cardinality(scopes) > 0
                         AND scopes <@ ARRAY['read', 'write', 'assistant', 'admin']),
    -- NULL: the whole workspace (as its role lets it see).
    conversation_ids uuid[],
    -- The secret's first characters, to tell keys apart in a list.
    prefix           text NOT NULL,
    created_by       uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    expires_at       timestamptz,
    revoked_at       timestamptz
);
CREATE INDEX api_keys_workspace_idx ON api_keys (workspace_id, id) WHERE revoked_at IS NULL;

-- Who wrote a message and how it came in ("API session tracking").
ALTER TABLE messages
    ADD COLUMN author_kind text NOT NULL DEFAULT 'user'
        CHECK (author_kind IN ('user', 'service', 'assistant', 'system')),
    ADD COLUMN via_kind text NOT NULL DEFAULT 'session' CHECK (via_kind IN ('session', 'api_key', 'openai')),
    ADD COLUMN via_api_key_id uuid;
UPDATE messages SET author_kind = role WHERE role IN ('assistant', 'system');

-- A key's service user stays where its key puts it: in its workspace only, and, for a key
-- limited to a list of conversations, in those only (no one can add it elsewhere, by any
-- route). Checked here, once, for every way a membership can be made.
CREATE FUNCTION skein_api_key_reach() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' THEN
        -- A key's role follows its scopes and list (a guest stays a guest): mint another key.
        IF EXISTS (SELECT 1 FROM api_keys k WHERE k.user_id = NEW.user_id) THEN
            RAISE EXCEPTION 'an API key''s role is set by its key'
                USING ERRCODE = 'check_violation', CONSTRAINT = 'api_key_reach';
        END IF;
    ELSIF TG_TABLE_NAME = 'workspace_members' THEN
        IF EXISTS (SELECT 1 FROM api_keys k WHERE k.user_id = NEW.user_id AND k.workspace_id <> NEW.workspace_id) THEN
            RAISE EXCEPTION 'an API key acts in its own workspace only'
                USING ERRCODE = 'check_violation', CONSTRAINT = 'api_key_reach';
        END IF;
    ELSIF EXISTS (SELECT 1 FROM api_keys k WHERE k.user_id = NEW.user_id
                  AND k.conversation_ids IS NOT NULL AND NOT (NEW.conversation_id = ANY (k.conversation_ids))) THEN
        RAISE EXCEPTION 'this API key is limited to the conversations it lists'
            USING ERRCODE = 'check_violation', CONSTRAINT = 'api_key_reach';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER workspace_members_api_key_reach BEFORE INSERT ON workspace_members
    FOR EACH ROW EXECUTE FUNCTION skein_api_key_reach();
CREATE TRIGGER workspace_members_api_key_role BEFORE UPDATE OF role ON workspace_members
    FOR EACH ROW WHEN (OLD.role IS DISTINCT FROM NEW.role) EXECUTE FUNCTION skein_api_key_reach();
CREATE TRIGGER conversation_members_api_key_reach BEFORE INSERT ON conversation_members
    FOR EACH ROW EXECUTE FUNCTION skein_api_key_reach();
