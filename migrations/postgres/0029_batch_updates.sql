-- Statement-level triggers on yahoo_order joined each update's old rows with its new rows.
-- PostgreSQL cannot estimate a transition table, so it planned each join as a nested loop:
-- 40,000 comparisons of wide rows for a status change of 200 orders, repeated in four triggers,
-- and for the search terms an index walk over the account's whole index per order (half a
-- second for 200 orders among 10,000: `bench shipping`'s tracking apply). Each trigger now reads
-- the two tables once, without a join: counters add the new rows and subtract the old (an
-- unchanged row cancels out), and the rows whose searched columns or cancellation changed are a
-- set difference, which PostgreSQL computes by hashing.

create or replace function order_status_count_apply() returns trigger language plpgsql as $$
begin
    if tg_op = 'INSERT' then
        insert into order_status_count as c (account_id, store_id, internal_status, n)
        select account_id, store_id, internal_status, count(*) from new_rows
        group by account_id, store_id, internal_status order by account_id, store_id, internal_status
        on conflict (account_id, store_id, internal_status) do update set n = c.n + excluded.n;
    elsif tg_op = 'UPDATE' then
        insert into order_status_count as c (account_id, store_id, internal_status, n)
        select account_id, store_id, internal_status, sum(d) from (
            select account_id, store_id, internal_status, -1 as d from old_rows
            union all
            select account_id, store_id, internal_status, 1 from new_rows
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

create or replace function order_hold_count_apply() returns trigger language plpgsql as $$
begin
    if tg_op = 'INSERT' then
        insert into order_hold_count as c (account_id, store_id, n)
        select account_id, store_id, count(*) from new_rows where fraud_hold_status in (1, 3)
        group by account_id, store_id order by account_id, store_id
        on conflict (account_id, store_id) do update set n = c.n + excluded.n;
    elsif tg_op = 'UPDATE' then
        insert into order_hold_count as c (account_id, store_id, n)
        select account_id, store_id, sum(d) from (
            select account_id, store_id, -1 as d from old_rows where fraud_hold_status in (1, 3)
            union all
            select account_id, store_id, 1 from new_rows where fraud_hold_status in (1, 3)
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

create or replace function yahoo_order_stock_events() returns trigger language plpgsql as $$
begin
    if tg_op = 'INSERT' then
        insert into stock_order_event (order_pk, kind, account_id)
        select id, 'order', account_id from new_rows
        on conflict do nothing;
        insert into stock_order_event (order_pk, kind, account_id)
        select id, 'cancel', account_id from new_rows where internal_status = 'cancelled' or order_status = 4
        on conflict do nothing;
    else
        insert into stock_order_event (order_pk, kind, account_id)
        select id, 'cancel', account_id from new_rows where internal_status = 'cancelled' or order_status = 4
        except
        select id, 'cancel', account_id from old_rows where internal_status = 'cancelled' or order_status = 4
        on conflict do nothing;
    end if;
    return null;
end $$;

create or replace function order_search_apply() returns trigger language plpgsql as $$
begin
    if tg_op = 'UPDATE' then
        with changed as materialized (
            select account_id, id, order_time, order_id, bill_phone, ship_phone, bill_mail, bill_last_name, bill_first_name, bill_last_name_kana, bill_first_name_kana, ship_last_name, ship_first_name, ship_last_name_kana, ship_first_name_kana from old_rows
            except
            select account_id, id, order_time, order_id, bill_phone, ship_phone, bill_mail, bill_last_name, bill_first_name, bill_last_name_kana, bill_first_name_kana, ship_last_name, ship_first_name, ship_last_name_kana, ship_first_name_kana from new_rows
        )
        delete from order_search s using changed o
        cross join lateral order_search_terms(o.order_id, o.bill_phone, o.ship_phone, o.bill_mail, o.bill_last_name, o.bill_first_name, o.bill_last_name_kana, o.bill_first_name_kana, o.ship_last_name, o.ship_first_name, o.ship_last_name_kana, o.ship_first_name_kana) t
        where s.account_id = o.account_id and s.term = t and s.order_pk = o.id;
        with changed as materialized (
            select account_id, id, order_time, order_id, bill_phone, ship_phone, bill_mail, bill_last_name, bill_first_name, bill_last_name_kana, bill_first_name_kana, ship_last_name, ship_first_name, ship_last_name_kana, ship_first_name_kana from new_rows
            except
            select account_id, id, order_time, order_id, bill_phone, ship_phone, bill_mail, bill_last_name, bill_first_name, bill_last_name_kana, bill_first_name_kana, ship_last_name, ship_first_name, ship_last_name_kana, ship_first_name_kana from old_rows
        )
        insert into order_search (account_id, term, order_pk, order_time)
        select o.account_id, t, o.id, o.order_time from changed o
        cross join lateral order_search_terms(o.order_id, o.bill_phone, o.ship_phone, o.bill_mail, o.bill_last_name, o.bill_first_name, o.bill_last_name_kana, o.bill_first_name_kana, o.ship_last_name, o.ship_first_name, o.ship_last_name_kana, o.ship_first_name_kana) t
        order by 1, 2, 3
        on conflict do nothing;
    else
        insert into order_search (account_id, term, order_pk, order_time)
        select n.account_id, t, n.id, n.order_time from new_rows n
        cross join lateral order_search_terms(n.order_id, n.bill_phone, n.ship_phone, n.bill_mail, n.bill_last_name, n.bill_first_name, n.bill_last_name_kana, n.bill_first_name_kana, n.ship_last_name, n.ship_first_name, n.ship_last_name_kana, n.ship_first_name_kana) t
        order by 1, 2, 3;
    end if;
    return null;
end $$;

-- When a shipment was exported is what label_export_shipment records (which export, and the
-- export's time), so the shipment no longer keeps a copy: writing the copy was a second write
-- of every exported row, the largest part of recording a 10,000-row export (`bench shipping`).
alter table shipment drop column last_export_id, drop column exported_at;
alter table label_export_shipment add column exported_at timestamptz;
update label_export_shipment set exported_at = (select e.created_at from label_export e where e.id = export_id);
create index label_export_shipment_by_shipment on label_export_shipment (shipment_id, exported_at);

-- Shipments are read by order or by id; the only read by account is クリックポスト's open
-- parcels. An index led by the account alone made the planner, before statistics existed,
-- filter every shipment of the account for each few hundred orders of a label export; it is
-- replaced by one for the open parcels.
drop index shipment_account;
create index shipment_open on shipment (account_id, format) where tracking_number is null;

-- A label file is stored as it was sent (kept to be downloaded again), without compressing it
-- on the way in: a 10,000-row file took 45 ms to compress, a third of recording the export.
alter table label_export alter column body set storage external;

-- 出荷後の自動完了 (issue 33): a paid order is completed at Yahoo this many days after its
-- first tracking number; 0 (the default) leaves it at Yahoo's 注文完了待ち.
alter table store_shipping add column complete_after_days bigint not null default 0;
