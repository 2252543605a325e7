-- The shipping day (issue 33): per-store carrier settings and the ShipMethod/PayMethod → label
-- mapping, shipments (parcels) with their tracking numbers, the label files exported (kept for
-- downloading again) and the issued-data files uploaded (kept per row, so that applying one is
-- resumable and applying it twice changes nothing).

create table store_shipping (
    store_id integer primary key references store (id) on delete cascade,
    account_id integer not null references account (id) on delete cascade,
    sender_name text not null default '',
    sender_kana text not null default '',
    sender_phone text not null default '',
    sender_zip text not null default '',
    sender_address text not null default '',
    sender_building text not null default '',
    b2_customer_code text not null default '',
    b2_class_code text not null default '',
    b2_freight_no text not null default '01',
    handling1 text not null default '',
    handling2 text not null default '',
    item_name text not null default '',
    ehiden_customer_code text not null default '',
    ehiden_cool_codes text not null default '001,002,003',
    ehiden_date_format text not null default 'compact',
    -- Pay methods settled before shipping (unpaid ones wait at 入金待ち), comma-separated.
    prepay_methods text not null,
    -- The fallback label when no mapping row matches.
    default_format text not null default 'b2',
    default_service text not null default '0',
    updated_at text not null
);

-- First matching row wins (by position); an empty pattern matches anything.
create table ship_mapping (
    id integer primary key autoincrement,
    account_id integer not null references account (id) on delete cascade,
    store_id integer not null references store (id) on delete cascade,
    position bigint not null,
    ship_method text not null default '',
    pay_method text not null default '',
    format text not null check (format in ('b2', 'ehiden', 'clickpost')),
    service text not null default '0',
    cool text not null default 'normal' check (cool in ('normal', 'chilled', 'frozen')),
    unique (store_id, position)
);

create table label_export (
    id integer primary key autoincrement,
    account_id integer not null references account (id) on delete cascade,
    format text not null,
    file_name text not null,
    content_type text not null,
    file_hash text not null,
    body blob not null,
    rows bigint not null,
    reexport boolean not null default false,
    created_by text not null,
    created_at text not null
);
create index label_export_account on label_export (account_id, created_at);

create table shipment (
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
    last_export_id integer references label_export (id),
    exported_at text,
    created_at text not null,
    updated_at text not null,
    unique (order_pk, parcel_no)
);
create index shipment_account on shipment (account_id, store_id);

create table label_export_shipment (
    export_id integer not null references label_export (id) on delete cascade,
    shipment_id integer not null references shipment (id) on delete cascade,
    primary key (export_id, shipment_id)
);

create table tracking_upload (
    id integer primary key autoincrement,
    account_id integer not null references account (id) on delete cascade,
    file_hash text not null,
    file_name text not null,
    format text not null,
    state text not null check (state in ('previewed', 'applied')),
    rows bigint not null,
    applied_rows bigint not null default 0,
    created_by text not null,
    created_at text not null,
    applied_at text,
    unique (account_id, file_hash)
);

-- One row of an uploaded file as matched at preview; `applied` is set in the same transaction
-- that writes its tracking number and queues its pushes.
create table tracking_upload_row (
    upload_id integer not null references tracking_upload (id) on delete cascade,
    line_no bigint not null,
    management_no text not null default '',
    tracking_number text not null default '',
    shipment_id integer references shipment (id) on delete set null,
    order_pk integer references yahoo_order (id) on delete set null,
    outcome text not null,
    message text not null default '',
    applied boolean not null default false,
    primary key (upload_id, line_no)
);

alter table order_push add column ship_url text not null default '';
