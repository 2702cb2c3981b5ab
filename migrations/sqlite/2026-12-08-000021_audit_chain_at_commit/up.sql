-- SQLite links each audit entry as it is written, inside a transaction that already holds the
-- only write lock: nothing to change (the PostgreSQL tree links entries at commit from this
-- step on).
SELECT 1;
