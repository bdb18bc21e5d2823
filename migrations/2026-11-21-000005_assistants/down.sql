DROP TABLE message_feedback;
DROP TABLE message_chunks;
DROP TABLE generations;
ALTER TABLE threads DROP COLUMN settings;
ALTER TABLE conversations DROP COLUMN default_assistant_id;
DROP TABLE assistants;
