-- OpenPGP: what the mailing needs to know of each member's key without parsing it (its
-- fingerprint and when it stops being usable), which expiry reminder went out, whether each
-- message was sent encrypted, and a member's new key waiting for proof of possession.

ALTER TABLE members ADD COLUMN pgp_fingerprint TEXT;
ALTER TABLE members ADD COLUMN pgp_expires_at TIMESTAMP;
-- The fingerprint of the key whose coming expiry the member was reminded of.
ALTER TABLE members ADD COLUMN key_reminder_for TEXT;

-- NULL until sent; then whether the message left encrypted to its recipient.
ALTER TABLE outbox ADD COLUMN encrypted BOOLEAN;

CREATE TABLE member_key_changes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    member_id BIGINT NOT NULL REFERENCES members (id) ON DELETE CASCADE,
    pgp_key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    -- SHA-256 of the code encrypted to the new key; the member proves possession by typing
    -- the decrypted code back.
    code_sha256 TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    confirmed_at TIMESTAMP
);
CREATE INDEX member_key_changes_member_idx ON member_key_changes (member_id);
