-- Ids are never reused: an `integer primary key` without AUTOINCREMENT hands a deleted row's id
-- to the next row, so a removed user's open session became the next user created and a deleted
-- store's id went to another account's store. Every table whose id is referred to from outside
-- its row is rebuilt with AUTOINCREMENT (the order tables of 0003 have it already), keeping its
-- rows, ids, foreign keys and indexes.
--
-- SQLite's table rebuild: create the new table, copy, drop the old one, rename the new one.
-- Foreign keys are off while migrations run (`Db::migrate` turns them off around the migrator
-- and runs `foreign_key_check` after), so dropping `account` does not cascade into its children.

create table account_new (
    id integer primary key autoincrement,
    name text not null,
    created_at text not null,
    updated_at text not null,
    stopped_reason text,
    stopped_at text
);
insert into account_new (id, name, created_at, updated_at, stopped_reason, stopped_at)
    select id, name, created_at, updated_at, stopped_reason, stopped_at from account;
drop table account;
alter table account_new rename to account;

create table app_user_new (
    id integer primary key autoincrement,
    account_id integer not null references account (id) on delete cascade,
    email text not null unique,
    display_name text not null,
    password_hash text not null,
    role text not null check (role in ('owner', 'staff')),
    created_at text not null,
    updated_at text not null
);
insert into app_user_new (id, account_id, email, display_name, password_hash, role, created_at, updated_at)
    select id, account_id, email, display_name, password_hash, role, created_at, updated_at from app_user;
drop table app_user;
alter table app_user_new rename to app_user;
create index app_user_account on app_user (account_id);

create table support_staff_new (
    id integer primary key autoincrement,
    email text not null unique,
    display_name text not null,
    password_hash text not null,
    created_at text not null,
    updated_at text not null
);
insert into support_staff_new (id, email, display_name, password_hash, created_at, updated_at)
    select id, email, display_name, password_hash, created_at, updated_at from support_staff;
drop table support_staff;
alter table support_staff_new rename to support_staff;

create table store_new (
    id integer primary key autoincrement,
    account_id integer not null references account (id) on delete cascade,
    name text not null,
    seller_id text not null,
    environment text not null check (environment in ('production', 'sandbox', 'simulator')),
    client_id text not null default '',
    client_secret_enc blob,
    public_key_pem text,
    public_key_version integer,
    public_key_expires_on text,
    refresh_token_enc blob,
    access_token_enc blob,
    access_token_expires_at text,
    authorized_at text,
    last_authorize_status text,
    last_authorize_status_at text,
    clock_offset_ms integer,
    auto_import_enabled boolean not null default 0,
    auto_import_interval_minutes integer not null default 15,
    auto_status_change_enabled boolean not null default 0,
    auto_status_change_target text,
    restrict_fraud_hold_changes boolean not null default 1,
    stock_sync_enabled boolean not null default 0,
    created_at text not null,
    updated_at text not null,
    last_auth_error text,
    last_auth_error_at text,
    auto_import_inbox boolean not null default 0,
    unique (account_id, seller_id)
);
insert into store_new (
    id, account_id, name, seller_id, environment, client_id, client_secret_enc, public_key_pem,
    public_key_version, public_key_expires_on, refresh_token_enc, access_token_enc,
    access_token_expires_at, authorized_at, last_authorize_status, last_authorize_status_at,
    clock_offset_ms, auto_import_enabled, auto_import_interval_minutes, auto_status_change_enabled,
    auto_status_change_target, restrict_fraud_hold_changes, stock_sync_enabled, created_at,
    updated_at, last_auth_error, last_auth_error_at, auto_import_inbox)
select
    id, account_id, name, seller_id, environment, client_id, client_secret_enc, public_key_pem,
    public_key_version, public_key_expires_on, refresh_token_enc, access_token_enc,
    access_token_expires_at, authorized_at, last_authorize_status, last_authorize_status_at,
    clock_offset_ms, auto_import_enabled, auto_import_interval_minutes, auto_status_change_enabled,
    auto_status_change_target, restrict_fraud_hold_changes, stock_sync_enabled, created_at,
    updated_at, last_auth_error, last_auth_error_at, auto_import_inbox
from store;
drop table store;
alter table store_new rename to store;
create index store_account on store (account_id);

-- The audit log pages by id, so its ids are never reused either.
create table audit_log_new (
    id integer primary key autoincrement,
    account_id integer not null references account (id) on delete cascade,
    actor text not null,
    action text not null,
    detail text not null default '',
    ip text,
    created_at text not null
);
insert into audit_log_new (id, account_id, actor, action, detail, ip, created_at)
    select id, account_id, actor, action, detail, ip, created_at from audit_log;
drop table audit_log;
alter table audit_log_new rename to audit_log;
create index audit_log_account on audit_log (account_id, id);
create trigger audit_log_no_update before update on audit_log
begin
    select raise(abort, 'audit_log is append-only');
end;
