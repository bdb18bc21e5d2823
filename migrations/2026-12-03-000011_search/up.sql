-- Full-text search over messages.
--
-- Each message's `search_vector` holds its words twice: through `skein_language` (the
-- configured `search.language`: stemming and stop words) and through `skein_simple` (every
-- language: each word as written, so a prefix typed so far matches the word, not its stem).
-- Both fold case, and accents when the `unaccent` extension can be installed; without it
-- search is accent-sensitive (the server logs it at startup). Text is NFKC-normalised first
-- (in a UTF-8 database). A trigger keeps the vector in the same statement as every insert,
-- edit, delete and an answer's end: tombstones and streaming answers have none.

-- One creator of the extension at a time: concurrent migrations (test schemas) would race.
DO $$
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext('skein.unaccent'));
  IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'unaccent')
     AND EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'unaccent') THEN
    BEGIN
      -- Not in this schema: dropping a schema must never drop what others use.
      CREATE EXTENSION unaccent SCHEMA public;
    EXCEPTION WHEN OTHERS THEN
      RAISE NOTICE 'skein: unaccent could not be installed (%); search is accent-sensitive', SQLERRM;
    END;
  END IF;
END $$;

CREATE TABLE search_settings (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  -- The PostgreSQL configuration `skein_language` copies; NULL until the first start.
  language text,
  accent_folding boolean NOT NULL DEFAULT false,
  -- Messages with ids above this still have vectors of the previous language.
  reindex_after uuid
);
INSERT INTO search_settings DEFAULT VALUES;

CREATE TEXT SEARCH CONFIGURATION skein_simple (COPY = pg_catalog.simple);
CREATE TEXT SEARCH CONFIGURATION skein_language (COPY = pg_catalog.simple);

-- The text as indexed and as queries are read: NFKC-normalised (in a UTF-8 database), and
-- `<` read as a space, since the parser takes `<…>` for an HTML tag and skips the words in it
-- (chat text is not HTML: `Vec<String>` must find `string`).
DO $$
BEGIN
  IF getdatabaseencoding() = 'UTF8' THEN
    CREATE FUNCTION skein_search_text(body text) RETURNS text
      LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $f$ SELECT normalize(translate(body, '<', ' '), NFKC) $f$;
  ELSE
    CREATE FUNCTION skein_search_text(body text) RETURNS text
      LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $f$ SELECT translate(body, '<', ' ') $f$;
  END IF;
END $$;

-- A message's vector: none for a tombstone, a streaming answer or empty content. Between the
-- two halves sits a lexeme no query can produce (a space), so that a phrase never matches
-- across them (the last word of one half next to the first of the other).
CREATE FUNCTION skein_message_vector(body text, deleted_at timestamptz, status text) RETURNS tsvector
  LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN deleted_at IS NULL AND status <> 'streaming' AND body <> '' THEN
    to_tsvector('skein_language', skein_search_text(body)) || $v$' ':1$v$::tsvector
      || to_tsvector('skein_simple', skein_search_text(body))
  END
$$;

ALTER TABLE messages ADD COLUMN search_vector tsvector;

CREATE FUNCTION skein_index_message() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  NEW.search_vector := skein_message_vector(NEW.content, NEW.deleted_at, NEW.status);
  RETURN NEW;
END $$;

CREATE TRIGGER messages_search_vector BEFORE INSERT OR UPDATE OF content, deleted_at, status ON messages
  FOR EACH ROW EXECUTE FUNCTION skein_index_message();

-- A small pending list: every search reads it whole, so its size is a floor under search latency
-- (the default 4 MB cost a mid-frequency word ~3 ms per query at 1M messages); writes still
-- batch into it.
CREATE INDEX messages_search_idx ON messages USING gin (search_vector) WITH (gin_pending_list_limit = 256);

-- Points `skein_language` (and `skein_simple`'s accent folding) at `wanted`, a PostgreSQL text
-- search configuration, in place: cached plans hold the configuration's oid, so it is altered,
-- never recreated. Returns true when the language changed (the caller then reindexes from
-- `reindex_after`). Concurrent starts take turns.
CREATE FUNCTION skein_configure_search(wanted text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
  source regconfig;
  unaccent_dict text;
  mapping record;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext('skein.search_settings'));
  SELECT c.oid INTO source FROM pg_ts_config c JOIN pg_namespace n ON n.oid = c.cfgnamespace
    WHERE c.cfgname = wanted AND n.nspname = 'pg_catalog';
  IF source IS NULL THEN
    RAISE EXCEPTION 'search.language: % is not a PostgreSQL text search configuration (SELECT cfgname FROM pg_ts_config lists them)', wanted
      USING ERRCODE = '22023';
  END IF;
  IF (SELECT language FROM search_settings) IS NOT DISTINCT FROM wanted THEN
    RETURN false;
  END IF;
  SELECT format('%I.%I', n.nspname, d.dictname) INTO unaccent_dict
    FROM pg_ts_dict d JOIN pg_namespace n ON n.oid = d.dictnamespace WHERE d.dictname = 'unaccent' LIMIT 1;
  FOR mapping IN
    SELECT t.alias, string_agg(format('%I.%I', dn.nspname, d.dictname), ', ' ORDER BY m.mapseqno) AS dicts
    FROM pg_ts_config_map m
    JOIN ts_token_type('default') t ON t.tokid = m.maptokentype
    JOIN pg_ts_dict d ON d.oid = m.mapdict JOIN pg_namespace dn ON dn.oid = d.dictnamespace
    WHERE m.mapcfg = source GROUP BY t.alias
  LOOP
    EXECUTE format('ALTER TEXT SEARCH CONFIGURATION skein_language ALTER MAPPING FOR %I WITH %s',
      mapping.alias, concat_ws(', ', unaccent_dict, mapping.dicts));
  END LOOP;
  FOR mapping IN
    SELECT t.alias FROM pg_ts_config_map m JOIN ts_token_type('default') t ON t.tokid = m.maptokentype
    WHERE m.mapcfg = 'pg_catalog.simple'::regconfig
  LOOP
    EXECUTE format('ALTER TEXT SEARCH CONFIGURATION skein_simple ALTER MAPPING FOR %I WITH %s',
      mapping.alias, concat_ws(', ', unaccent_dict, 'pg_catalog.simple'));
  END LOOP;
  UPDATE search_settings SET language = wanted, accent_folding = unaccent_dict IS NOT NULL,
    reindex_after = '00000000-0000-0000-0000-000000000000';
  RETURN true;
END $$;
