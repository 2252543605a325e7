-- Orders a run could not fetch, whichever pass tried: listed on the run (with the reason, for
-- its page) and, when the run moved the store's cursor past them, kept on the store's import
-- row for the next run to fetch by ID (written in the cursor's own transaction). JSON arrays
-- of [order ID, reason].
alter table import_run add column failures text not null default '[]';
alter table store_import add column retry_orders text not null default '[]';

-- A 手動取込 a person confirmed while the store was under 緊急停止 (shown 手動（緊急停止中）).
alter table import_run add column while_stopped boolean not null default false;

-- One row that /healthz writes, so that it answers whether the database takes a write (a
-- read said ok while a full disk stopped every write).
create table health_probe (id integer primary key, probed_at text not null);
insert into health_probe (id, probed_at) values (1, '');
