-- Sessions are bound to a login's auth epoch: removing a user, changing their role or their
-- password bumps it, which ends every other session of theirs at its next request.
alter table app_user add column auth_epoch integer not null default 0;
alter table support_staff add column auth_epoch integer not null default 0;

-- Throttled attempts: failed sign-ins and wrong current passwords ('signin'), sign-ups ('signup').
-- The address is the parsed client address (never raw header text).
alter table sign_in_failure add column kind text not null default 'signin';
create index sign_in_failure_pair on sign_in_failure (email, ip, created_at);

-- Addresses a login has signed in from: failures from other addresses cannot lock it out there.
create table sign_in_known_address (
    email text not null,
    ip text not null,
    last_success_at text not null,
    primary key (email, ip)
);
