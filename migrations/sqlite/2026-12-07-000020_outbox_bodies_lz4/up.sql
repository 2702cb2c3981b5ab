-- SQLite does not compress stored text: nothing to change (the PostgreSQL tree moves the
-- outbox bodies to LZ4 compression in this step).
SELECT 1;
