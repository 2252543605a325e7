-- The search terms of an order read the order once: the view took each of its twelve terms
-- from a lookup of its own (an import paid twelve reads of the order just written, `bench
-- import`). Still the one definition of the terms, for the triggers, import batches and a rebuild.
-- (The update trigger of 0018 reads the view by name and needs no change.)
drop trigger yahoo_order_search_insert;
drop view order_search_terms;

create view order_search_terms as
select o.id as order_pk, o.account_id, o.order_time,
    case k.n
        when 1 then lower(o.order_id)
        when 2 then replace(replace(o.bill_phone, '-', ''), ' ', '')
        when 3 then replace(replace(o.ship_phone, '-', ''), ' ', '')
        when 4 then lower(o.bill_mail)
        when 5 then o.bill_last_name || o.bill_first_name
        when 6 then o.bill_first_name
        when 7 then o.bill_last_name_kana || o.bill_first_name_kana
        when 8 then o.bill_first_name_kana
        when 9 then o.ship_last_name || o.ship_first_name
        when 10 then o.ship_first_name
        when 11 then o.ship_last_name_kana || o.ship_first_name_kana
        else o.ship_first_name_kana
    end as term
from yahoo_order o
cross join (select 1 as n union all select 2 union all select 3 union all select 4 union all select 5
    union all select 6 union all select 7 union all select 8 union all select 9 union all select 10
    union all select 11 union all select 12) k;

-- While an import batch holds this row (inside its own transaction, so no one else ever sees
-- it), inserted orders' terms are left to the batch, which writes all of its orders' terms at
-- once in key order (`db::orders::write_batch`): a dozen random index inserts per order become
-- one ordered pass over the index. Every other writer of orders gets its terms from the trigger.
create table order_search_batch (
    id integer primary key check (id = 1)
);

create trigger yahoo_order_search_insert after insert on yahoo_order
when not exists (select 1 from order_search_batch)
begin
    insert or ignore into order_search (account_id, term, order_pk, order_time)
    select account_id, term, order_pk, order_time from order_search_terms where order_pk = new.id and term <> '';
end;
