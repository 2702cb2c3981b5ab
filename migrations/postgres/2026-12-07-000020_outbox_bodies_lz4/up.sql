-- A message's text and HTML are compressed with LZ4 instead of PostgreSQL's own pglz, where the
-- server has it (PostgreSQL 14 and later, built with LZ4 as the common packages are): every
-- queued message is compressed once, and pglz took most of the cost of storing it. Bodies
-- already stored keep the compression they were written with; a server without LZ4 keeps pglz.
DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_settings
               WHERE name = 'default_toast_compression' AND 'lz4' = ANY (enumvals)) THEN
        EXECUTE 'ALTER TABLE outbox_bodies ALTER COLUMN body_text SET COMPRESSION lz4, '
             || 'ALTER COLUMN body_html SET COMPRESSION lz4';
    END IF;
END
$$;
