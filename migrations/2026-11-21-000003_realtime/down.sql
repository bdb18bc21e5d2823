DROP TABLE presence;
DROP TABLE stream_tokens;
DROP INDEX messages_unread_idx;
DROP TABLE thread_reads;
ALTER TABLE conversation_members DROP COLUMN read_seq;
DROP TABLE member_spans;
DROP TABLE event_log_state;
DROP TABLE events;
