-- Mail (issue 29): every message the service sends, queued in the transaction of the event
-- that causes it and sent by the mail job (one sender at a time per message, under a lease
-- like every job's). A message keeps its Message-ID from the start, so a retry after a crash
-- is the same message to the receiving side.
create table mail_message (
    id integer primary key autoincrement,
    account_id integer not null references account (id) on delete cascade,
    store_id integer references store (id) on delete cascade,
    kind text not null,
    recipient text not null,
    subject text not null,
    -- The text as sent; empty when the body is a secret (a password-reset link), which is
    -- kept sealed instead and never shown on a page.
    body text not null,
    body_sealed blob,
    message_id text not null unique,
    state text not null default 'queued' check (state in ('queued', 'sending', 'sent', 'failed')),
    attempts bigint not null default 0,
    next_attempt_at text not null,
    last_error text not null default '',
    lease_owner text,
    lease_until text,
    created_at text not null,
    sent_at text
);
create index mail_message_account on mail_message (account_id, id);
create index mail_message_due on mail_message (next_attempt_at) where state in ('queued', 'sending');
