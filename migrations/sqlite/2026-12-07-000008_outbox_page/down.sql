DROP INDEX outbox_page_idx;
