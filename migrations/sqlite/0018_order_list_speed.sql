-- The fraud-hold queue of one store (the list's store + 不正保留 filter) pages through its own
-- index instead of testing every order of the store, or every held order of the account, until
-- a page is full (`bench orders`: the slowest list page before this).
create index yahoo_order_store_held on yahoo_order (store_id, order_time desc, id desc) where fraud_hold_status in (1, 3);

-- A search reads its matching terms with each order's time, sorts those and reads only the
-- page's orders (`db::order_list::search_page`), instead of reading every matching order to sort
-- them: a name matching 600 orders read 600 orders for a page of 50.
alter table order_search add column order_time text;
update order_search set order_time = (select o.order_time from yahoo_order o where o.id = order_search.order_pk);

drop view order_search_terms;
create view order_search_terms as
select id as order_pk, account_id, order_time, lower(order_id) as term from yahoo_order
union all select id, account_id, order_time, replace(replace(bill_phone, '-', ''), ' ', '') from yahoo_order
union all select id, account_id, order_time, replace(replace(ship_phone, '-', ''), ' ', '') from yahoo_order
union all select id, account_id, order_time, lower(bill_mail) from yahoo_order
union all select id, account_id, order_time, bill_last_name || bill_first_name from yahoo_order
union all select id, account_id, order_time, bill_first_name from yahoo_order
union all select id, account_id, order_time, bill_last_name_kana || bill_first_name_kana from yahoo_order
union all select id, account_id, order_time, bill_first_name_kana from yahoo_order
union all select id, account_id, order_time, ship_last_name || ship_first_name from yahoo_order
union all select id, account_id, order_time, ship_first_name from yahoo_order
union all select id, account_id, order_time, ship_last_name_kana || ship_first_name_kana from yahoo_order
union all select id, account_id, order_time, ship_first_name_kana from yahoo_order;

drop trigger yahoo_order_search_insert;
create trigger yahoo_order_search_insert after insert on yahoo_order
begin
    insert or ignore into order_search (account_id, term, order_pk, order_time)
    select account_id, term, order_pk, order_time from order_search_terms where order_pk = new.id and term <> '';
end;

drop trigger yahoo_order_search_update;
create trigger yahoo_order_search_update after update on yahoo_order
when old.order_id is not new.order_id or old.order_time is not new.order_time
  or old.bill_phone is not new.bill_phone or old.ship_phone is not new.ship_phone
  or old.bill_mail is not new.bill_mail
  or old.bill_last_name is not new.bill_last_name or old.bill_first_name is not new.bill_first_name
  or old.bill_last_name_kana is not new.bill_last_name_kana or old.bill_first_name_kana is not new.bill_first_name_kana
  or old.ship_last_name is not new.ship_last_name or old.ship_first_name is not new.ship_first_name
  or old.ship_last_name_kana is not new.ship_last_name_kana or old.ship_first_name_kana is not new.ship_first_name_kana
begin
    delete from order_search where order_pk = old.id;
    insert or ignore into order_search (account_id, term, order_pk, order_time)
    select account_id, term, order_pk, order_time from order_search_terms where order_pk = new.id and term <> '';
end;

-- Held orders (FraudHoldStatus 1 and 3) per store, kept by triggers like the tab counts: the
-- list's 「不正保留の注文が…件」 and the dashboard read a few rows instead of counting the
-- account's held orders on every page.
create table order_hold_count (
    account_id integer not null references account (id) on delete cascade,
    store_id integer not null references store (id) on delete cascade,
    n integer not null default 0,
    primary key (account_id, store_id)
) without rowid;

insert into order_hold_count (account_id, store_id, n)
select account_id, store_id, count(*) from yahoo_order where fraud_hold_status in (1, 3) group by account_id, store_id;

create trigger yahoo_order_hold_insert after insert on yahoo_order
when new.fraud_hold_status in (1, 3)
begin
    insert into order_hold_count (account_id, store_id, n) values (new.account_id, new.store_id, 1)
    on conflict (account_id, store_id) do update set n = n + 1;
end;

create trigger yahoo_order_hold_update after update of fraud_hold_status, store_id on yahoo_order
when (old.fraud_hold_status in (1, 3)) is not (new.fraud_hold_status in (1, 3)) or old.store_id is not new.store_id
begin
    update order_hold_count set n = n - 1
    where old.fraud_hold_status in (1, 3) and account_id = old.account_id and store_id = old.store_id;
    insert into order_hold_count (account_id, store_id, n)
    select new.account_id, new.store_id, 1 where new.fraud_hold_status in (1, 3)
    on conflict (account_id, store_id) do update set n = n + 1;
end;

create trigger yahoo_order_hold_delete after delete on yahoo_order
when old.fraud_hold_status in (1, 3)
begin
    update order_hold_count set n = n - 1 where account_id = old.account_id and store_id = old.store_id;
end;
