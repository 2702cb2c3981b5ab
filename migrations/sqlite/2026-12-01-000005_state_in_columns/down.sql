-- Back to text lists, attachment lists, the held-back prefix and approval columns on releases.

PRAGMA foreign_keys = OFF;
BEGIN IMMEDIATE;

UPDATE applications SET
    org_domains = COALESCE((SELECT group_concat(value, char(10)) FROM json_each(applications.org_domains)), ''),
    track_record = COALESCE((SELECT group_concat(value, char(10)) FROM json_each(applications.track_record)), ''),
    community_links = COALESCE((SELECT group_concat(value, char(10)) FROM json_each(applications.community_links)), '');
UPDATE patches SET upstream_signals =
    COALESCE((SELECT group_concat(value, char(10)) FROM json_each(patches.upstream_signals)), '');

CREATE TABLE outbox_old (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    template TEXT NOT NULL,
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,
    body_text TEXT NOT NULL,
    body_html TEXT NOT NULL,
    dedupe_key TEXT UNIQUE,
    status TEXT NOT NULL CHECK (status IN ('queued', 'sending', 'sent', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMP NOT NULL,
    lease_until TIMESTAMP,
    leased_by TEXT,
    last_error TEXT,
    message_id TEXT NOT NULL UNIQUE,
    sent_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    release_id BIGINT REFERENCES releases (id),
    member_id BIGINT REFERENCES members (id),
    attachments TEXT NOT NULL DEFAULT ''
);
INSERT INTO outbox_old (id, template, recipient, subject, body_text, body_html, dedupe_key,
    status, attempts, next_attempt_at, lease_until, leased_by, last_error, message_id, sent_at,
    created_at, updated_at, release_id, member_id, attachments)
SELECT id, template, recipient, subject, body_text, body_html, dedupe_key,
    CASE WHEN status = 'held' THEN 'failed' ELSE status END,
    attempts, next_attempt_at, lease_until, leased_by,
    CASE WHEN status = 'held' THEN 'not sent: ' || COALESCE(held_reason, '') ELSE last_error END,
    message_id, sent_at, created_at, updated_at, release_id, member_id,
    COALESCE((SELECT group_concat(patch_id, ',') FROM outbox_attachments a WHERE a.outbox_id = outbox.id), '')
FROM outbox;
DROP TABLE outbox_attachments;
DROP TABLE outbox;
ALTER TABLE outbox_old RENAME TO outbox;
CREATE INDEX outbox_due_idx ON outbox (status, next_attempt_at);
CREATE INDEX outbox_release_idx ON outbox (release_id, member_id);

CREATE TABLE releases_old (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL CHECK (kind IN ('patch-tuesday', 'zero-day', 'third-party')),
    title TEXT NOT NULL,
    status TEXT NOT NULL,
    revision INTEGER NOT NULL DEFAULT 1,
    release_at TIMESTAMP NOT NULL,
    disclosure_at TIMESTAMP,
    announce_at TIMESTAMP,
    upstream_id BIGINT REFERENCES upstreams (id),
    release_lines TEXT NOT NULL,
    members_may_deploy BOOLEAN NOT NULL DEFAULT FALSE,
    notes TEXT NOT NULL DEFAULT '',
    created_by BIGINT NOT NULL REFERENCES accounts (id),
    approved_by BIGINT REFERENCES accounts (id),
    approved_at TIMESTAMP,
    disclosed_at TIMESTAMP,
    announced_at TIMESTAMP,
    published_at TIMESTAMP,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL,
    approved_revision INTEGER,
    notice_hours INTEGER NOT NULL DEFAULT 0,
    non_security_exception TEXT,
    cancelled_at TIMESTAMP,
    cancel_reason TEXT
);
INSERT INTO releases_old (id, kind, title, status, revision, release_at, disclosure_at,
    announce_at, upstream_id, release_lines, members_may_deploy, notes, created_by,
    approved_by, approved_at, disclosed_at, announced_at, published_at, created_at,
    updated_at, approved_revision, notice_hours, non_security_exception, cancelled_at,
    cancel_reason)
SELECT r.id, r.kind, r.title,
    CASE WHEN r.cancelled_at IS NOT NULL THEN 'cancelled'
         WHEN r.published_at IS NOT NULL THEN 'published'
         ELSE 'planned' END,
    r.revision, r.release_at, r.disclosure_at, r.announce_at, r.upstream_id,
    COALESCE((SELECT group_concat(value, ', ') FROM json_each(r.release_lines)), ''),
    r.members_may_deploy, r.notes, r.created_by,
    (SELECT approved_by FROM release_revisions v WHERE v.release_id = r.id AND v.approved_at IS NOT NULL ORDER BY v.revision DESC LIMIT 1),
    (SELECT approved_at FROM release_revisions v WHERE v.release_id = r.id AND v.approved_at IS NOT NULL ORDER BY v.revision DESC LIMIT 1),
    r.disclosed_at, r.announced_at, r.published_at, r.created_at, r.updated_at,
    (SELECT revision FROM release_revisions v WHERE v.release_id = r.id AND v.approved_at IS NOT NULL ORDER BY v.revision DESC LIMIT 1),
    r.notice_hours, r.non_security_exception, r.cancelled_at, r.cancel_reason
FROM releases r;
DROP TABLE release_changes;
DROP TABLE release_revisions;
DROP TABLE releases;
ALTER TABLE releases_old RENAME TO releases;
CREATE INDEX releases_release_at_idx ON releases (release_at);

COMMIT;
PRAGMA foreign_keys = ON;
