-- Today's calls of an app (the automatic import's share of Yahoo's daily quota, checked at the
-- start of every automatic run) are summed over the stores on that app: found through their
-- client ID, not by reading every store's import row (bench fleet: at 10,000 stores this one
-- query made PostgreSQL read every store_import row on every poll).
create index store_client on store (client_id);
