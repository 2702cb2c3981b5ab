DELETE FROM member_alias_changes WHERE requested_by IS NULL;
ALTER TABLE member_alias_changes ALTER COLUMN requested_by SET NOT NULL;
DROP TABLE member_sessions;
DROP TABLE member_sign_in_links;
