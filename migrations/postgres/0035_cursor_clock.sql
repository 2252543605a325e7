-- When a store's cursor was last written, on our own clock (issue 32). The cursor is on Yahoo's
-- clock; when that clock is moved back, the cursor stands in Yahoo's future, and the next run
-- takes Yahoo's now minus the time our clock has run since this moment as where it stands.
alter table store_import add column cursor_set_at timestamptz;
