-- The request that asked for a run or a push to Yahoo (web::RequestId, shown as 受付番号 on error
-- pages and on every log line of the request): its run and its push show it, and their jobs
-- log it, so support can follow a failure from the merchant's screen to the log.
alter table import_run add column request_id text;
alter table order_push add column request_id text;
