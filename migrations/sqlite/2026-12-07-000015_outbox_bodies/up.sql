-- A message's text and HTML live in a table of their own: they are written once, when the mail
-- is queued, and read when it is sent, while the outbox row itself changes at every claim,
-- renewal and outcome. SQLite rewrites a whole row on any update, so with the bodies inside,
-- every status change copied some 13 KB of an embargoed mail.
CREATE TABLE outbox_bodies (
    outbox_id INTEGER PRIMARY KEY NOT NULL REFERENCES outbox (id) ON DELETE CASCADE,
    body_text TEXT NOT NULL,
    body_html TEXT NOT NULL
);
INSERT INTO outbox_bodies (outbox_id, body_text, body_html)
    SELECT id, body_text, body_html FROM outbox;
ALTER TABLE outbox DROP COLUMN body_text;
ALTER TABLE outbox DROP COLUMN body_html;
