ALTER TABLE outbox ADD COLUMN body_text TEXT NOT NULL DEFAULT '',
    ADD COLUMN body_html TEXT NOT NULL DEFAULT '';
UPDATE outbox SET body_text = b.body_text, body_html = b.body_html
    FROM outbox_bodies b WHERE b.outbox_id = outbox.id;
DROP TABLE outbox_bodies;
