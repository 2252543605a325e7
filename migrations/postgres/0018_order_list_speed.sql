-- The fraud-hold queue of one store (the list's store + 不正保留 filter) pages through its own
-- index instead of testing every order of the store, or every held order of the account, until
-- a page is full (`bench orders`: the slowest list page before this).
create index yahoo_order_store_held on yahoo_order (store_id, order_time desc, id desc) where fraud_hold_status in (1, 3);

-- A search reads its matching terms with each order's time, sorts those and reads only the
-- page's orders (`db::order_list::search_page`), instead of reading every matching order to sort
-- them: a name matching 600 orders read 600 orders for a page of 50.
alter table order_search add column order_time timestamptz;
update order_search s set order_time = o.order_time from yahoo_order o where o.id = s.order_pk;

create or replace function order_search_apply() returns trigger language plpgsql as $$
begin
    if tg_op = 'UPDATE' then
        delete from order_search s using new_rows n join old_rows o on o.id = n.id
        where s.order_pk = n.id
          and row(o.order_id, o.order_time, o.bill_phone, o.ship_phone, o.bill_mail, o.bill_last_name, o.bill_first_name, o.bill_last_name_kana, o.bill_first_name_kana, o.ship_last_name, o.ship_first_name, o.ship_last_name_kana, o.ship_first_name_kana) is distinct from row(n.order_id, n.order_time, n.bill_phone, n.ship_phone, n.bill_mail, n.bill_last_name, n.bill_first_name, n.bill_last_name_kana, n.bill_first_name_kana, n.ship_last_name, n.ship_first_name, n.ship_last_name_kana, n.ship_first_name_kana);
        insert into order_search (account_id, term, order_pk, order_time)
        select n.account_id, t, n.id, n.order_time from new_rows n join old_rows o on o.id = n.id
        cross join lateral order_search_terms(n.order_id, n.bill_phone, n.ship_phone, n.bill_mail, n.bill_last_name, n.bill_first_name, n.bill_last_name_kana, n.bill_first_name_kana, n.ship_last_name, n.ship_first_name, n.ship_last_name_kana, n.ship_first_name_kana) t
        where row(o.order_id, o.order_time, o.bill_phone, o.ship_phone, o.bill_mail, o.bill_last_name, o.bill_first_name, o.bill_last_name_kana, o.bill_first_name_kana, o.ship_last_name, o.ship_first_name, o.ship_last_name_kana, o.ship_first_name_kana) is distinct from row(n.order_id, n.order_time, n.bill_phone, n.ship_phone, n.bill_mail, n.bill_last_name, n.bill_first_name, n.bill_last_name_kana, n.bill_first_name_kana, n.ship_last_name, n.ship_first_name, n.ship_last_name_kana, n.ship_first_name_kana)
        on conflict do nothing;
    else
        insert into order_search (account_id, term, order_pk, order_time)
        select n.account_id, t, n.id, n.order_time from new_rows n
        cross join lateral order_search_terms(n.order_id, n.bill_phone, n.ship_phone, n.bill_mail, n.bill_last_name, n.bill_first_name, n.bill_last_name_kana, n.bill_first_name_kana, n.ship_last_name, n.ship_first_name, n.ship_last_name_kana, n.ship_first_name_kana) t
        on conflict do nothing;
    end if;
    return null;
end $$;

-- Held orders (FraudHoldStatus 1 and 3) per store, kept by triggers like the tab counts: the
-- list's 「不正保留の注文が…件」 and the dashboard read a few rows instead of counting the
-- account's held orders on every page.
create table order_hold_count (
    account_id bigint not null references account (id) on delete cascade,
    store_id bigint not null references store (id) on delete cascade,
    n bigint not null default 0,
    primary key (account_id, store_id)
);

insert into order_hold_count (account_id, store_id, n)
select account_id, store_id, count(*) from yahoo_order where fraud_hold_status in (1, 3) group by account_id, store_id;

-- Adds the new rows' held orders and removes the old rows', in a fixed order of keys so that
-- two transactions never wait on each other's counters in opposite orders.
create function order_hold_count_apply() returns trigger language plpgsql as $$
begin
    if tg_op = 'INSERT' then
        insert into order_hold_count as c (account_id, store_id, n)
        select account_id, store_id, count(*) from new_rows where fraud_hold_status in (1, 3)
        group by account_id, store_id order by account_id, store_id
        on conflict (account_id, store_id) do update set n = c.n + excluded.n;
    elsif tg_op = 'UPDATE' then
        insert into order_hold_count as c (account_id, store_id, n)
        select account_id, store_id, sum(d) from (
            select o.account_id, o.store_id, -1 as d from old_rows o join new_rows n on n.id = o.id
            where o.fraud_hold_status in (1, 3)
              and (n.fraud_hold_status not in (1, 3) or n.store_id <> o.store_id)
            union all
            select n.account_id, n.store_id, 1 from old_rows o join new_rows n on n.id = o.id
            where n.fraud_hold_status in (1, 3)
              and (o.fraud_hold_status not in (1, 3) or n.store_id <> o.store_id)
        ) d
        group by account_id, store_id having sum(d) <> 0
        order by account_id, store_id
        on conflict (account_id, store_id) do update set n = c.n + excluded.n;
    else
        update order_hold_count c set n = c.n - d.k
        from (select account_id, store_id, count(*) as k from old_rows where fraud_hold_status in (1, 3)
              group by account_id, store_id) d
        where c.account_id = d.account_id and c.store_id = d.store_id;
    end if;
    return null;
end $$;

create trigger yahoo_order_hold_insert after insert on yahoo_order
    referencing new table as new_rows for each statement execute function order_hold_count_apply();
create trigger yahoo_order_hold_update after update on yahoo_order
    referencing old table as old_rows new table as new_rows for each statement execute function order_hold_count_apply();
create trigger yahoo_order_hold_delete after delete on yahoo_order
    referencing old table as old_rows for each statement execute function order_hold_count_apply();
