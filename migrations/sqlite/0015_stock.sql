-- 在庫連動 (product.md §8): one quantity per account and item code (`item` or `item:subcode`),
-- shared by the account's stores; every change in a ledger with its cause; imported orders
-- decrement stock exactly once and a cancellation puts it back once; pushes to each store with
-- 在庫連動 on, collapsed per code to the latest value.

create table stock (
    account_id integer not null references account (id) on delete cascade,
    code text not null,
    quantity integer not null,
    updated_at text not null,
    primary key (account_id, code)
) without rowid;

-- Every change, with what caused it: order, cancel, manual, csv, pull.
create table stock_change (
    id integer primary key autoincrement,
    account_id integer not null references account (id) on delete cascade,
    code text not null,
    delta integer not null,
    quantity_after integer not null,
    cause text not null check (cause in ('order', 'cancel', 'manual', 'csv', 'pull')),
    order_pk integer,
    actor text not null default '',
    created_at text not null
);
create index stock_change_code on stock_change (account_id, code, id desc);

-- What the orders still owe the stock: written by triggers on yahoo_order (one place for every
-- writer), consumed by the stock job in the same transaction as the change. The primary key
-- makes each order decrement once and return once, however often it is imported or cancelled.
create table stock_order_event (
    order_pk integer not null references yahoo_order (id) on delete cascade,
    kind text not null check (kind in ('order', 'cancel')),
    account_id integer not null,
    done_at text,
    primary key (order_pk, kind)
) without rowid;
create index stock_order_event_pending on stock_order_event (account_id) where done_at is null;

create trigger yahoo_order_stock_insert after insert on yahoo_order
begin
    insert or ignore into stock_order_event (order_pk, kind, account_id) values (new.id, 'order', new.account_id);
    insert or ignore into stock_order_event (order_pk, kind, account_id)
    select new.id, 'cancel', new.account_id where new.internal_status = 'cancelled' or new.order_status = 4;
end;

create trigger yahoo_order_stock_cancel after update of internal_status, order_status on yahoo_order
when (new.internal_status = 'cancelled' or new.order_status = 4)
 and not (old.internal_status = 'cancelled' or old.order_status = 4)
begin
    insert or ignore into stock_order_event (order_pk, kind, account_id) values (new.id, 'cancel', new.account_id);
end;

-- Per store and code, the quantity Yahoo must be told: a newer change overwrites the pending
-- value (version counts the overwrites, so a push that raced with a change keeps the newer).
create table stock_push (
    store_id integer not null references store (id) on delete cascade,
    code text not null,
    account_id integer not null,
    quantity integer not null,
    version integer not null default 1,
    state text not null default 'pending' check (state in ('pending', 'failed')),
    attempts integer not null default 0,
    next_attempt_at text not null,
    error_code text,
    last_error text,
    updated_at text not null,
    primary key (store_id, code)
) without rowid;
create index stock_push_due on stock_push (next_attempt_at);

-- Which process pushes a store's stock now (the import's lease pattern).
create table stock_lease (
    store_id integer primary key references store (id) on delete cascade,
    owner text,
    until text
);

-- An uploaded stock CSV waiting for the merchant's confirmation: its good lines, as read.
create table stock_upload (
    id integer primary key autoincrement,
    account_id integer not null references account (id) on delete cascade,
    file_name text not null default '',
    -- JSON array of [code, quantity].
    lines text not null,
    created_at text not null,
    applied_at text
);
