-- Members sign in to their own page with a single-use link mailed to their security alias.
-- Every request for a link is a row, member or not (member_id NULL), so the per-address limit
-- counts both alike and the request does the same work either way. Only SHA-256 hashes of the
-- address and of the link's token are kept.
CREATE TABLE member_sign_in_links (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    address_hash TEXT NOT NULL,
    member_id BIGINT REFERENCES members (id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    used_at TIMESTAMP
);
CREATE INDEX member_sign_in_links_address_idx ON member_sign_in_links (address_hash, created_at);

-- Members' sessions, apart from staff sessions: a random token in its own encrypted cookie,
-- only its hash here.
CREATE TABLE member_sessions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    member_id BIGINT NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    created_at TIMESTAMP NOT NULL,
    last_seen_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL
);
CREATE INDEX member_sessions_member_idx ON member_sessions (member_id);

-- A member asks for a new alias from its own page: no account requested it (NULL). SQLite
-- cannot drop a NOT NULL constraint, so the table is rebuilt; no table refers to it.
CREATE TABLE member_alias_changes_new (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    member_id BIGINT NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    old_alias TEXT NOT NULL,
    new_alias TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    requested_by BIGINT REFERENCES accounts (id),
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    confirmed_at TIMESTAMP
);
INSERT INTO member_alias_changes_new
    (id, member_id, old_alias, new_alias, token_hash, requested_by, created_at, expires_at, confirmed_at)
    SELECT id, member_id, old_alias, new_alias, token_hash, requested_by, created_at, expires_at, confirmed_at
    FROM member_alias_changes;
DROP TABLE member_alias_changes;
ALTER TABLE member_alias_changes_new RENAME TO member_alias_changes;
CREATE INDEX member_alias_changes_member_idx ON member_alias_changes (member_id);
