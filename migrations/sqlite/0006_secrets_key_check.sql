-- A known text sealed under the secrets key: a server started with another key finds out at
-- start and refuses to run, instead of failing later on every stored secret.
create table secrets_key_check (
    id integer primary key check (id = 1),
    sealed blob not null,
    created_at text not null
);
