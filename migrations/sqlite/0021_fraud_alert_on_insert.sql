-- An order whose first import already finds it 不正確定 (FraudHoldStatus 3, flagged for
-- cancellation by the import's rules) gets the dashboard's alert too: until now only the change
-- 1 → 3 of an order already held here raised one, and an order imported late (a first import's
-- look-back, reconciliation, a re-import by ID) showed 「要キャンセル」 in the list and nowhere else.
create trigger yahoo_order_fraud_hold_alert_insert after insert on yahoo_order
when new.fraud_hold_status = 3 and new.cancel_flagged
begin
    insert into fraud_hold_alert (account_id, store_id, order_pk, fraud_hold_status, created_at)
    values (new.account_id, new.store_id, new.id, new.fraud_hold_status, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
    on conflict (order_pk, fraud_hold_status) do nothing;
end;
