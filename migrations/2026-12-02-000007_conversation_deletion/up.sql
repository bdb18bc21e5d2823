-- A deleted conversation's members keep their (closed) spans, so that the
-- `membership.changed` (`conversation_deleted`) written as its last event still replays to
-- them. Spans are removed with the log when it is pruned past their end.
ALTER TABLE member_spans DROP CONSTRAINT member_spans_conversation_id_fkey;
