-- What the admin pages look things up by, so that a page costs what it shows and not the size
-- of the list (measured by benches/admin_pages.rs at 10,000 members and 100,000 audit entries).
-- The roster in the order of names, with what its filters read: a page of it, and every id a
-- search or status selects, in order, from the index alone, without reading or sorting every
-- member with its stored key.
CREATE INDEX members_roster_idx
    ON members (org_name, id, status, org_domain, security_alias, rep_name, rep_email);
-- When a member last received mail encrypted to its key, asked for the members a page shows,
-- and a member's held mail, released when it gives a new key; without it each question read
-- the whole outbox with its bodies.
CREATE INDEX outbox_member_idx ON outbox (member_id, encrypted, sent_at);
-- A release's delivery ledger counts and orders its lines from the index alone: the template
-- tells the mailing and the notices from other mail about the release, and the id is what a
-- page of the ledger is read by (PostgreSQL, unlike SQLite, keeps no row id in an index). The
-- columns it had stay first, so what used it still does.
DROP INDEX outbox_release_idx;
CREATE INDEX outbox_release_idx ON outbox (release_id, member_id, template, id);
-- The outbox page lists the templates in use, one index lookup each.
CREATE INDEX outbox_template_idx ON outbox (template);
-- The audit page filters by actor, action or subject, newest first, and lists the actions
-- recorded; without these each filter walked the whole log.
CREATE INDEX audit_log_actor_idx ON audit_log (actor, seq);
CREATE INDEX audit_log_action_idx ON audit_log (action, seq);
CREATE INDEX audit_log_subject_idx ON audit_log (subject, seq);
