-- Rules (issue 30): per account, applied top to bottom (by position) to imported, changed and
-- chosen orders. Conditions and actions are JSON (`rules::RuleSpec`); a rule naming a tag that
-- no longer exists is shown as broken and skipped.
create table order_rule (
    id integer primary key autoincrement,
    account_id integer not null references account (id) on delete cascade,
    position bigint not null,
    name text not null,
    enabled boolean not null default true,
    -- Empty: every store of the account; else a JSON array of store IDs.
    stores text not null default '[]',
    spec text not null,
    stop_after boolean not null default false,
    created_at text not null,
    updated_at text not null
);
create index order_rule_account on order_rule (account_id, position);

-- The rules apply once per order and trigger, and their 履歴 entry is the record of it:
-- `rule_trigger` is `import` (the order arrived), `change:<Yahoo's version>` (it changed at
-- Yahoo) or `manual:<run>` (run by hand), and an order has one such entry per trigger.
alter table order_history add column rule_trigger text;
create unique index order_history_rule_once on order_history (order_pk, rule_trigger) where rule_trigger is not null;

-- The merchant's 離島 postcodes (7 digits), for the remote-island condition.
create table island_postcode (
    account_id integer not null references account (id) on delete cascade,
    postcode text not null,
    primary key (account_id, postcode)
);

-- What a rule set for an order's label: the carrier file and B2 service, and お届け希望日 left
-- blank on the label (Yahoo's own fields stay as Yahoo has them).
create table order_label (
    order_pk integer primary key references yahoo_order (id) on delete cascade,
    account_id integer not null references account (id) on delete cascade,
    format text,
    service text,
    clear_delivery_date boolean not null default false,
    updated_at text not null
);

-- Buyer seen before: another order of the account with the same e-mail or phone.
create index yahoo_order_by_mail on yahoo_order (account_id, bill_mail);
create index yahoo_order_by_phone on yahoo_order (account_id, bill_phone);
