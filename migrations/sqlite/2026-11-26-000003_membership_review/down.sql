ALTER TABLE criteria_results DROP COLUMN required;
ALTER TABLE criteria_results DROP COLUMN title;
DROP INDEX applications_one_open_per_domain;
ALTER TABLE applications DROP COLUMN recommended_at;
ALTER TABLE applications DROP COLUMN primary_domain;
