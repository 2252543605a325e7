-- Support staff looking at one account's data (product.md §9): a written reason, one hour,
-- buyers' personal data masked unless the reason needs it. Rows are kept as the record.
create table support_access (
    id integer primary key autoincrement,
    account_id integer not null references account (id) on delete cascade,
    staff_id integer not null references support_staff (id) on delete cascade,
    staff_name text not null,
    reason text not null check (length(reason) > 0),
    needs_personal integer not null default 0,
    created_at text not null,
    expires_at text not null
);
create index support_access_account on support_access (account_id, id);

-- The support view counts each store's runs of the last 24 hours.
create index import_run_store_started on import_run (store_id, started_at);
