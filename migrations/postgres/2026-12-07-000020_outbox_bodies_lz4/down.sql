DO $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_settings WHERE name = 'default_toast_compression') THEN
        EXECUTE 'ALTER TABLE outbox_bodies ALTER COLUMN body_text SET COMPRESSION DEFAULT, '
             || 'ALTER COLUMN body_html SET COMPRESSION DEFAULT';
    END IF;
END
$$;
