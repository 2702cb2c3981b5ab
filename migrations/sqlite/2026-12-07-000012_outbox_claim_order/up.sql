-- A worker claims queued rows in the order they fell due, and rows whose lease ran out in the
-- order it ran out. Each index serves one of those queries in its order, so a claim reads a
-- batch's worth of index entries instead of sorting every due row.
DROP INDEX outbox_due_idx;
CREATE INDEX outbox_due_idx ON outbox (status, next_attempt_at, id);
CREATE INDEX outbox_lease_idx ON outbox (status, lease_until, id);
