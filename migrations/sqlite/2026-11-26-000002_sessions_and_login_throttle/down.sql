DROP TABLE login_throttle;
DROP TABLE sessions;
ALTER TABLE accounts DROP COLUMN must_change_password;
ALTER TABLE accounts ADD COLUMN failed_logins INTEGER NOT NULL DEFAULT 0;
ALTER TABLE accounts ADD COLUMN locked_until TIMESTAMP;
