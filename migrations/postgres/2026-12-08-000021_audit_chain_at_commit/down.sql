DROP TRIGGER audit_log_link ON audit_log;
DROP FUNCTION audit_log_link();
DROP SEQUENCE audit_log_unlinked;
ALTER TABLE audit_log DROP COLUMN chain_tail;
