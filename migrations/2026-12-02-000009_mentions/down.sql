ALTER TABLE messages DROP COLUMN mentioned_user_ids, DROP COLUMN mentions;
