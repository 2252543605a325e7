-- The order desk (product.md §6): tab counts kept by triggers so that no request counts a
-- million rows; search terms kept by triggers so that a search is an index range, not a scan;
-- indexes for the store filter and the fraud-hold queue. Triggers keep every writer (import,
-- re-import, status changes, anything later) right without code of its own. They are
-- statement-level with transition tables, so a batch of a thousand orders costs one pass.

create table order_status_count (
    account_id bigint not null references account (id) on delete cascade,
    store_id bigint not null references store (id) on delete cascade,
    internal_status text not null,
    n bigint not null default 0,
    primary key (account_id, store_id, internal_status)
);

insert into order_status_count (account_id, store_id, internal_status, n)
select account_id, store_id, internal_status, count(*) from yahoo_order group by account_id, store_id, internal_status;

-- Adds the rows' counts (+1 each) and removes the old rows' (−1 each), in a fixed order of
-- keys so that two transactions never wait on each other's counters in opposite orders.
create function order_status_count_apply() returns trigger language plpgsql as $$
begin
    if tg_op = 'INSERT' then
        insert into order_status_count as c (account_id, store_id, internal_status, n)
        select account_id, store_id, internal_status, count(*) from new_rows
        group by account_id, store_id, internal_status order by account_id, store_id, internal_status
        on conflict (account_id, store_id, internal_status) do update set n = c.n + excluded.n;
    elsif tg_op = 'UPDATE' then
        insert into order_status_count as c (account_id, store_id, internal_status, n)
        select account_id, store_id, internal_status, sum(d) from (
            select o.account_id, o.store_id, o.internal_status, -1 as d
            from old_rows o join new_rows n on n.id = o.id
            where o.internal_status <> n.internal_status or o.store_id <> n.store_id
            union all
            select n.account_id, n.store_id, n.internal_status, 1
            from old_rows o join new_rows n on n.id = o.id
            where o.internal_status <> n.internal_status or o.store_id <> n.store_id
        ) d
        group by account_id, store_id, internal_status having sum(d) <> 0
        order by account_id, store_id, internal_status
        on conflict (account_id, store_id, internal_status) do update set n = c.n + excluded.n;
    else
        update order_status_count c set n = c.n - d.k
        from (select account_id, store_id, internal_status, count(*) as k from old_rows
              group by account_id, store_id, internal_status) d
        where c.account_id = d.account_id and c.store_id = d.store_id and c.internal_status = d.internal_status;
    end if;
    return null;
end $$;

create trigger yahoo_order_count_insert after insert on yahoo_order
    referencing new table as new_rows for each statement execute function order_status_count_apply();
create trigger yahoo_order_count_update after update on yahoo_order
    referencing old table as old_rows new table as new_rows for each statement execute function order_status_count_apply();
create trigger yahoo_order_count_delete after delete on yahoo_order
    referencing old table as old_rows for each statement execute function order_status_count_apply();

-- Search terms: order ID, phone numbers without hyphens, email, buyer and recipient names and
-- kana (family name first, and given name alone). Searched by prefix, byte-wise (collate "C").
create table order_search (
    account_id bigint not null,
    term text collate "C" not null,
    order_pk bigint not null references yahoo_order (id) on delete cascade,
    primary key (account_id, term, order_pk)
);
create index order_search_order on order_search (order_pk);

-- The terms of one order, from its searched columns (in this order: order_id, bill_phone, ship_phone, bill_mail, bill_last_name, bill_first_name, bill_last_name_kana, bill_first_name_kana, ship_last_name, ship_first_name, ship_last_name_kana, ship_first_name_kana).
create function order_search_terms(
    order_id text, bill_phone text, ship_phone text, bill_mail text,
    bill_last_name text, bill_first_name text, bill_last_name_kana text, bill_first_name_kana text,
    ship_last_name text, ship_first_name text, ship_last_name_kana text, ship_first_name_kana text
) returns setof text language sql stable as $$
    select distinct t from unnest(array[
        lower(order_id),
        replace(replace(bill_phone, '-', ''), ' ', ''),
        replace(replace(ship_phone, '-', ''), ' ', ''),
        lower(bill_mail),
        bill_last_name || bill_first_name,
        bill_first_name,
        bill_last_name_kana || bill_first_name_kana,
        bill_first_name_kana,
        ship_last_name || ship_first_name,
        ship_first_name,
        ship_last_name_kana || ship_first_name_kana,
        ship_first_name_kana
    ]) t where t <> ''
