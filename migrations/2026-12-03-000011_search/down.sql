DROP FUNCTION skein_configure_search(text);
DROP INDEX messages_search_idx;
DROP TRIGGER messages_search_vector ON messages;
DROP FUNCTION skein_index_message();
ALTER TABLE messages DROP COLUMN search_vector;
DROP FUNCTION skein_message_vector(text, timestamptz, text);
DROP FUNCTION skein_search_text(text);
DROP TEXT SEARCH CONFIGURATION skein_language;
DROP TEXT SEARCH CONFIGURATION skein_simple;
DROP TABLE search_settings;
-- The unaccent extension stays: other schemas or databases objects may use it.
