ALTER TABLE outbox ADD COLUMN body_text TEXT NOT NULL DEFAULT '';
ALTER TABLE outbox ADD COLUMN body_html TEXT NOT NULL DEFAULT '';
UPDATE outbox SET
    body_text = (SELECT body_text FROM outbox_bodies WHERE outbox_id = outbox.id),
    body_html = (SELECT body_html FROM outbox_bodies WHERE outbox_id = outbox.id)
    WHERE id IN (SELECT outbox_id FROM outbox_bodies);
DROP TABLE outbox_bodies;
