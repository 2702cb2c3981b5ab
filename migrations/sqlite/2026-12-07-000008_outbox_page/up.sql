-- The outbox page filters by status, template, recipient and release and counts each status
-- under the other filters. This index answers those from the index alone, so the page stays
-- fast with tens of thousands of rows: on SQLite a row's status sits after its bodies, and
-- reading it from the table would read the bodies too.
CREATE INDEX outbox_page_idx ON outbox (status, template, recipient, release_id);
