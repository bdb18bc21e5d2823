ALTER TABLE conversation_members ADD COLUMN read_seq bigint NOT NULL DEFAULT 0;
UPDATE conversation_members cm SET read_seq = cr.read_seq
    FROM conversation_reads cr WHERE cr.user_id = cm.user_id AND cr.conversation_id = cm.conversation_id;
DROP TABLE conversation_reads;
DROP TABLE departure_spans;
