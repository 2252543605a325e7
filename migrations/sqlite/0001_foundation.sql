-- Accounts, users, support staff, stores, the audit log and sign-in throttling.
-- Times are RFC 3339 text in UTC (sqlx's chrono encoding); booleans are 0/1.

create table account (
    id integer primary key,
    name text not null,
    created_at text not null,
    updated_at text not null
);

create table app_user (
    id integer primary key,
    account_id integer not null references account (id) on delete cascade,
    email text not null unique,
    display_name text not null,
    password_hash text not null,
    role text not null check (role in ('owner', 'staff')),
    created_at text not null,
    updated_at text not null
);
create index app_user_account on app_user (account_id);

create table support_staff (
    id integer primary key,
    email text not null unique,
    display_name text not null,
    password_hash text not null,
    created_at text not null,
    updated_at text not null
);

create table store (
    id integer primary key,
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
    unique (account_id, seller_id)
);
create index store_account on store (account_id);

create table audit_log (
    id integer primary key,
    account_id integer not null references account (id) on delete cascade,
    actor text not null,
    action text not null,
    detail text not null default '',
    ip text,
    created_at text not null
);
create index audit_log_account on audit_log (account_id, id);

-- The audit log is append-only: the application has no code that edits it, and the database
-- refuses it too.
create trigger audit_log_no_update before update on audit_log
begin
    select raise(abort, 'audit_log is append-only');
end;

create table sign_in_failure (
    id integer primary key,
    email text not null,
    ip text not null,
    created_at text not null
);
create index sign_in_failure_email on sign_in_failure (email, created_at);
create index sign_in_failure_ip on sign_in_failure (ip, created_at);
