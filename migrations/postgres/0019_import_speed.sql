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
