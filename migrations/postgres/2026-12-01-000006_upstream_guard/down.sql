DROP TABLE patch_reclassifications;
DROP INDEX patches_sha256_idx;
DROP TABLE patch_hunks;
DROP TABLE patch_files;
DROP TABLE project_paths;
DROP TABLE upstream_files;
