-- Notifications (issue 29): an event worth telling people about is one `notice` row (its key
-- makes it happen once: a scan that sees the same expiry again, or a second process, inserts
-- nothing), fanned out to each user who wants it as a `notice_delivery` (immediate or in the
-- daily digest), and folded into mail by the notifier: one mail per kind per store per user
-- per hour at most. Notices carry order IDs, store names and counts, never personal data.
create table notice (
    id integer primary key autoincrement,
    account_id integer not null references account (id) on delete cascade,
    store_id integer references store (id) on delete cascade,
    kind text not null,
    key text not null,
    line text not null,
    link text not null default '',
    created_at text not null,
    unique (account_id, kind, key)
);

create table notice_delivery (
    notice_id integer not null references notice (id) on delete cascade,
    user_id integer not null references app_user (id) on delete cascade,
    account_id integer not null references account (id) on delete cascade,
    store_id integer,
    kind text not null,
    mode text not null check (mode in ('immediate', 'digest')),
    folded boolean not null default false,
    mail_id integer,
    created_at text not null,
    primary key (notice_id, user_id)
);
create index notice_delivery_pending on notice_delivery (user_id, kind, store_id) where not folded;

-- Each user's choices; no row: the role's default (owners every kind at once, staff nothing).
create table notify_pref (
    user_id integer primary key references app_user (id) on delete cascade,
    account_id integer not null references account (id) on delete cascade,
    -- {"kind": "immediate" | "digest" | "off", ...}; a kind missing is the role's default.
    modes text not null default '{}',
    -- [store ids] the user chose; null: every store the user can see.
    stores text,
    updated_at text not null
);

-- One daily digest per user per day, whichever process gets there first.
create table notify_digest (
    user_id integer not null references app_user (id) on delete cascade,
    day text not null,
    mail_id integer,
    primary key (user_id, day)
);

-- One notifier across every `serve` process, under the job engine's lease.
create table notify_lease (
    id integer primary key,
    lease_owner text,
    lease_until text
);
insert into notify_lease (id) values (1);

-- Who a message was for (the hourly fold asks when they last got one of a kind), and the
-- store's sender name and reply address it carries.
alter table mail_message add column user_id integer references app_user (id) on delete set null;
alter table mail_message add column from_name text not null default '';
alter table mail_message add column reply_to text not null default '';
create index mail_message_fold on mail_message (user_id, kind, store_id, created_at);

-- A store's mail: sender name, Reply-To, and the buyer mails (発送連絡 off until switched on).
create table store_mail (
    store_id integer primary key references store (id) on delete cascade,
    account_id integer not null references account (id) on delete cascade,
    from_name text not null default '',
    reply_to text not null default '',
    ship_notice_on boolean not null default false,
    ship_subject text not null,
    ship_body text not null,
    free_subject text not null,
    free_body text not null,
    updated_at text not null
);
