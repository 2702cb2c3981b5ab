DROP INDEX outbox_lease_idx;
DROP INDEX outbox_due_idx;
CREATE INDEX outbox_due_idx ON outbox (status, next_attempt_at);
