-- Every page, feed and mailing reads a release's advisories by its id; without an index each
-- read scanned the whole table.
CREATE INDEX advisories_release_idx ON advisories (release_id);
