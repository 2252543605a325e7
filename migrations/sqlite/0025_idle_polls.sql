-- An automatic run that found nothing (no new or changed order, no error) leaves no run record:
-- it is counted here instead, so a store polled every minute does not add 1,440 rows a day
-- (bench fleet). The 取込 page says how many such checks there were since the last recorded
-- run, and when the last one was.
alter table store_import add column idle_polls integer not null default 0;
alter table store_import add column idle_at text;
