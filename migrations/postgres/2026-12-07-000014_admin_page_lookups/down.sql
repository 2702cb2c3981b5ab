DROP INDEX audit_log_subject_idx;
DROP INDEX audit_log_action_idx;
DROP INDEX audit_log_actor_idx;
DROP INDEX outbox_template_idx;
DROP INDEX outbox_release_idx;
CREATE INDEX outbox_release_idx ON outbox (release_id, member_id);
DROP INDEX outbox_member_idx;
DROP INDEX members_roster_idx;
