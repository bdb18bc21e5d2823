-- Rate-limit profiles: named sets of rules per route class, assigned to workspaces, users and
-- API keys (most specific wins); the default profile applies to everyone else.
CREATE TABLE rate_limit_profiles (
    id             uuid PRIMARY KEY,
    name           text NOT NULL UNIQUE,
    is_default     boolean NOT NULL DEFAULT false,
    -- Daily quota overrides for whoever the profile applies to (NULL: the configured default).
    daily_messages bigint CHECK (daily_messages >= 0),
    daily_tokens   bigint CHECK (daily_tokens >= 0),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
-- Exactly one default at a time (switching it is one transaction).
CREATE UNIQUE INDEX rate_limit_profiles_default_idx ON rate_limit_profiles (is_default) WHERE is_default;

-- A profile without a rule for a class leaves that class unlimited.
CREATE TABLE rate_limit_rules (
    profile_id  uuid NOT NULL REFERENCES rate_limit_profiles (id) ON DELETE CASCADE,
    route_class text NOT NULL,
    burst       integer NOT NULL CHECK (burst > 0),
    per_seconds integer NOT NULL CHECK (per_seconds > 0),
    PRIMARY KEY (profile_id, route_class)
);

CREATE TABLE rate_limit_assignments (
    subject_kind text NOT NULL CHECK (subject_kind IN ('workspace', 'user', 'api_key')),
    subject_id   uuid NOT NULL,
    profile_id   uuid NOT NULL REFERENCES rate_limit_profiles (id) ON DELETE CASCADE,
    PRIMARY KEY (subject_kind, subject_id)
);
CREATE INDEX rate_limit_assignments_profile_idx ON rate_limit_assignments (profile_id);

-- GCRA state: one theoretical arrival time per (class, profile, caller), and the emission interval
-- (seconds per request) it was counted with: when a rule changes, what was used carries over
-- as a number of requests, not as time. Unlogged: a database crash forgets budgets (everyone
-- starts full), which is harmless and saves the WAL per request. A row whose time has passed
-- is a full bucket; the housekeeping sweep deletes those.
CREATE UNLOGGED TABLE rate_limit_buckets (
    bucket   text PRIMARY KEY,
    tat      timestamptz NOT NULL,
    interval double precision NOT NULL
);

-- The default profile, for people: bursts a person will not reach by hand, refilled over
-- the period. Instance admins tune it through the admin API.
INSERT INTO rate_limit_profiles (id, name, is_default) VALUES ('00000000-0000-0000-0000-000000000001', 'default', true);
INSERT INTO rate_limit_rules (profile_id, route_class, burst, per_seconds)
SELECT '00000000-0000-0000-0000-000000000001', c, b, p
FROM (VALUES ('post', 30, 30), ('edit', 30, 60), ('react', 60, 60), ('typing', 30, 30),
             ('presence', 10, 60), ('generate', 10, 60), ('search', 30, 60), ('auth', 20, 60),
             ('upload', 20, 60), ('read', 600, 60), ('write', 60, 60)) AS r (c, b, p);

-- Which profile applies: the API key's, else the user's, else the workspace's (the key's
-- workspace, or the one the request is about), else the default.
CREATE FUNCTION skein_rate_profile(p_user uuid, p_api_key uuid, p_workspace uuid, p_conversation uuid, p_message uuid)
RETURNS TABLE (profile_id uuid, assigned_to text)
LANGUAGE plpgsql STABLE AS $$
DECLARE
    v_workspace uuid := p_workspace;
