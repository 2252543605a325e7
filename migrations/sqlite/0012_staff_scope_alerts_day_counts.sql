-- Issue 10, the dashboard's part: staff limited to some stores with buyers' personal data masked
-- (product.md §1, §6), alerts when a held order is released or confirmed as fraud, and orders
-- per JST day per store for the dashboard chart. The alerts and the day counts are kept by
-- triggers on `yahoo_order`, so every writer (import, re-import, anything added later) keeps
-- them without code of its own.

-- Which stores a user may work: all of them (the default), or the stores listed in
-- `user_store` (possibly none). Owners always work every store.
alter table app_user add column all_stores boolean not null default 1;
-- 「お客様の個人情報を伏せる」: buyers' names, addresses, phone numbers and emails are masked.
alter table app_user add column mask_personal boolean not null default 0;

create table user_store (
    user_id integer not null references app_user (id) on delete cascade,
    store_id integer not null references store (id) on delete cascade,
    account_id integer not null references account (id) on delete cascade,
    primary key (user_id, store_id)
);
create index user_store_store on user_store (store_id);

-- A held order's outcome (FraudHoldStatus 1 → 2 保留解除, 1 → 3 不正確定), shown on the
-- dashboard until someone acknowledges it. One alert per order and outcome: importing the
-- order again does not raise it again.
create table fraud_hold_alert (
    id integer primary key autoincrement,
    account_id integer not null references account (id) on delete cascade,
    store_id integer not null references store (id) on delete cascade,
    order_pk integer not null references yahoo_order (id) on delete cascade,
    fraud_hold_status integer not null check (fraud_hold_status in (2, 3)),
    created_at text not null,
    acknowledged_at text,
    -- Who acknowledged it (the user's email, as the audit log names people).
    acknowledged_by text,
    unique (order_pk, fraud_hold_status)
);
create index fraud_hold_alert_open on fraud_hold_alert (account_id, id) where acknowledged_at is null;

create trigger yahoo_order_fraud_hold_alert after update of fraud_hold_status on yahoo_order
when old.fraud_hold_status = 1 and new.fraud_hold_status in (2, 3)
begin
    insert into fraud_hold_alert (account_id, store_id, order_pk, fraud_hold_status, created_at)
    values (new.account_id, new.store_id, new.id, new.fraud_hold_status, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
    on conflict (order_pk, fraud_hold_status) do nothing;
end;

-- Orders per JST day (of the order time) per store: the chart reads 30 rows per store instead
-- of counting the orders themselves.
create table order_day_count (
    account_id integer not null references account (id) on delete cascade,
    day text not null,
    store_id integer not null references store (id) on delete cascade,
    n integer not null,
    primary key (account_id, day, store_id)
);

insert into order_day_count (account_id, day, store_id, n)
    select account_id, date(order_time, '+9 hours'), store_id, count(*) from yahoo_order
    where true group by 1, 2, 3;

create trigger yahoo_order_day_count_insert after insert on yahoo_order
begin
    insert into order_day_count (account_id, day, store_id, n)
    values (new.account_id, date(new.order_time, '+9 hours'), new.store_id, 1)
    on conflict (account_id, day, store_id) do update set n = n + 1;
end;

-- A plain update, not an upsert: when a store or account is deleted its counts may already be
-- gone, and nothing must be written for it then.
create trigger yahoo_order_day_count_delete after delete on yahoo_order
begin
    update order_day_count set n = n - 1
    where account_id = old.account_id and day = date(old.order_time, '+9 hours') and store_id = old.store_id;
end;

create trigger yahoo_order_day_count_move after update of order_time, store_id, account_id on yahoo_order
when old.order_time is not new.order_time or old.store_id <> new.store_id or old.account_id <> new.account_id
begin
    update order_day_count set n = n - 1
    where account_id = old.account_id and day = date(old.order_time, '+9 hours') and store_id = old.store_id;
    insert into order_day_count (account_id, day, store_id, n)
    values (new.account_id, date(new.order_time, '+9 hours'), new.store_id, 1)
    on conflict (account_id, day, store_id) do update set n = n + 1;
end;