$$;

insert into order_search (account_id, term, order_pk)
select o.account_id, t, o.id from yahoo_order o
cross join lateral order_search_terms(o.order_id, o.bill_phone, o.ship_phone, o.bill_mail, o.bill_last_name, o.bill_first_name, o.bill_last_name_kana, o.bill_first_name_kana, o.ship_last_name, o.ship_first_name, o.ship_last_name_kana, o.ship_first_name_kana) t
on conflict do nothing;

create function order_search_apply() returns trigger language plpgsql as $$
begin
    if tg_op = 'UPDATE' then
        delete from order_search s using new_rows n join old_rows o on o.id = n.id
        where s.order_pk = n.id
          and row(o.order_id, o.bill_phone, o.ship_phone, o.bill_mail, o.bill_last_name, o.bill_first_name, o.bill_last_name_kana, o.bill_first_name_kana, o.ship_last_name, o.ship_first_name, o.ship_last_name_kana, o.ship_first_name_kana) is distinct from row(n.order_id, n.bill_phone, n.ship_phone, n.bill_mail, n.bill_last_name, n.bill_first_name, n.bill_last_name_kana, n.bill_first_name_kana, n.ship_last_name, n.ship_first_name, n.ship_last_name_kana, n.ship_first_name_kana);
        insert into order_search (account_id, term, order_pk)
        select n.account_id, t, n.id from new_rows n join old_rows o on o.id = n.id
        cross join lateral order_search_terms(n.order_id, n.bill_phone, n.ship_phone, n.bill_mail, n.bill_last_name, n.bill_first_name, n.bill_last_name_kana, n.bill_first_name_kana, n.ship_last_name, n.ship_first_name, n.ship_last_name_kana, n.ship_first_name_kana) t
        where row(o.order_id, o.bill_phone, o.ship_phone, o.bill_mail, o.bill_last_name, o.bill_first_name, o.bill_last_name_kana, o.bill_first_name_kana, o.ship_last_name, o.ship_first_name, o.ship_last_name_kana, o.ship_first_name_kana) is distinct from row(n.order_id, n.bill_phone, n.ship_phone, n.bill_mail, n.bill_last_name, n.bill_first_name, n.bill_last_name_kana, n.bill_first_name_kana, n.ship_last_name, n.ship_first_name, n.ship_last_name_kana, n.ship_first_name_kana)
        on conflict do nothing;
    else
        insert into order_search (account_id, term, order_pk)
        select n.account_id, t, n.id from new_rows n
        cross join lateral order_search_terms(n.order_id, n.bill_phone, n.ship_phone, n.bill_mail, n.bill_last_name, n.bill_first_name, n.bill_last_name_kana, n.bill_first_name_kana, n.ship_last_name, n.ship_first_name, n.ship_last_name_kana, n.ship_first_name_kana) t
        on conflict do nothing;
    end if;
    return null;
end $$;

create trigger yahoo_order_search_insert after insert on yahoo_order
    referencing new table as new_rows for each statement execute function order_search_apply();
create trigger yahoo_order_search_update after update on yahoo_order
    referencing old table as old_rows new table as new_rows for each statement execute function order_search_apply();

-- The store filter and the fraud-hold queue page without scanning the account.
create index yahoo_order_store_time on yahoo_order (store_id, order_time desc, id desc);
create index yahoo_order_held on yahoo_order (account_id, order_time desc, id desc) where fraud_hold_status in (1, 3);
