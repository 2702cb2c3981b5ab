-- Passkeys (WebAuthn) as a second factor. A passkey row holds the public key and signature
-- counter as the WebAuthn library serialises them (nothing secret). A ceremony in progress is
-- kept per session, used once, and only for a few minutes.

CREATE TABLE passkeys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id BIGINT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    credential_id TEXT NOT NULL UNIQUE,
    passkey TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL,
    last_used_at TIMESTAMP
);
CREATE INDEX passkeys_account_idx ON passkeys (account_id);

CREATE TABLE passkey_ceremonies (
    session_id BIGINT PRIMARY KEY REFERENCES sessions (id) ON DELETE CASCADE,
    purpose TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);
