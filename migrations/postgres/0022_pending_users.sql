-- A user an owner adds is pending until their first sign-in: the row exists (so the owner can
-- set their stores and masking at once) but its `email` holds a placeholder that no sign-in can
-- match, and the address typed by the owner waits in `invited_email`. The first sign-in with
-- that address and the password the owner chose moves it into `email`, unless the address is
-- someone's already. So adding a user answers the same whether or not the address is
-- registered anywhere (issue 31: the add form was an oracle of registered emails).
alter table app_user add column invited_email text;
create index app_user_invited on app_user (invited_email) where invited_email is not null;
