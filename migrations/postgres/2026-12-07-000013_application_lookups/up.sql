-- Whether an application still has a live confirmation link is asked per application (when a
-- new application takes a domain, and by the hourly expiry); without an index each question
-- read every link ever mailed.
CREATE INDEX confirmation_tokens_application_idx ON confirmation_tokens (application_id);
-- A new application looks up the applications on its domains whatever their status; the
-- partial unique index covers open ones only, and a prepared query cannot use it.
CREATE INDEX applications_primary_domain_idx ON applications (primary_domain);
