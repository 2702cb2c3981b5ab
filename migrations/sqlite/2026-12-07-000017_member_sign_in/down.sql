CREATE TABLE member_alias_changes_old (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    member_id BIGINT NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    old_alias TEXT NOT NULL,
    new_alias TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    requested_by BIGINT NOT NULL REFERENCES accounts (id),
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    confirmed_at TIMESTAMP
);
INSERT INTO member_alias_changes_old
    (id, member_id, old_alias, new_alias, token_hash, requested_by, created_at, expires_at, confirmed_at)
    SELECT id, member_id, old_alias, new_alias, token_hash, requested_by, created_at, expires_at, confirmed_at
    FROM member_alias_changes WHERE requested_by IS NOT NULL;
DROP TABLE member_alias_changes;
ALTER TABLE member_alias_changes_old RENAME TO member_alias_changes;
CREATE INDEX member_alias_changes_member_idx ON member_alias_changes (member_id);
DROP TABLE member_sessions;
DROP TABLE member_sign_in_links;