BEGIN
    RETURN QUERY
        SELECT a.profile_id, a.subject_kind FROM rate_limit_assignments a
        WHERE (a.subject_kind = 'api_key' AND a.subject_id = p_api_key)
           OR (a.subject_kind = 'user' AND a.subject_id = p_user)
        ORDER BY a.subject_kind = 'api_key' DESC LIMIT 1;
    IF FOUND THEN RETURN; END IF;
    -- Finding the workspace costs a lookup: only when some workspace has a profile.
    IF EXISTS (SELECT 1 FROM rate_limit_assignments a WHERE a.subject_kind = 'workspace') THEN
        IF p_api_key IS NOT NULL THEN
            SELECT k.workspace_id INTO v_workspace FROM api_keys k WHERE k.id = p_api_key;
        ELSIF v_workspace IS NULL AND p_conversation IS NOT NULL THEN
            SELECT c.workspace_id INTO v_workspace FROM conversations c WHERE c.id = p_conversation;
        ELSIF v_workspace IS NULL AND p_message IS NOT NULL THEN
            SELECT c.workspace_id INTO v_workspace
            FROM messages m JOIN conversations c ON c.id = m.conversation_id WHERE m.id = p_message;
        END IF;
        RETURN QUERY
            SELECT a.profile_id, a.subject_kind FROM rate_limit_assignments a
            WHERE a.subject_kind = 'workspace' AND a.subject_id = v_workspace;
        IF FOUND THEN RETURN; END IF;
    END IF;
    RETURN QUERY SELECT p.id, 'instance'::text FROM rate_limit_profiles p WHERE p.is_default;
END $$;

-- Takes one request from a bucket (GCRA): each request moves the bucket's theoretical arrival
-- time (tat) on by per_seconds / burst; a request that would put it more than per_seconds
-- ahead of now is refused. The bucket row is locked for the decision, so concurrent requests
-- on every instance are counted exactly. A bucket is per class, profile and spender
-- (`u:<user>` or `ip:<address>`): a spender under two profiles (a workspace's and the
-- default) has two budgets, and spending one does not drain the other. No row returned: no
-- rule, so the class is unlimited for this spender.
CREATE FUNCTION skein_rate_take(p_spender text, p_class text, p_now timestamptz,
                                p_user uuid, p_api_key uuid, p_workspace uuid, p_conversation uuid, p_message uuid)
