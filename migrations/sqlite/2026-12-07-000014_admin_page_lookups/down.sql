DROP INDEX outbox_member_idx;
DROP INDEX members_roster_idx;
