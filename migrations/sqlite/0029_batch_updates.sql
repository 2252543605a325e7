-- When a shipment was exported is what label_export_shipment records (which export, and the
-- export's time), so the shipment no longer keeps a copy: writing the copy was a second write
-- of every exported row, the largest part of recording a 10,000-row export (`bench shipping`).
-- Shipments are read by order or by id; the only read by account is クリックポスト's open
-- parcels, which gets its own index instead of the account's.
--
-- SQLite's table rebuild (see 0004): create, copy, drop, rename; foreign keys are off while
-- migrations run.
create table shipment_new (
    id integer primary key autoincrement,
    account_id integer not null references account (id) on delete cascade,
    store_id integer not null references store (id) on delete cascade,
    order_pk integer not null references yahoo_order (id) on delete cascade,
    parcel_no bigint not null default 1,
    format text not null,
    service text not null default '0',
    cool text not null default 'normal',
    packages bigint not null default 1,
    item_name text not null default '',
    tracking_number text,
    tracking_set_at text,
    tracking_set_by text,
    created_at text not null,
    updated_at text not null,
    unique (order_pk, parcel_no)
);
insert into shipment_new (id, account_id, store_id, order_pk, parcel_no, format, service, cool, packages, item_name,
        tracking_number, tracking_set_at, tracking_set_by, created_at, updated_at)
    select id, account_id, store_id, order_pk, parcel_no, format, service, cool, packages, item_name,
        tracking_number, tracking_set_at, tracking_set_by, created_at, updated_at from shipment;
drop table shipment;
alter table shipment_new rename to shipment;
create index shipment_open on shipment (account_id, format) where tracking_number is null;

alter table label_export_shipment add column exported_at text;
update label_export_shipment set exported_at = (select e.created_at from label_export e where e.id = export_id);
create index label_export_shipment_by_shipment on label_export_shipment (shipment_id, exported_at);

-- 出荷後の自動完了 (issue 33): a paid order is completed at Yahoo this many days after its
-- first tracking number; 0 (the default) leaves it at Yahoo's 注文完了待ち.
alter table store_shipping add column complete_after_days bigint not null default 0;
