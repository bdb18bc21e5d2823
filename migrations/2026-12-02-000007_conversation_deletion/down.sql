DELETE FROM member_spans s WHERE NOT EXISTS (SELECT 1 FROM conversations c WHERE c.id = s.conversation_id);
ALTER TABLE member_spans ADD CONSTRAINT member_spans_conversation_id_fkey
    FOREIGN KEY (conversation_id) REFERENCES conversations (id) ON DELETE CASCADE;
