-- The last authentication problem Yahoo reported for a store (px-04102, invalid_grant, …),
-- kept until a call succeeds, so the store page can diagnose it.
alter table store add column last_auth_error text;
alter table store add column last_auth_error_at text;
