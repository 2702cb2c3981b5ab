-- State in columns, not in strings:
-- * who changed and who approved each revision of a release (release_revisions and
--   release_changes), read by the two-person rule instead of audit-log JSON; the release
--   keeps only its current revision number, and its never-read status column goes;
-- * an outbox row's attachments as rows, its held-back state as a status with a reason, and
--   the revision it carries as a column;
-- * lists (an application's domains and links, a release's lines, a patch's signals) as JSON
--   arrays instead of joined text.
-- Existing rows are carried over: revisions and changes from the audit entries that recorded
-- them, attachments and revisions from the text they were kept in.

PRAGMA foreign_keys = OFF;
BEGIN IMMEDIATE;

CREATE TABLE release_revisions (
    release_id BIGINT NOT NULL REFERENCES releases (id) ON DELETE CASCADE,
    revision INTEGER NOT NULL,
    created_at TIMESTAMP NOT NULL,
    approved_by BIGINT REFERENCES accounts (id),
    approved_at TIMESTAMP,
    PRIMARY KEY (release_id, revision)
);

CREATE TABLE release_changes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    release_id BIGINT NOT NULL,
    revision INTEGER NOT NULL,
    changed_by BIGINT NOT NULL REFERENCES accounts (id),
    changed_at TIMESTAMP NOT NULL,
    change TEXT NOT NULL,
    FOREIGN KEY (release_id, revision) REFERENCES release_revisions (release_id, revision) ON DELETE CASCADE
);
CREATE INDEX release_changes_revision_idx ON release_changes (release_id, revision, changed_by);

WITH RECURSIVE revs (release_id, revision) AS (
    SELECT id, 1 FROM releases
    UNION ALL
    SELECT revs.release_id, revs.revision + 1
    FROM revs JOIN releases r ON r.id = revs.release_id
    WHERE revs.revision < r.revision
)
INSERT INTO release_revisions (release_id, revision, created_at, approved_by, approved_at)
SELECT revs.release_id, revs.revision, r.created_at,
       CASE WHEN r.approved_revision = revs.revision THEN r.approved_by END,
       CASE WHEN r.approved_revision = revs.revision THEN r.approved_at END
FROM revs JOIN releases r ON r.id = revs.release_id;

-- Approvals of earlier revisions are known only from the audit log.
UPDATE release_revisions
SET approved_by = (
        SELECT a.id FROM audit_log l JOIN accounts a ON a.email = l.actor
        WHERE l.action = 'release.approved'
          AND l.subject = 'release:' || release_revisions.release_id
          AND json_extract(l.details, '$.revision') = release_revisions.revision
        ORDER BY l.seq DESC LIMIT 1),
    approved_at = (
        SELECT l.occurred_at FROM audit_log l JOIN accounts a ON a.email = l.actor
        WHERE l.action = 'release.approved'
          AND l.subject = 'release:' || release_revisions.release_id
          AND json_extract(l.details, '$.revision') = release_revisions.revision
        ORDER BY l.seq DESC LIMIT 1)
WHERE approved_by IS NULL
  AND EXISTS (
        SELECT 1 FROM audit_log l JOIN accounts a ON a.email = l.actor
        WHERE l.action = 'release.approved'
          AND l.subject = 'release:' || release_revisions.release_id
          AND json_extract(l.details, '$.revision') = release_revisions.revision);

INSERT INTO release_changes (release_id, revision, changed_by, changed_at, change)
SELECT id, 1, created_by, created_at, 'planned' FROM releases;

INSERT INTO release_changes (release_id, revision, changed_by, changed_at, change)
SELECT CAST(substr(l.subject, 9) AS INTEGER), json_extract(l.details, '$.revision'), a.id,
       l.occurred_at, substr(l.action, 9)
FROM audit_log l JOIN accounts a ON a.email = l.actor
WHERE l.action IN ('release.advisory-added', 'release.patch-added', 'release.patch-reclassified',
                   'release.exception-recorded', 'release.postponed')
  AND l.subject LIKE 'release:%'
  AND EXISTS (
        SELECT 1 FROM release_revisions rr
        WHERE rr.release_id = CAST(substr(l.subject, 9) AS INTEGER)
          AND rr.revision = json_extract(l.details, '$.revision'))
