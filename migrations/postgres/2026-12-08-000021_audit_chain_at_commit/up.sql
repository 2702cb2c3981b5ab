-- An audit entry is linked into the chain when its transaction commits, not when it is
-- written. Before, the writer took the chain's lock in the middle of its transaction and held
-- it over three more round trips to the client and the commit; every writer queued behind
-- that. Now the entry is written unlinked (a negative placeholder `seq`, a placeholder `hash`,
-- and `chain_tail`: its own fields as canonical JSON, made by the service) and a deferred
-- trigger links it during COMMIT, so the lock is held only for work inside the server.
--
-- The hash is the one `edl audit verify` checks: SHA-256 over the JSON array
-- [prev_hash, seq, occurred_at, actor, action, subject, details], as compact JSON. The service
-- writes the text after `seq,` (`chain_tail`: the last five elements and the closing bracket);
-- the trigger puts the head's hash and the next `seq` in front of it.
ALTER TABLE audit_log ADD COLUMN chain_tail TEXT;

CREATE SEQUENCE audit_log_unlinked;

CREATE FUNCTION audit_log_link() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    head_seq BIGINT;
    head_hash TEXT;
BEGIN
    -- One linker at a time, in commit order; released when this transaction ends. Each
    -- statement below sees what committed before the lock was granted.
    PERFORM pg_advisory_xact_lock(237165001);
    SELECT seq, hash INTO head_seq, head_hash
        FROM audit_log WHERE seq > 0 ORDER BY seq DESC LIMIT 1;
    IF NOT FOUND THEN
        head_seq := 0;
        head_hash := repeat('0', 64);  -- audit::GENESIS
    END IF;
    UPDATE audit_log
        SET seq = head_seq + 1,
            prev_hash = head_hash,
            hash = encode(sha256(convert_to(
                '["' || head_hash || '",' || (head_seq + 1)::text || ',' || chain_tail,
                'UTF8')), 'hex'),
            chain_tail = NULL
        WHERE id = NEW.id;
    RETURN NULL;
END
$$;

CREATE CONSTRAINT TRIGGER audit_log_link AFTER INSERT ON audit_log
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (NEW.chain_tail IS NOT NULL)
    EXECUTE FUNCTION audit_log_link();
