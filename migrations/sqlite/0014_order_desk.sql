-- The order desk (product.md §6): tab counts kept by triggers so that no request counts a
-- million rows; search terms kept by triggers so that a search is an index range, not a scan;
-- indexes for the store filter and the fraud-hold queue. Triggers keep every writer (import,
-- re-import, status changes, anything later) right without code of its own.

create table order_status_count (
    account_id integer not null references account (id) on delete cascade,
    store_id integer not null references store (id) on delete cascade,
    internal_status text not null,
    n integer not null default 0,
    primary key (account_id, store_id, internal_status)
) without rowid;

insert into order_status_count (account_id, store_id, internal_status, n)
select account_id, store_id, internal_status, count(*) from yahoo_order group by account_id, store_id, internal_status;

create trigger yahoo_order_count_insert after insert on yahoo_order
begin
    insert or ignore into order_status_count (account_id, store_id, internal_status, n)
    values (new.account_id, new.store_id, new.internal_status, 0);
    update order_status_count set n = n + 1
    where account_id = new.account_id and store_id = new.store_id and internal_status = new.internal_status;
end;

create trigger yahoo_order_count_update after update of internal_status, store_id on yahoo_order
when old.internal_status is not new.internal_status or old.store_id is not new.store_id
begin
    update order_status_count set n = n - 1
    where account_id = old.account_id and store_id = old.store_id and internal_status = old.internal_status;
    insert or ignore into order_status_count (account_id, store_id, internal_status, n)
    values (new.account_id, new.store_id, new.internal_status, 0);
    update order_status_count set n = n + 1
    where account_id = new.account_id and store_id = new.store_id and internal_status = new.internal_status;
end;

create trigger yahoo_order_count_delete after delete on yahoo_order
begin
    update order_status_count set n = n - 1
    where account_id = old.account_id and store_id = old.store_id and internal_status = old.internal_status;
end;

-- Search terms: order ID, phone numbers without hyphens, email, buyer and recipient names and
-- kana (family name first, and given name alone). Searched by prefix: term >= q and term < q‖max.
create table order_search (
    account_id integer not null,
    term text not null,
    order_pk integer not null references yahoo_order (id) on delete cascade,
    primary key (account_id, term, order_pk)
) without rowid;
create index order_search_order on order_search (order_pk);

create view order_search_terms as
select id as order_pk, account_id, lower(order_id) as term from yahoo_order
union all select id, account_id, replace(replace(bill_phone, '-', ''), ' ', '') from yahoo_order
union all select id, account_id, replace(replace(ship_phone, '-', ''), ' ', '') from yahoo_order
union all select id, account_id, lower(bill_mail) from yahoo_order
union all select id, account_id, bill_last_name || bill_first_name from yahoo_order
union all select id, account_id, bill_first_name from yahoo_order
union all select id, account_id, bill_last_name_kana || bill_first_name_kana from yahoo_order
union all select id, account_id, bill_first_name_kana from yahoo_order
union all select id, account_id, ship_last_name || ship_first_name from yahoo_order
union all select id, account_id, ship_first_name from yahoo_order
union all select id, account_id, ship_last_name_kana || ship_first_name_kana from yahoo_order
union all select id, account_id, ship_first_name_kana from yahoo_order;

insert or ignore into order_search (account_id, term, order_pk)
select account_id, term, order_pk from order_search_terms where term <> '';

create trigger yahoo_order_search_insert after insert on yahoo_order
begin
    insert or ignore into order_search (account_id, term, order_pk)
    select account_id, term, order_pk from order_search_terms where order_pk = new.id and term <> '';
end;

create trigger yahoo_order_search_update after update on yahoo_order
when old.order_id is not new.order_id
  or old.bill_phone is not new.bill_phone or old.ship_phone is not new.ship_phone
  or old.bill_mail is not new.bill_mail
  or old.bill_last_name is not new.bill_last_name or old.bill_first_name is not new.bill_first_name
  or old.bill_last_name_kana is not new.bill_last_name_kana or old.bill_first_name_kana is not new.bill_first_name_kana
  or old.ship_last_name is not new.ship_last_name or old.ship_first_name is not new.ship_first_name
  or old.ship_last_name_kana is not new.ship_last_name_kana or old.ship_first_name_kana is not new.ship_first_name_kana
begin
    delete from order_search where order_pk = old.id;
    insert or ignore into order_search (account_id, term, order_pk)
    select account_id, term, order_pk from order_search_terms where order_pk = new.id and term <> '';
end;

-- The store filter and the fraud-hold queue page without scanning the account.
create index yahoo_order_store_time on yahoo_order (store_id, order_time desc, id desc);
create index yahoo_order_held on yahoo_order (account_id, order_time desc, id desc) where fraud_hold_status in (1, 3);