ORDER BY l.seq;

-- A release's lines were joined with ", ".
WITH RECURSIVE split (id, n, rest, item) AS (
    SELECT id, 0, release_lines || ',', '' FROM releases
    UNION ALL
    SELECT id, n + 1, substr(rest, instr(rest, ',') + 1), trim(substr(rest, 1, instr(rest, ',') - 1))
    FROM split WHERE rest <> ''
)
UPDATE releases SET release_lines = (
    SELECT json_group_array(item) FROM (
        SELECT item FROM split WHERE split.id = releases.id AND item <> '' ORDER BY n));

CREATE TABLE releases_new (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL CHECK (kind IN ('patch-tuesday', 'zero-day', 'third-party')),
    title TEXT NOT NULL,
    revision INTEGER NOT NULL DEFAULT 1,
    release_at TIMESTAMP NOT NULL,
    disclosure_at TIMESTAMP,
    announce_at TIMESTAMP,
    upstream_id BIGINT REFERENCES upstreams (id),
    release_lines TEXT NOT NULL,
    members_may_deploy BOOLEAN NOT NULL DEFAULT FALSE,
    notes TEXT NOT NULL DEFAULT '',
    created_by BIGINT NOT NULL REFERENCES accounts (id),
    disclosed_at TIMESTAMP,
    announced_at TIMESTAMP,
    published_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    notice_hours INTEGER NOT NULL DEFAULT 0,
    non_security_exception TEXT,
    cancelled_at TIMESTAMP,
    cancel_reason TEXT
);
INSERT INTO releases_new (id, kind, title, revision, release_at, disclosure_at, announce_at,
    upstream_id, release_lines, members_may_deploy, notes, created_by, disclosed_at,
    announced_at, published_at, created_at, updated_at, notice_hours, non_security_exception,
    cancelled_at, cancel_reason)
SELECT id, kind, title, revision, release_at, disclosure_at, announce_at,
    upstream_id, release_lines, members_may_deploy, notes, created_by, disclosed_at,
    announced_at, published_at, created_at, updated_at, notice_hours, non_security_exception,
    cancelled_at, cancel_reason
FROM releases;
DROP TABLE releases;
ALTER TABLE releases_new RENAME TO releases;
CREATE INDEX releases_release_at_idx ON releases (release_at);

