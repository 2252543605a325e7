//! Status changes and their pushes to Yahoo (product.md §6) against the simulator over real
//! HTTP, on both backends: pushes reach Yahoo in order and write history, a refusal stays
//! visible as failed, temporary faults are retried, drainers sharing a database never send a
//! push twice, a drainer killed mid-push is taken over, 緊急停止 halts pushes, and the fraud-hold
//! rule holds on every path, checked also over random sequences of imports, reviews and changes.

use std::{sync::Arc, time::Duration};

use chrono::{NaiveDate, Utc};
use orderdesk::{
    db::{
        Db, changes, imports, orders,
        orders::{HistoryActor, OrderPk, OrderRow},
        outbox::{self, PushRow, PushState},
    },
    domain::{
        order::{FRAUD_HOLD_REFUSAL, OrderStatus},
        scope::OrderScope,
        status::{ChangeRequest, Plan, Push, Refusal, ShipInput},
        store::InternalStatus,
    },
    import::Ending,
    push::{PushSettings, Pusher},
    simulator::orders::Order,
};
use rand::{Rng, SeedableRng, seq::SliceRandom};
use reqwest::StatusCode;
use serde_json::json;

use crate::{
    helpers::Backend,
    import::{SELLER, Shop, shop},
    on_both_backends,
};

use InternalStatus::*;
use orderdesk::db::imports::Trigger;
use orderdesk::jobs::ProcessId;

fn owner() -> HistoryActor {
    HistoryActor::User("owner@example.jp".into())
}

fn cancel(reason: u16) -> ChangeRequest {
    ChangeRequest { cancel_reason: Some(reason), ..ChangeRequest::to(Cancelled) }
}

fn to(target: InternalStatus) -> ChangeRequest {
    ChangeRequest::to(target)
}

fn ship_input(invoice: &str) -> ShipInput {
    ShipInput {
        company_code: "1001".into(),
        invoice_number: invoice.into(),
        ship_date: NaiveDate::from_ymd_opt(2026, 11, 30).unwrap(),
        ship_url: String::new(),
    }
}

fn ship(invoice: &str) -> ChangeRequest {
    // Generated orders include unpaid 銀行振込: these tests are about pushes, not payment.
    ChangeRequest { ship: Some(ship_input(invoice)), unpaid_confirmed: true, ..ChangeRequest::to(Shipped) }
}

/// A complete request for any target (reason and ship input where needed).
fn full(target: InternalStatus) -> ChangeRequest {
    match target {
        Cancelled => cancel(210),
        Shipped => ship("9999-0001"),
        t => to(t),
    }
}

/// A shop whose app runs no drainer or scheduler of its own: the test drains.
async fn quiet_shop(backend: Backend, adjust: impl FnOnce(&mut orderdesk::config::Config)) -> Shop {
    shop(backend, |c| {
        c.scheduler = false;
        adjust(c);
    })
    .await
}

impl Shop {
    async fn change(&self, pk: OrderPk, req: &ChangeRequest) -> Result<Plan, Refusal> {
        changes::change_status(
            &self.app.db,
            &OrderScope::account(self.account),
            pk,
            req,
            &owner(),
            orderdesk::db::now(),
        )
        .await
        .unwrap()
    }

    async fn import(&self) {
        assert_eq!(self.run_once(Trigger::Manual).await, Ending::Done);
    }

    async fn row(&self, order_id: &str) -> OrderRow {
        let ours = self.ours().await;
        let stored: Vec<String> = ours.iter().map(|(r, _)| r.order_id.clone()).collect();
        match ours.into_iter().map(|(r, _)| r).find(|r| r.order_id == order_id) {
            Some(r) => r,
            None => panic!("{order_id} not stored (stored: {stored:?}; at Yahoo: {:?})", self.yahoo(order_id).await),
        }
    }

    async fn yahoo(&self, order_id: &str) -> Order {
        self.snapshot(SELLER).await.into_iter().find(|o| o.order_id == order_id).unwrap()
    }

    async fn pushes(&self) -> Vec<PushRow> {
        outbox::of_store(&self.app.db, self.account, self.store).await.unwrap()
    }

    async fn history(&self, pk: OrderPk) -> Vec<String> {
        orders::history(&self.app.db, &orderdesk::domain::scope::OrderScope::account(self.account), pk)
            .await
            .unwrap()
            .into_iter()
            .map(|h| h.message)
            .collect()
    }

    /// A drainer of its own (a second process's, for the outbox).
    fn pusher(&self) -> Pusher {
        Pusher::new(
            self.app.db.clone(),
            self.app.yahoo.clone(),
            ProcessId::new(),
            PushSettings::from_config(&self.app.config),
        )
    }

