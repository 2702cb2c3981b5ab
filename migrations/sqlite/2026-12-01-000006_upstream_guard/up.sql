-- The upstream guard's facts: an upstream's exact file list (imported from its checkout),
-- the project's own paths that look like an upstream's, each patch's files with their line
-- counts (the evidence an approver reads) and the hashes of its hunks (to recognise the same
-- change filed again), and every reclassification of a patch's origin with who, when and why.

CREATE TABLE upstream_files (
    upstream_id BIGINT NOT NULL REFERENCES upstreams (id) ON DELETE CASCADE,
    path TEXT NOT NULL,
    PRIMARY KEY (upstream_id, path)
);

CREATE TABLE project_paths (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    prefix TEXT NOT NULL UNIQUE,
    reason TEXT NOT NULL,
    added_by TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL
);

CREATE TABLE patch_files (
    patch_id BIGINT NOT NULL REFERENCES patches (id) ON DELETE CASCADE,
    path TEXT NOT NULL,
    added INTEGER NOT NULL,
    removed INTEGER NOT NULL,
    PRIMARY KEY (patch_id, path)
);

CREATE TABLE patch_hunks (
    patch_id BIGINT NOT NULL REFERENCES patches (id) ON DELETE CASCADE,
    hunk_sha256 TEXT NOT NULL,
    PRIMARY KEY (patch_id, hunk_sha256)
);
CREATE INDEX patch_hunks_hash_idx ON patch_hunks (hunk_sha256);
CREATE INDEX patches_sha256_idx ON patches (sha256);

CREATE TABLE patch_reclassifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    patch_id BIGINT NOT NULL REFERENCES patches (id) ON DELETE CASCADE,
    from_upstream_id BIGINT REFERENCES upstreams (id),
    to_upstream_id BIGINT REFERENCES upstreams (id),
    was_flagged BOOLEAN NOT NULL,
    reason TEXT NOT NULL,
    changed_by BIGINT NOT NULL REFERENCES accounts (id),
    changed_at TIMESTAMP NOT NULL,
    revision INTEGER NOT NULL
);
CREATE INDEX patch_reclassifications_patch_idx ON patch_reclassifications (patch_id);

-- Reclassifications made before this table existed, from the audit entries that recorded them.
INSERT INTO patch_reclassifications (patch_id, from_upstream_id, to_upstream_id, was_flagged,
    reason, changed_by, changed_at, revision)
SELECT json_extract(l.details, '$.patch'), NULL, json_extract(l.details, '$.upstream'),
       p.looks_like_upstream, COALESCE(json_extract(l.details, '$.reason'), ''), a.id,
       l.occurred_at, COALESCE(json_extract(l.details, '$.revision'), 1)
FROM audit_log l
JOIN accounts a ON a.email = l.actor
JOIN patches p ON p.id = json_extract(l.details, '$.patch')
WHERE l.action = 'release.patch-reclassified'
ORDER BY l.seq;
