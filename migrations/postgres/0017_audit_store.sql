-- The store an audit entry concerns, so the audit page can filter by store ID rather than by
-- the store's name in the detail text (names change, and one name can begin another). No
-- foreign key: entries outlive their store. Entries written before this column stay null and
-- match no store filter.
alter table audit_log add column store_id bigint;
create index audit_log_account_store on audit_log (account_id, store_id, id);