RETURNS TABLE (profile_name text, burst integer, per_seconds integer, allowed boolean, tat timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
    v_profile uuid;
    v_bucket text;
    v_name text;
    v_burst integer;
    v_per integer;
    v_tat timestamptz;
    v_was double precision;
    v_interval double precision;
    v_next timestamptz;
BEGIN
    SELECT p.id, p.name, r.burst, r.per_seconds INTO v_profile, v_name, v_burst, v_per
    FROM skein_rate_profile(p_user, p_api_key, p_workspace, p_conversation, p_message) s
    JOIN rate_limit_profiles p ON p.id = s.profile_id
    JOIN rate_limit_rules r ON r.profile_id = p.id AND r.route_class = p_class;
    IF NOT FOUND THEN RETURN; END IF;
    v_bucket := p_class || ':' || v_profile || ':' || p_spender;
    v_interval := v_per::float8 / v_burst;
    INSERT INTO rate_limit_buckets AS b (bucket, tat, interval) VALUES (v_bucket, p_now, v_interval)
    ON CONFLICT (bucket) DO NOTHING;
    SELECT b.tat, b.interval INTO v_tat, v_was FROM rate_limit_buckets b WHERE b.bucket = v_bucket FOR UPDATE;
    v_tat := greatest(v_tat, p_now);
    IF v_was <> v_interval THEN
        -- The same number of requests used, at the new rule's interval, and never more
        -- than a full window ahead.
        v_tat := least(p_now + (v_tat - p_now) * (v_interval / v_was), p_now + make_interval(secs => v_per));
    END IF;
    v_next := v_tat + make_interval(secs => v_interval);
    IF v_next - p_now > make_interval(secs => v_per) THEN
        UPDATE rate_limit_buckets b SET tat = v_tat, interval = v_interval WHERE b.bucket = v_bucket;
        RETURN QUERY SELECT v_name, v_burst, v_per, false, v_tat;
    ELSE
        UPDATE rate_limit_buckets b SET tat = v_next, interval = v_interval WHERE b.bucket = v_bucket;
        RETURN QUERY SELECT v_name, v_burst, v_per, true, v_next;
    END IF;
END $$;

-- Disabled accounts cannot sign in; their sessions (and keys, for service users) are gone.
ALTER TABLE users ADD COLUMN disabled_at timestamptz;

-- What each user did per day in each workspace: messages posted and assistant tokens
-- (prompt + completion) of answers they asked for. A user's, a key's (its service user's)
-- and a workspace's day are sums of these rows; each is counted in the transaction that
-- stores what it counts, so exactly once.
CREATE TABLE usage_daily (
    user_id      uuid NOT NULL,
    workspace_id uuid NOT NULL,
    day          date NOT NULL,
    messages     bigint NOT NULL DEFAULT 0,
    tokens       bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, day, workspace_id)
);
CREATE INDEX usage_daily_workspace_idx ON usage_daily (workspace_id, day);

-- A person's or a key's message counts on its UTC day, in the transaction that stores it.
CREATE FUNCTION skein_usage_message() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO usage_daily AS u (user_id, workspace_id, day, messages)
    SELECT NEW.author_id, c.workspace_id, (NEW.created_at AT TIME ZONE 'UTC')::date, 1
    FROM conversations c WHERE c.id = NEW.conversation_id
    ON CONFLICT (user_id, day, workspace_id) DO UPDATE SET messages = u.messages + 1;
    RETURN NULL;
END $$;
CREATE TRIGGER messages_usage AFTER INSERT ON messages
    FOR EACH ROW WHEN (NEW.author_id IS NOT NULL AND NEW.role = 'user') EXECUTE FUNCTION skein_usage_message();

-- An answer's tokens count for whoever asked for it when its one terminal write records the
-- provider's usage (finished_at is set exactly once).
CREATE FUNCTION skein_usage_tokens() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO usage_daily AS u (user_id, workspace_id, day, tokens)
    SELECT NEW.requested_by, c.workspace_id, (NEW.finished_at AT TIME ZONE 'UTC')::date, NEW.total_tokens
    FROM conversations c WHERE c.id = NEW.conversation_id
    ON CONFLICT (user_id, day, workspace_id) DO UPDATE SET tokens = u.tokens + EXCLUDED.tokens;
    RETURN NULL;
END $$;
CREATE TRIGGER generations_usage AFTER UPDATE OF finished_at ON generations
    FOR EACH ROW WHEN (OLD.finished_at IS NULL AND NEW.finished_at IS NOT NULL AND NEW.total_tokens IS NOT NULL)
    EXECUTE FUNCTION skein_usage_tokens();

-- One day's use by a caller (every workspace) and, when asked, by a workspace, with the
-- quota overrides of the profile that applies to the caller there.
CREATE FUNCTION skein_usage_today(p_user uuid, p_workspace uuid, p_count_workspace boolean, p_day date)
RETURNS TABLE (caller_messages bigint, caller_tokens bigint, workspace_messages bigint, workspace_tokens bigint,
               daily_messages bigint, daily_tokens bigint)
LANGUAGE sql STABLE AS $$
    SELECT mine.messages, mine.tokens, coalesce(theirs.messages, 0), coalesce(theirs.tokens, 0),
           p.daily_messages, p.daily_tokens
    FROM (SELECT coalesce(sum(u.messages), 0)::bigint AS messages, coalesce(sum(u.tokens), 0)::bigint AS tokens
          FROM usage_daily u WHERE u.user_id = p_user AND u.day = p_day) mine
    LEFT JOIN LATERAL (SELECT sum(u.messages)::bigint AS messages, sum(u.tokens)::bigint AS tokens
                       FROM usage_daily u WHERE p_count_workspace AND u.workspace_id = p_workspace AND u.day = p_day) theirs ON true
    LEFT JOIN skein_rate_profile(p_user, (SELECT k.id FROM api_keys k WHERE k.user_id = p_user), p_workspace, NULL, NULL) s ON true
    LEFT JOIN rate_limit_profiles p ON p.id = s.profile_id
$$;
