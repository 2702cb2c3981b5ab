DROP INDEX advisories_release_idx;
