-- 納品書 and picking lists (issue 28).

-- What the slip's money needs of the order, read from orderInfo from now on (orders imported
-- before have 0 here; a slip whose sum then differs from TotalPrice says so and asks for a
-- re-import rather than printing wrong amounts).
alter table yahoo_order add column coupon_discount bigint not null default 0;
alter table yahoo_order add column gift_card_discount bigint not null default 0;
alter table yahoo_order add column social_gift_type bigint not null default 0;
alter table yahoo_order add column need_gift_wrap boolean;

-- The 出荷予定日 a label file was written with: the slip's ship date until Yahoo has one.
alter table label_export add column ship_date text;

-- Per store: the seller block of the 納品書 (the 適格簡易請求書's issuer and 登録番号), its
-- message, whether the buyer's 備考 is printed, and the paper.
create table store_document (
    store_id integer primary key references store (id) on delete cascade,
    account_id integer not null references account (id) on delete cascade,
    seller_name text not null default '',
    address text not null default '',
    phone text not null default '',
    registration_number text not null default '',
    -- The 13 digits are a 法人番号 (its check digit is verified); false for a sole proprietor.
    registration_corporate boolean not null default true,
    message text not null default '',
    print_comments boolean not null default true,
    paper text not null default 'a4' check (paper in ('a4', 'a5', 'a4x2')),
    updated_at text not null
);

-- 棚番 per stock code: the picking list walks the shelves in this order.
create table item_location (
    account_id integer not null references account (id) on delete cascade,
    code text not null,
    location text not null,
    updated_at text not null,
    primary key (account_id, code)
);

-- A print batch: what was chosen, what is printed (order keys, in order) and what was left
-- out with the reason. The PDF is made from it when asked for, never stored.
create table print_batch (
    id integer primary key autoincrement,
    account_id integer not null references account (id) on delete cascade,
    kind text not null check (kind in ('slip', 'picking')),
    orders text not null,
    excluded text not null,
    created_by text not null,
    created_at text not null
);
create index print_batch_account on print_batch (account_id, id);