-- The outbox: a held status with its reason, the revision as a column, attachments as rows.
CREATE TABLE outbox_new (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    template TEXT NOT NULL,
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,
    body_text TEXT NOT NULL,
    body_html TEXT NOT NULL,
    dedupe_key TEXT UNIQUE,
    status TEXT NOT NULL CHECK (status IN ('queued', 'sending', 'sent', 'failed', 'held')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    lease_until TIMESTAMP,
    leased_by TEXT,
    last_error TEXT,
    held_reason TEXT,
    message_id TEXT NOT NULL UNIQUE,
    sent_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    release_id BIGINT REFERENCES releases (id),
    member_id BIGINT REFERENCES members (id),
    revision INTEGER
);
INSERT INTO outbox_new (id, template, recipient, subject, body_text, body_html, dedupe_key,
    status, attempts, next_attempt_at, lease_until, leased_by, last_error, held_reason,
    message_id, sent_at, created_at, updated_at, release_id, member_id, revision)
SELECT id, template, recipient, subject, body_text, body_html, dedupe_key,
    CASE WHEN status = 'failed' AND last_error LIKE 'not sent: %' THEN 'held' ELSE status END,
    attempts, next_attempt_at, lease_until, leased_by,
    CASE WHEN status = 'failed' AND last_error LIKE 'not sent: %' THEN NULL ELSE last_error END,
    CASE WHEN status = 'failed' AND last_error LIKE 'not sent: %' THEN substr(last_error, 11) END,
    message_id, sent_at, created_at, updated_at, release_id, member_id,
    CASE
        WHEN dedupe_key LIKE 'release:%:rev:%:member:%' THEN CAST(substr(dedupe_key,
            instr(dedupe_key, ':rev:') + 5,
            instr(dedupe_key, ':member:') - instr(dedupe_key, ':rev:') - 5) AS INTEGER)
        WHEN dedupe_key LIKE 'release:%:postponed:%:member:%' THEN CAST(substr(dedupe_key,
            instr(dedupe_key, ':postponed:') + 11,
            instr(dedupe_key, ':member:') - instr(dedupe_key, ':postponed:') - 11) AS INTEGER)
    END
FROM outbox;

CREATE TABLE outbox_attachments (
    outbox_id BIGINT NOT NULL REFERENCES outbox (id) ON DELETE CASCADE,
    patch_id BIGINT NOT NULL REFERENCES patches (id),
    PRIMARY KEY (outbox_id, patch_id)
);
WITH RECURSIVE split (id, rest, item) AS (
    SELECT id, attachments || ',', '' FROM outbox
    UNION ALL
    SELECT id, substr(rest, instr(rest, ',') + 1), trim(substr(rest, 1, instr(rest, ',') - 1))
    FROM split WHERE rest <> ''
)
INSERT OR IGNORE INTO outbox_attachments (outbox_id, patch_id)
SELECT id, CAST(item AS INTEGER) FROM split WHERE item <> '';

DROP TABLE outbox;
ALTER TABLE outbox_new RENAME TO outbox;
CREATE INDEX outbox_due_idx ON outbox (status, next_attempt_at);
CREATE INDEX outbox_release_idx ON outbox (release_id, member_id);
CREATE INDEX outbox_attachments_patch_idx ON outbox_attachments (patch_id);

-- Lists that were joined with newlines.
WITH RECURSIVE split (id, n, rest, item) AS (
    SELECT id, 0, org_domains || char(10), '' FROM applications
    UNION ALL
    SELECT id, n + 1, substr(rest, instr(rest, char(10)) + 1),
           trim(substr(rest, 1, instr(rest, char(10)) - 1))
    FROM split WHERE rest <> ''
)
UPDATE applications SET org_domains = (
    SELECT json_group_array(item) FROM (
        SELECT item FROM split WHERE split.id = applications.id AND item <> '' ORDER BY n));

WITH RECURSIVE split (id, n, rest, item) AS (
    SELECT id, 0, track_record || char(10), '' FROM applications
    UNION ALL
    SELECT id, n + 1, substr(rest, instr(rest, char(10)) + 1),
           trim(substr(rest, 1, instr(rest, char(10)) - 1))
    FROM split WHERE rest <> ''
)
UPDATE applications SET track_record = (
    SELECT json_group_array(item) FROM (
        SELECT item FROM split WHERE split.id = applications.id AND item <> '' ORDER BY n));

WITH RECURSIVE split (id, n, rest, item) AS (
    SELECT id, 0, community_links || char(10), '' FROM applications
    UNION ALL
    SELECT id, n + 1, substr(rest, instr(rest, char(10)) + 1),
           trim(substr(rest, 1, instr(rest, char(10)) - 1))
    FROM split WHERE rest <> ''
)
UPDATE applications SET community_links = (
    SELECT json_group_array(item) FROM (
        SELECT item FROM split WHERE split.id = applications.id AND item <> '' ORDER BY n));

WITH RECURSIVE split (id, n, rest, item) AS (
    SELECT id, 0, upstream_signals || char(10), '' FROM patches
    UNION ALL
    SELECT id, n + 1, substr(rest, instr(rest, char(10)) + 1),
           trim(substr(rest, 1, instr(rest, char(10)) - 1))
    FROM split WHERE rest <> ''
)
UPDATE patches SET upstream_signals = (
    SELECT json_group_array(item) FROM (
        SELECT item FROM split WHERE split.id = patches.id AND item <> '' ORDER BY n));

COMMIT;
PRAGMA foreign_keys = ON;
