-- Editing members: the representative is kept on the member (copied from the application it
-- came from, then edited by admins), and a change of security alias waits for a confirmation
-- link, mailed to the new alias, before it takes effect.

ALTER TABLE members ADD COLUMN rep_name TEXT NOT NULL DEFAULT '';
ALTER TABLE members ADD COLUMN rep_email TEXT NOT NULL DEFAULT '';
UPDATE members SET
    rep_name = COALESCE((SELECT a.rep_name FROM applications a WHERE a.id = members.application_id), ''),
    rep_email = COALESCE((SELECT a.rep_email FROM applications a WHERE a.id = members.application_id), '');

CREATE TABLE member_alias_changes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    member_id BIGINT NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    old_alias TEXT NOT NULL,
    new_alias TEXT NOT NULL,
    -- SHA-256 of the link's token; the token itself is only in the mail to the new alias.
    token_hash TEXT NOT NULL UNIQUE,
    requested_by BIGINT NOT NULL REFERENCES accounts (id),
    created_at TIMESTAMP NOT NULL,
    -- A newer request for the same member sets this to its own creation time.
    expires_at TIMESTAMP NOT NULL,
    confirmed_at TIMESTAMP
);
CREATE INDEX member_alias_changes_member_idx ON member_alias_changes (member_id);
