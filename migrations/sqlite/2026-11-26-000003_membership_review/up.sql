-- Membership review: the organisation's primary domain (one open application per domain,
-- enforced by a partial unique index that both backends support), when quorum was reached,
-- and the title and weight of each stored check result.

ALTER TABLE applications ADD COLUMN primary_domain TEXT NOT NULL DEFAULT '';
ALTER TABLE applications ADD COLUMN recommended_at TIMESTAMP;
CREATE UNIQUE INDEX applications_one_open_per_domain ON applications (primary_domain)
    WHERE status IN ('awaiting-confirmation', 'in-review', 'recommended');

ALTER TABLE criteria_results ADD COLUMN title TEXT NOT NULL DEFAULT '';
ALTER TABLE criteria_results ADD COLUMN required BOOLEAN NOT NULL DEFAULT FALSE;
