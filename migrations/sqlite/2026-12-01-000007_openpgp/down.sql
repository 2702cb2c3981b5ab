DROP TABLE member_key_changes;
ALTER TABLE outbox DROP COLUMN encrypted;
ALTER TABLE members DROP COLUMN key_reminder_for;
ALTER TABLE members DROP COLUMN pgp_expires_at;
ALTER TABLE members DROP COLUMN pgp_fingerprint;
