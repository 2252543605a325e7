-- Orders imported from Yahoo (product.md §5, §6), their item lines and history, the import
-- state of each store (cursor, lease, stops) and a record of every import run.
-- Every id that something outside its row refers to is never reused (AUTOINCREMENT on SQLite).

create table yahoo_order (
    id integer primary key autoincrement,
    account_id integer not null references account (id) on delete cascade,
    store_id integer not null references store (id) on delete cascade,
    order_id text not null,
    version bigint not null,
    order_time text not null,
    last_update_time text,
    publication_time text,
    order_status bigint not null,
    is_seen boolean,
    fraud_hold_status bigint not null default 0,
    cancel_reason bigint,
    buyer_comments text not null default '',
    pay_status bigint,
    pay_method text not null default '',
    pay_method_name text not null default '',
    pay_date text,
    bill_last_name text not null default '',
    bill_first_name text not null default '',
    bill_last_name_kana text not null default '',
    bill_first_name_kana text not null default '',
    bill_zip_code text not null default '',
    bill_prefecture text not null default '',
    bill_city text not null default '',
    bill_address1 text not null default '',
    bill_address2 text not null default '',
    bill_phone text not null default '',
    bill_mail text not null default '',
    ship_status bigint,
    ship_method text not null default '',
    ship_method_name text not null default '',
    ship_request_date text,
    ship_request_time text not null default '',
    ship_company_code text not null default '',
    ship_invoice_number1 text not null default '',
    ship_invoice_number2 text not null default '',
    ship_date text,
    ship_last_name text not null default '',
    ship_first_name text not null default '',
    ship_last_name_kana text not null default '',
    ship_first_name_kana text not null default '',
    ship_zip_code text not null default '',
    ship_prefecture text not null default '',
    ship_city text not null default '',
    ship_address1 text not null default '',
    ship_address2 text not null default '',
    ship_phone text not null default '',
    pay_charge bigint not null default 0,
    ship_charge bigint not null default 0,
    gift_wrap_charge bigint not null default 0,
    discount bigint not null default 0,
    use_point bigint not null default 0,
    total_price bigint not null default 0,
    settle_amount bigint not null default 0,
    -- Ours, never overwritten by an import or re-import.
    internal_status text not null,
    note text not null default '',
    -- Fraud confirmed (1 → 3): cancel it. Cleared when the order is cancelled.
    cancel_flagged boolean not null default 0,
    -- When orderInfo last looked at this order (held orders are followed with it).
    checked_at text not null,
    imported_at text not null,
    updated_at text not null,
    unique (store_id, order_id)
);
-- The order list pages by (account, status tab, order time) and filters by store and hold state.
create index yahoo_order_account_time on yahoo_order (account_id, order_time desc, id desc);
create index yahoo_order_account_status_time on yahoo_order (account_id, internal_status, order_time desc, id desc);
create index yahoo_order_account_publication on yahoo_order (account_id, publication_time desc, id desc);
create index yahoo_order_store_hold on yahoo_order (store_id, fraud_hold_status);

create table order_item (
    order_pk integer not null references yahoo_order (id) on delete cascade,
    line_id integer not null,
    item_id text not null default '',
    title text not null default '',
    sub_code text not null default '',
    -- JSON array of [name, value] pairs.
    options text not null default '[]',
    unit_price integer not null default 0,
    quantity integer not null default 0,
    tax_ratio integer,
    product_id text not null default '',
    category_id integer,
    primary key (order_pk, line_id)
);

-- 履歴: every import, change and fraud-hold change of an order, with who did it.
create table order_history (
    id integer primary key autoincrement,
    account_id integer not null references account (id) on delete cascade,
    order_pk integer not null references yahoo_order (id) on delete cascade,
    actor_type text not null check (actor_type in ('user', 'job', 'support')),
    actor text not null default '',
    kind text not null,
    message text not null,
    created_at text not null
);
create index order_history_order on order_history (order_pk, id);

-- One row per store: where its import stands. Written by jobs only (the settings form never
-- touches it), so an old form cannot undo a cursor, a lease or a stop.
create table store_import (
    store_id integer primary key references store (id) on delete cascade,
    account_id integer not null references account (id) on delete cascade,
    -- Everything published up to this time is stored.
    cursor_at text,
    next_run_at text not null,
    -- The lease: which process runs this store's import, and until when it is its own.
    lease_owner text,
    lease_until text,
    -- An authentication failure that stopped automatic import (px-04102, invalid_grant, …);
    -- cleared when a call succeeds again or the merchant reconnects.
    blocked_reason text,
    blocked_at text,
    -- 緊急停止
    stopped_reason text,
    stopped_at text,
    -- Held orders (1) are re-checked with orderInfo at least this often.
    held_checked_at text,
    -- Calls made today (JST day) for the quota.
    calls_day text,
    calls_today integer not null default 0,
    updated_at text not null
);
create index store_import_due on store_import (next_run_at);

-- 自動受注取込 inbox: automatically imported orders wait there until someone takes them in.
alter table store add column auto_import_inbox boolean not null default 0;

alter table account add column stopped_reason text;
alter table account add column stopped_at text;

create table import_run (
    id integer primary key autoincrement,
    account_id integer not null references account (id) on delete cascade,
    store_id integer not null references store (id) on delete cascade,
    trigger_kind text not null check (trigger_kind in ('auto', 'manual', 'reimport', 'reconcile')),
    status text not null check (status in ('queued', 'running', 'done', 'failed', 'stopped', 'abandoned')),
    window_from text,
    window_to text,
    owner text not null,
    pages integer not null default 0,
    calls integer not null default 0,
    orders_seen integer not null default 0,
    orders_total integer not null default 0,
    orders_new integer not null default 0,
    orders_changed integer not null default 0,
    errors integer not null default 0,
    message text,
    started_at text not null,
    heartbeat_at text not null,
    finished_at text
);
create index import_run_store on import_run (store_id, id desc);
create index import_run_account on import_run (account_id, id desc);
