DROP TABLE member_alias_changes;
ALTER TABLE members DROP COLUMN rep_email;
ALTER TABLE members DROP COLUMN rep_name;
