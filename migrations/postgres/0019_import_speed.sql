-- order_search is derived from yahoo_order by its triggers. Its foreign key made PostgreSQL
-- check each term of each imported order with a query of its own that also locks the order's
-- row (a dozen per order: the largest single cost of writing an import batch, `bench import`);
-- the terms of a deleted order are now removed by a trigger like the one that writes them.
alter table order_search drop constraint order_search_order_pk_fkey;

create function order_search_forget() returns trigger language plpgsql as $$
begin
    delete from order_search s using old_rows o where s.order_pk = o.id;
    return null;
end $$;

create trigger yahoo_order_search_delete after delete on yahoo_order
    referencing old table as old_rows for each statement execute function order_search_forget();

-- A batch's terms go into the index in key order: one ordered pass over the index instead of a
-- dozen random inserts per order.
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
        order by 1, 2, 3
        on conflict do nothing;
    else
        insert into order_search (account_id, term, order_pk, order_time)
        select n.account_id, t, n.id, n.order_time from new_rows n
        cross join lateral order_search_terms(n.order_id, n.bill_phone, n.ship_phone, n.bill_mail, n.bill_last_name, n.bill_first_name, n.bill_last_name_kana, n.bill_first_name_kana, n.ship_last_name, n.ship_first_name, n.ship_last_name_kana, n.ship_first_name_kana) t
        order by 1, 2, 3
        on conflict do nothing;
    end if;
    return null;
end $$;
