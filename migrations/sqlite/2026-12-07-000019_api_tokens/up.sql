-- Tokens for the JSON API. An account makes its own, with a name, scopes and an expiry; only
-- the token's SHA-256 is kept (the token is 256 random bits, shown once), so a copy of the
-- database authenticates nothing. Revoked tokens stay listed, for the audit trail.

CREATE TABLE api_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    scopes TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    expires_at TIMESTAMP NOT NULL,
    last_used_at TIMESTAMP,
    revoked_at TIMESTAMP
);
CREATE INDEX api_tokens_account_idx ON api_tokens (account_id);
