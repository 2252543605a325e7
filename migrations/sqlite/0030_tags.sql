-- Tags on orders (issue 30): per account, named and coloured; a tag marked 出荷止め keeps its
-- orders off every shipping path (label files, tracking numbers, the ship push) until removed.
create table tag (
    id integer primary key autoincrement,
    account_id integer not null references account (id) on delete cascade,
    name text not null,
    color text not null default 'gray',
    stops_shipping boolean not null default false,
    created_at text not null,
    unique (account_id, name)
);

create table order_tag (
    order_pk integer not null references yahoo_order (id) on delete cascade,
    tag_id integer not null references tag (id) on delete cascade,
    account_id integer not null references account (id) on delete cascade,
    added_by text not null,
    added_at text not null,
    primary key (order_pk, tag_id)
);
create index order_tag_by_tag on order_tag (tag_id, order_pk);
