-- The last audit entry the admin pages found intact, so a page view checks only the entries
-- written since instead of re-hashing the whole chain. One row. `edl audit verify` still walks
-- everything and does not trust it.
CREATE TABLE audit_checkpoint (
    id INTEGER PRIMARY KEY NOT NULL CHECK (id = 1),
    seq BIGINT NOT NULL,
    hash TEXT NOT NULL,
    verified_at TIMESTAMP NOT NULL
);
-- Nothing checked yet: the first view walks the whole chain.
INSERT INTO audit_checkpoint (id, seq, hash, verified_at)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000', CURRENT_TIMESTAMP);
