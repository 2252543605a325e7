-- One-time password reset links that support staff issue for a merchant owner. Only a hash of
-- the link's token is kept; a link is used at most once (used_at) and expires.
create table password_reset_link (
    id integer primary key autoincrement,
    account_id integer not null references account (id) on delete cascade,
    user_id integer not null references app_user (id) on delete cascade,
    token_hash text not null unique,
    issued_by text not null,
    created_at text not null,
    expires_at text not null,
    used_at text
);
create index password_reset_link_user on password_reset_link (account_id, user_id);
