-- The durable outbox of changes Yahoo must be told (product.md §6): one row per push, written in
-- the same transaction as the status change that needs it, drained by the scheduler of every
-- `serve` process. The pushes of one order go out strictly by `seq`.

create table order_push (
    id integer primary key autoincrement,
    account_id integer not null references account (id) on delete cascade,
    store_id integer not null references store (id) on delete cascade,
    order_pk integer not null references yahoo_order (id) on delete cascade,
    -- Position among this order's pushes: a push waits until every earlier one is settled.
    seq bigint not null,
    kind text not null check (kind in ('status', 'ship')),
    -- orderStatusChange: OrderStatus (4 with CancelReason; 5 with IsPointFix).
    order_status bigint,
    cancel_reason bigint,
    -- orderShipStatusChange.
    ship_status bigint,
    ship_company_code text not null default '',
    ship_invoice_number text not null default '',
    ship_date text,
    -- OperationUser: who asked for the change.
    operator text not null default '',
    state text not null check (state in ('pending', 'sending', 'done', 'failed')),
    attempts bigint not null default 0,
    next_attempt_at text not null,
    -- The process sending it, and until when that is its own (a dead process's push is retried).
    lease_owner text,
    lease_until text,
    -- Yahoo's last answer (error message, warnings), as the merchant sees it.
    last_message text not null default '',
    created_at text not null,
    updated_at text not null,
    done_at text,
    unique (order_pk, seq)
);
create index order_push_due on order_push (next_attempt_at) where state in ('pending', 'sending');
create index order_push_store_state on order_push (account_id, store_id, state);
