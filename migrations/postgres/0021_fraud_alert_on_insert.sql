-- An order whose first import already finds it 不正確定 (FraudHoldStatus 3, flagged for
-- cancellation by the import's rules) gets the dashboard's alert too: until now only the change
-- 1 → 3 of an order already held here raised one, and an order imported late (a first import's
-- look-back, reconciliation, a re-import by ID) showed 「要キャンセル」 in the list and nowhere else.
-- Row-level with a WHEN condition, as the update trigger: other orders cost next to nothing.
create trigger yahoo_order_fraud_hold_alert_insert after insert on yahoo_order
    for each row when (new.fraud_hold_status = 3 and new.cancel_flagged)
    execute function fraud_hold_alert_record();
