-- A second factor for working-group accounts. The TOTP secret is stored encrypted with a key
-- derived from EDL_SECRET_KEY (the service must read it back to check codes); last_step is the
-- last 30-second step a code was accepted for, so a code works once. Recovery codes are
-- random and stored as SHA-256 hashes. A session records when its second factor was last
-- proven: unset, the session is waiting for it; old, a sensitive action asks for it again.

CREATE TABLE totp_factors (
    account_id BIGINT PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
    secret TEXT NOT NULL,
    confirmed_at TIMESTAMP,
    last_step BIGINT NOT NULL DEFAULT 0,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE recovery_codes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    used_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL
);
CREATE INDEX recovery_codes_account_idx ON recovery_codes (account_id);

ALTER TABLE sessions ADD COLUMN second_factor_at TIMESTAMP;
