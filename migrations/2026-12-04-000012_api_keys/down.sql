DROP TRIGGER workspace_members_api_key_role ON workspace_members;
DROP TRIGGER conversation_members_api_key_reach ON conversation_members;
DROP TRIGGER workspace_members_api_key_reach ON workspace_members;
DROP FUNCTION skein_api_key_reach();
ALTER TABLE messages DROP COLUMN via_api_key_id, DROP COLUMN via_kind, DROP COLUMN author_kind;
DROP TABLE api_keys;
DELETE FROM users WHERE kind = 'service';
ALTER TABLE users DROP COLUMN kind;
