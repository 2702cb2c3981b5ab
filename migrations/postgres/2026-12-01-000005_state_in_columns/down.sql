-- Back to text lists, attachment lists, the held-back prefix and approval columns on releases.

UPDATE applications SET
    org_domains = COALESCE((SELECT string_agg(x, E'\n') FROM json_array_elements_text(org_domains::json) AS x), ''),
    track_record = COALESCE((SELECT string_agg(x, E'\n') FROM json_array_elements_text(track_record::json) AS x), ''),
    community_links = COALESCE((SELECT string_agg(x, E'\n') FROM json_array_elements_text(community_links::json) AS x), '');
UPDATE patches SET upstream_signals =
    COALESCE((SELECT string_agg(x, E'\n') FROM json_array_elements_text(upstream_signals::json) AS x), '');

ALTER TABLE outbox ADD COLUMN attachments TEXT NOT NULL DEFAULT '';
UPDATE outbox SET attachments = COALESCE(
    (SELECT string_agg(patch_id::text, ',') FROM outbox_attachments a WHERE a.outbox_id = outbox.id), '');
DROP TABLE outbox_attachments;
UPDATE outbox SET status = 'failed', last_error = 'not sent: ' || COALESCE(held_reason, '')
WHERE status = 'held';
ALTER TABLE outbox DROP COLUMN revision;
ALTER TABLE outbox DROP COLUMN held_reason;
ALTER TABLE outbox DROP CONSTRAINT outbox_status_check;
ALTER TABLE outbox ADD CONSTRAINT outbox_status_check
    CHECK (status IN ('queued', 'sending', 'sent', 'failed'));

UPDATE releases SET release_lines = COALESCE(
    (SELECT string_agg(x, ', ') FROM json_array_elements_text(release_lines::json) AS x), '');
ALTER TABLE releases ADD COLUMN status TEXT NOT NULL DEFAULT 'planned';
ALTER TABLE releases ADD COLUMN approved_by BIGINT REFERENCES accounts (id);
ALTER TABLE releases ADD COLUMN approved_at TIMESTAMP;
ALTER TABLE releases ADD COLUMN approved_revision INTEGER;
UPDATE releases r SET
    approved_revision = v.revision, approved_by = v.approved_by, approved_at = v.approved_at
FROM (
    SELECT DISTINCT ON (release_id) release_id, revision, approved_by, approved_at
    FROM release_revisions WHERE approved_at IS NOT NULL
    ORDER BY release_id, revision DESC
) AS v
WHERE v.release_id = r.id;
DROP TABLE release_changes;
DROP TABLE release_revisions;