    /// Waits (up to 30 s) until no push is pending or sending.
    async fn settled(&self) -> Vec<PushRow> {
        for _ in 0..300 {
            let pushes = self.pushes().await;
            if pushes.iter().all(|p| matches!(p.state(), PushState::Done | PushState::Failed)) {
                return pushes;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("pushes did not settle: {:#?}", self.pushes().await);
    }

    async fn fault(&self, api: &str, kind: &str, times: u64, delay_ms: u64) {
        self.sim
            .control("/_sim/faults", json!({ "api": api, "kind": kind, "times": times, "delay_ms": delay_ms }))
            .await;
    }

    async fn counter(&self, name: &str) -> u64 {
        self.sim.get_json("/_sim/counters").await[name].as_u64().unwrap_or(0)
    }
}

/// Orders are made a minute in the past: an import searches up to a few seconds before now.
fn a_minute_ago() -> String {
    (Utc::now() - chrono::Duration::minutes(1)).to_rfc3339()
}

async fn order_with_status(s: &Shop, status: u8) -> String {
    // Seen at Yahoo (処理中, not 新規受付): these tests count the pushes of the change itself.
    let spec = json!({ "order_time": a_minute_ago(), "order_status": status, "is_seen": true, "items": [{ "item_id": "mug", "title": "マグカップ" }] });
    s.sim.order(SELLER, spec).await["order_id"].as_str().unwrap().to_owned()
}

async fn plain_order(s: &Shop) -> String {
    order_with_status(s, 2).await
}

/// A held order at Yahoo: 4101 is released by the review (1 → 2), 2947 confirmed (1 → 3).
async fn held_order(s: &Shop, category: u32) -> String {
    let spec = json!({ "order_time": a_minute_ago(), "items": [{ "item_id": "flower", "title": "注文保留_花", "category_id": category }] });
    s.sim.order(SELLER, spec).await["order_id"].as_str().unwrap().to_owned()
}

async fn pushes_reach_yahoo_in_order_and_write_history(backend: Backend) {
    // The app's own drainer (started with the scheduler, as in every `serve`) does the sending.
    let s = shop(backend, |_| {}).await;
    let cancelled = plain_order(&s).await;
    let on_hold = order_with_status(&s, 3).await;
    let completed = plain_order(&s).await;
    s.import().await;

    // キャンセル with its reason.
    let pk = s.row(&cancelled).await.id;
    let plan = s.change(pk, &cancel(210)).await.unwrap();
    assert_eq!(plan.pushes, vec![Push::Status { status: OrderStatus::Cancelled, cancel_reason: Some(210) }]);
    assert_eq!(s.row(&cancelled).await.internal_status(), Cancelled);
    // 出荷済み of an order Yahoo has as 保留: status 2 first, then ship status 3.
    let hold_pk = s.row(&on_hold).await.id;
    s.change(hold_pk, &to(AwaitingShipment)).await.unwrap();
    let plan = s.change(hold_pk, &ship("1234-5678")).await.unwrap();
    assert_eq!(plan.pushes.len(), 2, "{plan:?}");
    // 完了 after shipping: IsPointFix.
    let done_pk = s.row(&completed).await.id;
    s.change(done_pk, &ship("2222-3333")).await.unwrap();
    s.change(done_pk, &to(Completed)).await.unwrap();

    let pushes = s.settled().await;
    assert_eq!(pushes.len(), 5, "{pushes:#?}");
    assert!(pushes.iter().all(|p| p.state() == PushState::Done && p.attempts == 1), "{pushes:#?}");

    let y = s.yahoo(&cancelled).await;
    assert_eq!((y.order_status, y.cancel_reason), (4, Some(210)));
    let y = s.yahoo(&on_hold).await;
    assert_eq!((y.order_status, y.ship_status), (2, 3));
    assert_eq!((y.ship_company_code.as_str(), y.ship_invoice_number1.as_str()), ("1001", "1234-5678"));
    assert_eq!(y.ship_date, NaiveDate::from_ymd_opt(2026, 11, 30));
    let y = s.yahoo(&completed).await;
    assert_eq!((y.order_status, y.ship_status, y.is_point_fix), (5, 3, true));

    // In sequence: the ship status went out after the status it needs.
    let of_hold: Vec<&PushRow> = pushes.iter().filter(|p| p.order_pk == hold_pk).collect();
    assert_eq!(of_hold.iter().map(|p| p.seq).collect::<Vec<_>>(), vec![1, 2]);
    assert!(of_hold[0].done_at <= of_hold[1].done_at);

    // What Yahoo was told is in the history and in the order's view.
    let history = s.history(pk).await;
    assert!(
        history.iter().any(|h| h == "Yahoo!に送信しました: ステータス「キャンセル」（キャンセル理由: 欠品）"),
        "{history:?}"
    );
    assert!(history.iter().any(|h| h.contains("キャンセル理由: 欠品") && h.starts_with("ステータスを")), "{history:?}");
    let history = s.history(hold_pk).await;
    assert!(history.iter().any(|h| h == "Yahoo!に送信しました: ステータス「処理中」"), "{history:?}");
    assert!(
        history.iter().any(|h| h
            == "Yahoo!に送信しました: 出荷ステータス「出荷済み」（配送会社: ヤマト運輸、伝票番号: 1234-5678、出荷日: 2026-11-30）"),
        "{history:?}"
    );
    let view = outbox::for_order(&s.app.db, s.account, done_pk).await.unwrap();
    assert_eq!(
        view.iter().map(|v| (v.what.as_str(), v.state_label)).collect::<Vec<_>>(),
        vec![
            ("出荷ステータス「出荷済み」（配送会社: ヤマト運輸、伝票番号: 2222-3333、出荷日: 2026-11-30）", "完了"),
            ("ステータス「完了」（ポイント確定）", "完了"),
        ]
    );
    assert!(view.iter().all(|v| v.order_id == completed && v.done_at.is_some()));
    // Another account sees none of it.
    assert!(
        outbox::for_order(&s.app.db, orderdesk::domain::AccountId(s.account.0 + 1000), done_pk)
            .await
            .unwrap()
            .is_empty()
    );

    // Warnings are kept with the push and named in the history.
    let warned = plain_order(&s).await;
    s.import().await;
    s.fault("orderStatusChange", "warning", 1, 0).await;
    let warned_pk = s.row(&warned).await.id;
    s.change(warned_pk, &cancel(100)).await.unwrap();
    s.settled().await;
    let view = outbox::for_order(&s.app.db, s.account, warned_pk).await.unwrap();
    assert!(view[0].message.contains("警告 sim-w01: シミュレーターの警告です（1件目）"), "{view:?}");
    let history = s.history(warned_pk).await;
    assert!(history.iter().any(|h| h.starts_with("Yahoo!に送信しました") && h.contains("sim-w02")), "{history:?}");
}

async fn a_refusal_is_shown_as_failed_with_yahoos_message(backend: Backend) {
    let s = quiet_shop(backend, |_| {}).await;
    let refused = order_with_status(&s, 3).await;
    s.import().await;
    let pk = s.row(&refused).await.id;
    // Another account, or staff limited to other stores, cannot change it: nothing is written.
    let now = orderdesk::db::now();
    let elsewhere = [
        OrderScope::account(orderdesk::domain::AccountId(s.account.0 + 1000)),
        OrderScope { stores: Some(vec![]), ..OrderScope::account(s.account) },
        OrderScope { stores: Some(vec![orderdesk::domain::StoreId(s.store.0 + 1)]), ..OrderScope::account(s.account) },
    ];
    for scope in &elsewhere {
        let r = changes::change_status(&s.app.db, scope, pk, &cancel(210), &owner(), now).await.unwrap();
        assert_eq!(r, Err(Refusal::NotFound), "{scope:?}");
    }
    assert_eq!(s.row(&refused).await.internal_status(), New);
    assert!(s.pushes().await.is_empty());
    // Yahoo answers Status NG to the status push: the ship push that needed it is not sent.
    s.fault("orderStatusChange", "status_ng", 1, 0).await;
    s.change(pk, &ship("5555")).await.unwrap();
    s.app.pusher.drain().await.unwrap();
    let pushes = s.pushes().await;
    assert_eq!(pushes.iter().map(|p| p.state()).collect::<Vec<_>>(), vec![PushState::Failed, PushState::Failed]);
    assert!(pushes[0].last_message.starts_with("Yahoo!がエラーを返しました"), "{pushes:#?}");
    assert_eq!(pushes[1].last_message, outbox::DEPENDENT_FAILED);
    assert_eq!(s.counter("calls.orderShipStatusChange").await, 0, "nothing after a refused push is sent");
    let history = s.history(pk).await;
    assert!(
        history
            .iter()
            .any(|h| h
                .starts_with("Yahoo!が送信を受け付けませんでした: ステータス「処理中」。Yahoo!がエラーを返しました")),
        "{history:?}"
    );
    // Visible where people look: the failing list and the count per store.
    let failing = outbox::failing(&s.app.db, &OrderScope::account(s.account), 10).await.unwrap();
    assert_eq!(failing.len(), 2);
    assert!(failing.iter().all(|f| f.state_label == "失敗" && f.order_id == refused));
    assert_eq!(outbox::failed_per_store(&s.app.db, s.account).await.unwrap(), vec![(s.store, 2)]);
    let other_store =
        OrderScope { stores: Some(vec![orderdesk::domain::StoreId(s.store.0 + 1)]), ..OrderScope::account(s.account) };
    assert!(outbox::failing(&s.app.db, &other_store, 10).await.unwrap().is_empty(), "staff of another store see none");
    // Sent again by a person, in order, both go through.
    let now = orderdesk::db::now();
    assert!(
        !outbox::retry(&s.app.db, orderdesk::domain::AccountId(s.account.0 + 1000), pushes[0].id, now).await.unwrap()
    );
    assert!(outbox::retry(&s.app.db, s.account, pushes[0].id, now).await.unwrap(), "the later one follows it");
    assert!(s.pushes().await.iter().all(|p| p.state() == PushState::Pending && p.attempts == 0));
    s.app.pusher.drain().await.unwrap();
    assert!(s.pushes().await.iter().all(|p| p.state() == PushState::Done));
    let y = s.yahoo(&refused).await;
    assert_eq!((y.order_status, y.ship_status), (2, 3));

    // Only the rest of the refused change fails with it: a cancel asked for afterwards is sent.
    let later = order_with_status(&s, 3).await;
    s.import().await;
    let pk = s.row(&later).await.id;
    s.change(pk, &ship("6666")).await.unwrap();
    s.change(pk, &cancel(230)).await.unwrap();
    s.fault("orderStatusChange", "status_ng", 1, 0).await;
    s.app.pusher.drain().await.unwrap();
    let view = outbox::for_order(&s.app.db, s.account, pk).await.unwrap();
    assert_eq!(view.iter().map(|v| v.state_label).collect::<Vec<_>>(), vec!["失敗", "失敗", "完了"], "{view:#?}");
    assert_eq!(view[1].message, outbox::DEPENDENT_FAILED);
    assert_eq!(s.yahoo(&later).await.order_status, 4);
}

async fn a_temporary_fault_is_retried_until_it_succeeds(backend: Backend) {
    let s = quiet_shop(backend, |_| {}).await;
    let id = plain_order(&s).await;
    s.import().await;
    let pk = s.row(&id).await.id;
    // More 503s than the client retries within one call: the outbox retries with backoff.
    s.fault("orderStatusChange", "error503", 6, 0).await;
    s.change(pk, &cancel(120)).await.unwrap();
    let pusher = s.pusher();
    let mut rounds = 0;
    loop {
        pusher.drain().await.unwrap();
        let p = s.pushes().await.remove(0);
        match p.state() {
            PushState::Done => break,
            PushState::Pending => {
                assert!(p.last_message.contains("一時的に接続できませんでした"), "{p:?}");
                assert!(p.next_attempt_at > p.updated_at - chrono::Duration::seconds(1));
            }
            state => panic!("{state:?}: {p:?}"),
        }
        rounds += 1;
        assert!(rounds < 200, "the push was not retried to success");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let p = s.pushes().await.remove(0);
    assert!(p.attempts >= 2, "retried: {p:?}");
    assert_eq!(s.yahoo(&id).await.order_status, 4);
    assert_eq!(s.counter("faults.orderStatusChange.error503").await, 6);
}

async fn two_drainers_never_send_a_push_twice(backend: Backend) {
    let s = quiet_shop(backend, |_| {}).await;
    let mut ids = Vec::new();
    for _ in 0..24 {
        ids.push(order_with_status(&s, 3).await);
    }
    s.import().await;
    // 24 cancels and 24 × (status 2, ship 3).
    for (i, id) in ids.iter().enumerate() {
        let pk = s.row(id).await.id;
        if i % 2 == 0 {
            s.change(pk, &cancel(230)).await.unwrap();
        } else {
            s.change(pk, &ship(&format!("1000-{i:04}"))).await.unwrap();
        }
    }
    s.fault("orderStatusChange", "delay", 1_000_000, 20).await;
    let (a, b) = (Arc::new(s.pusher()), Arc::new(s.pusher()));
    assert_ne!(a.owner(), b.owner());
    let (ra, rb) = tokio::join!(
        async {
            let mut n = 0;
            while s.pushes().await.iter().any(|p| p.state() != PushState::Done) {
                n += a.drain().await.unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            n
        },
        async {
            let mut n = 0;
            while s.pushes().await.iter().any(|p| p.state() != PushState::Done) {
                n += b.drain().await.unwrap();
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            n
        }
    );
    let pushes = s.pushes().await;
    assert_eq!(pushes.len(), 36);
    assert_eq!(ra + rb, 36, "each push handled once ({ra} + {rb})");
    assert!(pushes.iter().all(|p| p.state() == PushState::Done && p.attempts == 1), "{pushes:#?}");
    assert_eq!(s.counter("calls.orderStatusChange").await, 24, "one status call per status push");
    assert_eq!(s.counter("calls.orderShipStatusChange").await, 12);
    for (i, id) in ids.iter().enumerate() {
        let y = s.yahoo(id).await;
        if i % 2 == 0 { assert_eq!(y.order_status, 4) } else { assert_eq!((y.order_status, y.ship_status), (2, 3)) }
    }
}

async fn a_drainer_killed_mid_push_is_taken_over(backend: Backend) {
    let s = quiet_shop(backend, |c| c.import_lease_secs = 2).await;
    let id = plain_order(&s).await;
    s.import().await;
    let pk = s.row(&id).await.id;
    s.change(pk, &cancel(160)).await.unwrap();
    // The call hangs at Yahoo; the drainer is killed while it waits.
    s.fault("orderStatusChange", "delay", 1, 4000).await;
    let first = Arc::new(s.pusher());
    let task = tokio::spawn({
        let first = first.clone();
        async move { first.drain().await }
    });
    for _ in 0..100 {
        if s.counter("calls.orderStatusChange").await == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let p = s.pushes().await.remove(0);
    assert_eq!((p.state(), p.lease_owner.as_deref()), (PushState::Sending, Some(first.owner())));
    task.abort();
    let _ = task.await;

    // Another process takes it over once the lease has run out, and the order ends right.
    let second = s.pusher();
    assert_eq!(second.drain().await.unwrap(), 0, "not before the lease runs out");
    for _ in 0..100 {
        second.drain().await.unwrap();
        if s.pushes().await[0].state() == PushState::Done {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let p = s.pushes().await.remove(0);
    assert_eq!(p.state(), PushState::Done, "{p:?}");
    assert_eq!(p.attempts, 2);
    let y = s.yahoo(&id).await;
    assert_eq!((y.order_status, y.cancel_reason), (4, Some(160)));
    assert_eq!(s.row(&id).await.internal_status(), Cancelled);
}

async fn a_push_sent_again_after_yahoo_took_it_counts_as_done(backend: Backend) {
    let s = quiet_shop(backend, |_| {}).await;
    let cancelled = plain_order(&s).await;
    let shipped = plain_order(&s).await;
    s.import().await;
    let (c, sh) = (s.row(&cancelled).await.id, s.row(&shipped).await.id);
    s.change(c, &cancel(210)).await.unwrap();
    s.change(sh, &ship("7777")).await.unwrap();
    s.app.pusher.drain().await.unwrap();
    assert!(s.pushes().await.iter().all(|p| p.state() == PushState::Done));
    // As if the process died after Yahoo took them and before it wrote so: claimed by a dead
    // owner whose lease ran out.
    orderdesk::with_pool!(&s.app.db, |p| {
        sqlx::query("update order_push set state = 'sending', lease_owner = 'dead', lease_until = $1, done_at = null")
            .bind(Utc::now() - chrono::Duration::seconds(5))
            .execute(p)
            .await
            .map(|_| ())
    })
    .unwrap();
    s.app.pusher.drain().await.unwrap();
    let pushes = s.pushes().await;
    assert!(pushes.iter().all(|p| p.state() == PushState::Done && p.attempts == 2), "{pushes:#?}");
    // Neither was sent again: orderInfo showed both done (issue 27: a ship push re-sent after a
    // crash was applied twice).
    assert_eq!(s.counter("calls.orderStatusChange").await, 1);
    assert_eq!(s.counter("calls.orderShipStatusChange").await, 1);
    let history = s.history(c).await;
    assert!(
        history.iter().any(|h| h
            == "Yahoo!ではすでに反映済みでした（前回の送信が届いていました）: ステータス「キャンセル」（キャンセル理由: 欠品）"),
        "{history:?}"
    );
    assert_eq!(s.yahoo(&cancelled).await.order_status, 4);
    assert_eq!(s.yahoo(&shipped).await.ship_status, 3);
}

async fn emergency_stop_halts_pushes_until_resumed(backend: Backend) {
    let s = quiet_shop(backend, |_| {}).await;
    let a = plain_order(&s).await;
    let b = plain_order(&s).await;
    s.import().await;
    let now = orderdesk::db::now();
    assert!(
        imports::set_store_stop(
            &s.app.db,
            s.account,
            s.store,
            Some("テスト"),
            now,
            &orderdesk::db::audit::Note::new(
                s.account,
                orderdesk::db::audit::Actor::System,
                orderdesk::db::audit::Action::EmergencyStop,
                "テスト",
                None
            )
        )
        .await
        .unwrap()
    );
    s.change(s.row(&a).await.id, &cancel(210)).await.unwrap();
    assert_eq!(s.app.pusher.drain().await.unwrap(), 0, "nothing is sent while the store is stopped");
    assert!(
        imports::set_store_stop(
            &s.app.db,
            s.account,
            s.store,
            None,
            now,
            &orderdesk::db::audit::Note::new(
                s.account,
                orderdesk::db::audit::Actor::System,
                orderdesk::db::audit::Action::EmergencyResume,
                "テスト",
                None
            )
        )
        .await
        .unwrap()
    );
    imports::set_account_stop(
        &s.app.db,
        s.account,
        Some("テスト"),
        now,
        &orderdesk::db::audit::Note::new(
            s.account,
            orderdesk::db::audit::Actor::System,
            orderdesk::db::audit::Action::EmergencyStop,
            "テスト",
            None,
        ),
    )
    .await
    .unwrap();
    s.change(s.row(&b).await.id, &cancel(210)).await.unwrap();
    assert_eq!(s.app.pusher.drain().await.unwrap(), 0, "nothing is sent while the account is stopped");
    assert_eq!(s.counter("calls.orderStatusChange").await, 0);
    assert_eq!(s.yahoo(&a).await.order_status, 2);
    imports::set_account_stop(
        &s.app.db,
        s.account,
        None,
        now,
        &orderdesk::db::audit::Note::new(
            s.account,
            orderdesk::db::audit::Actor::System,
            orderdesk::db::audit::Action::EmergencyResume,
            "テスト",
            None,
        ),
    )
    .await
    .unwrap();
    assert_eq!(s.app.pusher.drain().await.unwrap(), 2, "resuming sends what waited");
    assert_eq!((s.yahoo(&a).await.order_status, s.yahoo(&b).await.order_status), (4, 4));
}

async fn an_auth_failure_waits_until_someone_acts(backend: Backend) {
    let s = quiet_shop(backend, |_| {}).await;
    let id = plain_order(&s).await;
    s.import().await;
    s.change(s.row(&id).await.id, &cancel(210)).await.unwrap();
    s.fault("orderStatusChange", "insufficient_scope", 1, 0).await;
    let settings = PushSettings { auth_wait: Duration::from_millis(100), ..PushSettings::from_config(&s.app.config) };
    let pusher = Pusher::new(s.app.db.clone(), s.app.yahoo.clone(), ProcessId::new(), settings);
    assert_eq!(pusher.drain().await.unwrap(), 1);
    let p = s.pushes().await.remove(0);
    assert_eq!(p.state(), PushState::Pending, "{p:?}");
    assert!(p.last_message.contains("認証が直るまで送信を待っています"), "{p:?}");
    let state = imports::state(&s.app.db, s.account, s.store).await.unwrap();
    assert_eq!(state.blocked_reason.as_deref(), Some("insufficient_scope"), "the store page diagnoses it");
    // Waiting: nothing is sent until someone acts on the store (reconnects, saves the key).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(pusher.drain().await.unwrap(), 0);
    assert_eq!(s.yahoo(&id).await.order_status, 2);
    orderdesk::with_pool!(&s.app.db, |p| {
        sqlx::query("update store set updated_at = $2 where id = $1")
            .bind(s.store)
            .bind(Utc::now())
            .execute(p)
            .await
            .map(|_| ())
    })
    .unwrap();
    assert_eq!(pusher.drain().await.unwrap(), 1);
    assert_eq!(s.pushes().await[0].state(), PushState::Done);
    assert_eq!(s.yahoo(&id).await.order_status, 4);
}

/// Stores a held order of each kind: one under review (1) and one confirmed as fraud (3).
async fn held_orders(s: &Shop) -> Vec<String> {
    let confirmed = held_order(s, 2947).await;
    s.sim.control("/_sim/review", json!({})).await;
    // The review publishes it now; an import searches up to two seconds before now (in whole
    // seconds, on a clock measured to the second).
    tokio::time::sleep(Duration::from_millis(4000)).await;
    let reviewing = held_order(s, 4101).await;
    assert_eq!(s.yahoo(&confirmed).await.fraud_hold_status, 3);
    assert_eq!(s.yahoo(&reviewing).await.fraud_hold_status, 1);
    vec![reviewing, confirmed]
}

async fn set_store(db: &Db, store: orderdesk::domain::StoreId, sql_set: &str) {
    let sql = format!("update store set {sql_set} where id = $1");
    orderdesk::with_pool!(db, |p| sqlx::query(&sql).bind(store).execute(p).await.map(|_| ())).unwrap();
}

async fn held_orders_are_refused_on_every_path_but_cancel(backend: Backend) {
    let s = quiet_shop(backend, |_| {}).await;

    // change_status (the list's bulk action and the detail page call it).
    let held = held_orders(&s).await;
    s.import().await;
    for id in &held {
        let row = s.row(id).await;
        assert!(row.fraud_hold().is_held());
        let before = s.history(row.id).await.len();
        for target in InternalStatus::ALL.into_iter().filter(|t| *t != Cancelled) {
            assert_eq!(s.change(row.id, &full(target)).await, Err(Refusal::FraudHold), "{id} → {target:?}");
        }
        assert_eq!(s.row(id).await.internal_status(), New, "nothing written");
        assert_eq!(s.history(row.id).await.len(), before, "no history written");
        let plan = s.change(row.id, &cancel(170)).await.unwrap();
        assert_eq!(plan.pushes, vec![Push::Status { status: OrderStatus::Cancelled, cancel_reason: Some(170) }]);
        assert!(!s.row(id).await.cancel_flagged, "a cancel clears the 不正確定 flag");
    }
    s.app.pusher.drain().await.unwrap();
    for id in &held {
        assert_eq!(s.yahoo(id).await.order_status, 4, "Yahoo took the cancel of a held order");
    }
    assert!(s.pushes().await.iter().all(|p| p.state() == PushState::Done));

    // take_in (the inbox): held orders stay, and can be cancelled from there.
    set_store(&s.app.db, s.store, "auto_import_inbox = true").await;
    let held = held_orders(&s).await;
    assert_eq!(s.run_once(Trigger::Auto).await, Ending::Done);
    let pks: Vec<String> = {
        let mut v = Vec::new();
        for id in &held {
            let row = s.row(id).await;
            assert_eq!(row.internal_status(), AutoImportInbox);
            v.push(row.id.to_string());
        }
        v
    };
    let fields: Vec<(&str, &str)> = pks.iter().map(|p| ("order", p.as_str())).collect();
    let taken = s.owner.submit("/orders?status=auto_import_inbox", "/orders/take-in", &fields).await;
    assert_eq!(taken.status, StatusCode::SEE_OTHER);
    let after = s.owner.get(taken.location()).await;
    assert!(after.body.contains(FRAUD_HOLD_REFUSAL), "{}", after.body);
    for id in &held {
        let row = s.row(id).await;
        assert_eq!(row.internal_status(), AutoImportInbox, "{id} stays in the inbox");
        for target in InternalStatus::ALL.into_iter().filter(|t| *t != Cancelled) {
            assert_eq!(s.change(row.id, &full(target)).await, Err(Refusal::FraudHold));
        }
        s.change(row.id, &cancel(170)).await.unwrap();
    }

    // The import's automatic status change: a held order goes to 失敗, nothing is pushed.
    set_store(
        &s.app.db,
        s.store,
        "auto_import_inbox = false, auto_status_change_enabled = true, auto_status_change_target = 'awaiting_shipment'",
    )
    .await;
    let held = held_orders(&s).await;
    let plain = plain_order(&s).await;
    assert_eq!(s.run_once(Trigger::Auto).await, Ending::Done);
    assert_eq!(s.row(&plain).await.internal_status(), AwaitingShipment);
    for id in &held {
        let row = s.row(id).await;
        assert_eq!(row.internal_status(), Failed, "{id}");
        let history = s.history(row.id).await;
        assert!(history.iter().any(|h| h == orderdesk::import::rules::AUTO_CHANGE_REFUSED), "{history:?}");
        for target in InternalStatus::ALL.into_iter().filter(|t| *t != Cancelled) {
            assert_eq!(s.change(row.id, &full(target)).await, Err(Refusal::FraudHold));
        }
        s.change(row.id, &cancel(170)).await.unwrap();
    }
    s.app.pusher.drain().await.unwrap();
    let pushes = s.pushes().await;
    assert_eq!(pushes.len(), 6);
    assert!(
        pushes
            .iter()
            .all(|p| p.push() == Some(Push::Status { status: OrderStatus::Cancelled, cancel_reason: Some(170) }))
    );
    assert!(pushes.iter().all(|p| p.state() == PushState::Done), "{pushes:#?}");
}

/// Random sequences of new orders (plain and held), imports, Yahoo's review (which releases
/// 4101 orders, 1 → 2, and confirms 2947 orders, 1 → 3), status changes of random orders to
/// random targets, and drains. With the restriction on, an order our database holds as 1 or
/// 3 is never in a status other than its imported one (新規受付) or キャンセル, and nothing but
/// a cancel is ever queued or sent for an order while it is held.
async fn the_fraud_hold_rule_holds_over_random_sequences(backend: Backend) {
    let s = quiet_shop(backend, |_| {}).await;
    let seeds: u64 = std::env::var("PUSH_PROPERTY_SEEDS").ok().and_then(|v| v.parse().ok()).unwrap_or(12);
    let targets = InternalStatus::ALL.into_iter().filter(|t| *t != AutoImportInbox && *t != Failed).collect::<Vec<_>>();
    // Push ids queued while their order was held in our database.
    let mut queued_while_held = std::collections::HashSet::new();
    for seed in 0..seeds {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        for step in 0..30 {
            match rng.gen_range(0..10) {
                0 => {
                    plain_order(&s).await;
                }
                1 => {
                    held_order(&s, if rng.gen_bool(0.5) { 4101 } else { 2947 }).await;
                }
                2 => {
                    s.sim.control("/_sim/review", json!({})).await;
                }
                3 => s.import().await,
                4 => {
                    s.app.pusher.drain().await.unwrap();
                }
                _ => {
                    let ours = s.ours().await;
                    let Some((row, _)) = ours.choose(&mut rng) else { continue };
                    let target = *targets.choose(&mut rng).unwrap();
                    let held = row.fraud_hold().is_held();
                    let before = s.pushes().await.len();
                    let result = s.change(row.id, &full(target)).await;
                    if held && target != Cancelled {
                        assert_eq!(result, Err(Refusal::FraudHold), "seed {seed} step {step}: {target:?}");
                    }
                    if held {
                        let pushes = s.pushes().await;
                        for p in &pushes[before..] {
                            queued_while_held.insert(p.id);
                            assert_eq!(
                                p.push().map(|p| matches!(p, Push::Status { status: OrderStatus::Cancelled, .. })),
                                Some(true),
                                "seed {seed} step {step}: only a cancel is queued for a held order: {p:?}"
                            );
                        }
                    }
                }
            }
            for (row, _) in s.ours().await {
                if row.fraud_hold().is_held() {
                    assert!(
                        matches!(row.internal_status(), New | Cancelled),
                        "seed {seed} step {step}: held {} is {:?}",
                        row.order_id,
                        row.internal_status()
                    );
                }
            }
        }
    }
    s.app.pusher.drain().await.unwrap();
    // Every order Yahoo still holds (1 or 3) got nothing but cancels.
    let snapshot = s.snapshot(SELLER).await;
    let ours = s.ours().await;
    let pushes = s.pushes().await;
    for y in snapshot.iter().filter(|o| o.fraud_hold_status == 1 || o.fraud_hold_status == 3) {
        let Some((row, _)) = ours.iter().find(|(r, _)| r.order_id == y.order_id) else { continue };
        for p in pushes.iter().filter(|p| p.order_pk == row.id) {
            assert!(
                matches!(p.push(), Some(Push::Status { status: OrderStatus::Cancelled, .. })),
                "{} is held at Yahoo and got {p:?}",
                y.order_id
            );
        }
    }
    // Yahoo never had to refuse a change for a held order.
    assert!(pushes.iter().all(|p| !p.last_message.contains(FRAUD_HOLD_REFUSAL)), "{pushes:#?}");
    assert!(!queued_while_held.is_empty() || seeds < 3, "the sequences did cancel held orders");
    assert!(ours.len() > 20, "the sequences made orders: {}", ours.len());
}

/// Yahoo made the change, and the answer never came back (issue 27): the client does not send
/// a change again by itself, and the outbox's next try reads the order first and finds it
/// done. Before, the client's own retry made the change a second time.
async fn a_change_whose_answer_was_lost_is_made_once(backend: Backend) {
    let s = quiet_shop(backend, |_| {}).await;
    let (a, b) = (plain_order(&s).await, plain_order(&s).await);
    s.import().await;
    let (pa, pb) = (s.row(&a).await.id, s.row(&b).await.id);
    s.change(pa, &ship("1111-2222-3333")).await.unwrap();
    s.change(pb, &cancel(210)).await.unwrap();
    s.fault("orderShipStatusChange", "lost_answer", 1, 0).await;
    s.fault("orderStatusChange", "lost_answer", 1, 0).await;
    for _ in 0..100 {
        s.app.pusher.drain().await.unwrap();
        if s.pushes().await.iter().all(|p| p.state() == PushState::Done) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pushes = s.pushes().await;
    assert!(pushes.iter().all(|p| p.state() == PushState::Done && p.attempts == 2), "{pushes:#?}");
    assert_eq!(s.counter("lost.orderShipStatusChange").await, 1, "the first answer was lost");
    assert_eq!(s.counter("done.orderShipStatusChange").await, 1, "made once at Yahoo");
    assert_eq!(s.counter("calls.orderShipStatusChange").await, 1, "and not sent again");
    assert_eq!(s.counter("done.orderStatusChange").await, 1, "made once at Yahoo");
    let y = s.yahoo(&a).await;
    assert_eq!((y.ship_status, y.ship_invoice_number1.as_str()), (3, "1111-2222-3333"));
    assert_eq!(s.yahoo(&b).await.order_status, 4);
    assert!(s.history(pa).await.iter().any(|h| h.contains("前回の送信が届いていました")));
}

/// Real `serve` processes killed with SIGKILL while they drain ship pushes, some of them while
/// Yahoo has made the change and its answer is on its way: every push reaches Yahoo and none is
/// made twice.
async fn pushes_under_kill_reach_yahoo_once_each(backend: Backend) {
    let s = quiet_shop(backend, |c| c.import_lease_secs = 1).await;
    let mut ids = Vec::new();
    for _ in 0..40 {
        ids.push(plain_order(&s).await);
    }
    s.import().await;
    for (i, id) in ids.iter().enumerate() {
        let pk = s.row(id).await.id;
        s.change(pk, &ship(&format!("5000-0000-{i:04}"))).await.unwrap();
    }
    // Half the calls are made at Yahoo and their answer lost 500 ms later: kills land between
    // the change and its answer. The other half wait 500 ms before the change.
    s.sim
        .control(
            "/_sim/faults",
            json!({ "api": "orderShipStatusChange", "kind": "lost_answer", "share": 0.5, "delay_ms": 500 }),
        )
        .await;
    s.sim
        .control(
            "/_sim/faults",
            json!({ "api": "orderShipStatusChange", "kind": "delay", "share": 1.0, "delay_ms": 500 }),
        )
        .await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(27);
    let mut kills = 0;
    for _ in 0..40 {
        if s.pushes().await.iter().all(|p| p.state() == PushState::Done) {
            break;
        }
        let mut serve = crate::import::ServeProcess::start(&s.app, 1);
        tokio::time::sleep(Duration::from_millis(rng.gen_range(300..1500))).await;
        serve.kill();
        kills += 1;
    }
    // The last one is let finish.
    let _last = crate::import::ServeProcess::start(&s.app, 1);
    for _ in 0..600 {
        if s.pushes().await.iter().all(|p| p.state() == PushState::Done) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let pushes = s.pushes().await;
    assert!(pushes.iter().all(|p| p.state() == PushState::Done), "{pushes:#?}");
    assert!(kills >= 3, "the drainers were killed {kills} times");
    let lost = s.counter("lost.orderShipStatusChange").await;
    assert!(lost >= 3, "answers were lost after the change was made ({lost})");
    // Made once each: one successful change per push at Yahoo, every order shipped with its number.
    let made = s.counter("done.orderShipStatusChange").await;
    assert_eq!(
        made,
        ids.len() as u64,
        "{made} ship calls for {} pushes ({kills} kills, {lost} lost answers)",
        ids.len()
    );
    for (i, id) in ids.iter().enumerate() {
        let y = s.yahoo(id).await;
        assert_eq!((y.ship_status, y.ship_invoice_number1.clone()), (3, format!("5000-0000-{i:04}")));
    }
}

/// Issue 26: a push that failed shows the 受付番号 of the request that asked for it (the id the
/// merchant's browser got as `x-request-id`, on every log line of that request and of the
/// push), where support looks at a store's failures.
async fn a_failed_push_shows_the_request_that_asked_for_it(backend: Backend) {
    let s = quiet_shop(backend, |_| {}).await;
    let id = plain_order(&s).await;
    s.import().await;
    let pk = s.row(&id).await.id;
    s.fault("orderStatusChange", "status_ng", 1, 0).await;
    let path = format!("/orders/{pk}");
    let changed =
        s.owner.submit(&path, &format!("{path}/status"), &[("target", "cancelled"), ("cancel_reason", "210")]).await;
    assert_eq!(changed.status, StatusCode::SEE_OTHER, "{}", changed.body);
    let asked = changed.headers["x-request-id"].to_str().unwrap().to_owned();
    s.app.pusher.drain().await.unwrap();
    assert_eq!(s.pushes().await[0].request_id.as_deref(), Some(asked.as_str()));
    let page = s.owner.get(&path).await;
    assert_eq!(page.select_text("tr.push-失敗 .request-id").join(""), format!("受付番号 {asked}"), "{}", page.body);
}

on_both_backends!(
    a_failed_push_shows_the_request_that_asked_for_it,
    a_change_whose_answer_was_lost_is_made_once,
    pushes_under_kill_reach_yahoo_once_each,
    pushes_reach_yahoo_in_order_and_write_history,
    a_refusal_is_shown_as_failed_with_yahoos_message,
    a_temporary_fault_is_retried_until_it_succeeds,
    two_drainers_never_send_a_push_twice,
    a_drainer_killed_mid_push_is_taken_over,
    a_push_sent_again_after_yahoo_took_it_counts_as_done,
    emergency_stop_halts_pushes_until_resumed,
    an_auth_failure_waits_until_someone_acts,
    held_orders_are_refused_on_every_path_but_cancel,
    the_fraud_hold_rule_holds_over_random_sequences,
);
