DROP TABLE workspace_spans;
DELETE FROM events WHERE conversation_id IS NULL;
ALTER TABLE events DROP CONSTRAINT events_scope;
ALTER TABLE events DROP COLUMN open;
ALTER TABLE events DROP COLUMN workspace_id;
ALTER TABLE events ALTER COLUMN conversation_id SET NOT NULL;
