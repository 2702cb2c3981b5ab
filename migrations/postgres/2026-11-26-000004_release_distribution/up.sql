-- Release distribution: which revision of a release was approved (a change after approval
-- makes a new revision that needs approval again), a 0-day's member notice, the recorded
-- exception for non-security patches, cancellation; why a patch looks like an upstream's;
-- which release, member and patch attachments an outbox row carries; members' receipts.

ALTER TABLE releases ADD COLUMN approved_revision INTEGER;
ALTER TABLE releases ADD COLUMN notice_hours INTEGER NOT NULL DEFAULT 0;
ALTER TABLE releases ADD COLUMN non_security_exception TEXT;
ALTER TABLE releases ADD COLUMN cancelled_at TIMESTAMP;
ALTER TABLE releases ADD COLUMN cancel_reason TEXT;

ALTER TABLE patches ADD COLUMN upstream_signals TEXT NOT NULL DEFAULT '';

ALTER TABLE outbox ADD COLUMN release_id BIGINT REFERENCES releases (id);
ALTER TABLE outbox ADD COLUMN member_id BIGINT REFERENCES members (id);
ALTER TABLE outbox ADD COLUMN attachments TEXT NOT NULL DEFAULT '';
CREATE INDEX outbox_release_idx ON outbox (release_id, member_id);

CREATE TABLE release_receipts (
    release_id BIGINT NOT NULL REFERENCES releases (id) ON DELETE CASCADE,
    member_id BIGINT NOT NULL REFERENCES members (id),
    revision INTEGER NOT NULL,
    acknowledged_at TIMESTAMP NOT NULL,
    PRIMARY KEY (release_id, member_id, revision)
);
