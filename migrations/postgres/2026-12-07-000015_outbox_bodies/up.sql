-- A message's text and HTML live in a table of their own: they are written once, when the mail
-- is queued, and read when it is sent, while the outbox row itself changes at every claim,
-- renewal and outcome, and each change writes a new version of the row.
CREATE TABLE outbox_bodies (
    outbox_id BIGINT PRIMARY KEY REFERENCES outbox (id) ON DELETE CASCADE,
    body_text TEXT NOT NULL,
    body_html TEXT NOT NULL
);
INSERT INTO outbox_bodies (outbox_id, body_text, body_html)
    SELECT id, body_text, body_html FROM outbox;
ALTER TABLE outbox DROP COLUMN body_text, DROP COLUMN body_html;
