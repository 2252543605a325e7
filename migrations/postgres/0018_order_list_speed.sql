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
