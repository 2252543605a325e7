//! Notifications and buyer mail (issue 29), received by a real SMTP server (aiosmtpd) and read
//! back as a mail client would: every kind of merchant notification raised from the real
//! event (failed imports and pushes through the simulator's faults, stock Yahoo refused, a
//! store's authorization and key running out), folded per hour, chosen per user (staff scope
//! and masking), the daily digest, and the store's 発送連絡 and お知らせメール with its own
//! sender name and Reply-To, never for a held order.

use chrono::{Duration, Utc};
use orderdesk::{
    db::{
        changes,
        notify::{NewNotice, raise},
        orders::HistoryActor,
    },
    domain::{mail::MailKind, scope::OrderScope, status::ChangeRequest, store::InternalStatus},
    notify::Notifier,
};
use reqwest::StatusCode;
use serde_json::json;

use crate::{
    helpers::Backend,
    import::{Shop, shop},
    mail::{Received, SmtpSink},
    shipping::{masked_staff, number, order, pk_of, to_awaiting},
};

/// A shop whose mail goes to `sink`, with no background jobs: the test runs the notifier and
/// the sender.
async fn smtp_shop(backend: Backend, sink: &SmtpSink) -> Shop {
    let url = sink.url();
    shop(backend, move |c| {
        c.scheduler = false;
        c.yahoo_backoff_ms = 1;
        c.mail = orderdesk::config::MailMode::Smtp;
        c.smtp_url = Some(orderdesk::config::Redacted::new(url));
        c.mail_from = "オーダーデスク <desk@example.jp>".into();
    })
    .await
}

fn notifier(s: &Shop) -> Notifier {
    Notifier::new(
        s.app.db.clone(),
        orderdesk::jobs::ProcessId::new(),
        s.app.base.clone(),
        std::time::Duration::from_secs(30),
    )
}

/// Runs the notifier now and sends what it queued. Time passes by moving stored times back
/// ([`hours_pass`]).
async fn notify(s: &Shop) -> orderdesk::notify::Tick {
    let tick = notifier(s).run_at(Utc::now()).await.unwrap();
    while !s.app.mail.send_due(None).await.unwrap().is_empty() {}
    tick
}

fn subjects(got: &[Received]) -> Vec<String> {
    got.iter().map(|m| m.header("Subject").to_owned()).collect()
}

fn find<'a>(got: &'a [Received], part: &str) -> &'a Received {
    got.iter()
        .find(|m| m.header("Subject").contains(part))
        .unwrap_or_else(|| panic!("no 「{part}」 in {:?}", subjects(got)))
}

/// `minutes` pass for the fold: every mail sent so far was sent that much earlier.
async fn minutes_pass(s: &Shop, minutes: i64) {
    orderdesk::with_pool!(&s.app.db, |p| {
        let rows: Vec<(i64, chrono::DateTime<Utc>)> =
            sqlx::query_as("select id, created_at from mail_message").fetch_all(p).await.unwrap();
        for (id, at) in rows {
            sqlx::query("update mail_message set created_at = $2 where id = $1")
                .bind(id)
                .bind(at - Duration::minutes(minutes))
                .execute(p)
                .await
                .unwrap();
        }
        Ok::<(), sqlx::Error>(())
    })
    .unwrap();
}

/// Moves the store's authorization and key expiry (the clock's work, done by hand).
async fn set_store(s: &Shop, authorized_at: chrono::DateTime<Utc>, key_expires: chrono::NaiveDate) {
    orderdesk::with_pool!(&s.app.db, |p| {
        sqlx::query("update store set authorized_at = $1, public_key_expires_on = $2")
            .bind(authorized_at)
            .bind(key_expires)
            .execute(p)
            .await
            .map(|_| ())
    })
    .unwrap();
}

async fn every_kind_of_notification_reaches_the_owner(backend: Backend) {
    let sink = SmtpSink::start().await;
    let s = smtp_shop(backend, &sink).await;
    let now = Utc::now();

    // An order, imported; then a push of it Yahoo refuses for good.
    let (paid, _) = order(&s, json!({ "items": [{ "item_id": "apple", "title": "りんご", "quantity": 1 }] })).await;
    assert_eq!(s.run_once(orderdesk::db::imports::Trigger::Manual).await, orderdesk::import::Ending::Done);
    let pk = pk_of(&s, &paid).await;
    s.sim.control("/_sim/faults", json!({ "api": "orderStatusChange", "kind": "status_ng", "times": 1 })).await;
    let actor = HistoryActor::User("owner@example.jp".into());
    let processing = ChangeRequest { cancel_reason: Some(210), ..ChangeRequest::to(InternalStatus::Cancelled) };
    changes::change_status(&s.app.db, &OrderScope::account(s.account), pk, &processing, &actor, now)
        .await
        .unwrap()
        .unwrap();
    s.app.pusher.drain().await.unwrap();
    // Stock Yahoo refuses.
    crate::import::save_settings(&s, &[("stock_sync_enabled", "on")]).await;
    s.sim.control("/_sim/faults", json!({ "api": "setStock", "kind": "status_ng", "share": 1.0, "times": 5 })).await;
    orderdesk::db::stock::set_manual(&s.app.db, s.account, "fail-1", None, 3, "test", now).await.unwrap();
    s.app.stock.tick().await.unwrap();
    // The automatic import fails three runs in a row (Yahoo answers 500).
    s.sim.control("/_sim/faults", json!({ "api": "orderList", "kind": "error500", "times": 1000 })).await;
    for _ in 0..3 {
        let ending = s.run_once(orderdesk::db::imports::Trigger::Auto).await;
        assert!(matches!(ending, orderdesk::import::Ending::Failed(_)), "{ending:?}");
    }
    // The authorization was given 25 days ago (3 days left), the key runs out in 5 days.
    let today = orderdesk::domain::jst::today(now);
    set_store(&s, now - Duration::days(25) + Duration::hours(1), today + Duration::days(5)).await;

    let tick = notify(&s).await;
    let got = sink.wait_for(tick.mails).await;
    assert_eq!(tick.raised, 5, "{tick:?}: {:?}", subjects(&got));
    let all = subjects(&got);
    for m in &got {
        assert_eq!(m.header("To"), "owner@example.jp");
        assert!(m.body.contains("/account/notifications"), "each says where to change it: {}", m.body);
    }
    let failing = find(&got, "自動取込が続けて失敗");
    assert!(failing.header("Subject").starts_with("【本店】"), "{all:?}");
    assert!(failing.body.contains("3回続けて失敗しました") && failing.body.contains("/imports/"), "{}", failing.body);
    let push = find(&got, "Yahoo!への反映に失敗した注文が1件");
    assert!(
        push.body.contains(&paid) && push.body.contains(&format!("{}/orders/{}", s.app.base, pk.0)),
        "{}",
        push.body
    );
    let stock = find(&got, "在庫連携に失敗した商品が1件");
    assert!(stock.body.contains("fail-1"), "{}", stock.body);
    let auth = find(&got, "認証の期限が近づいています");
    assert!(auth.body.contains("認証の期限まであと3日"), "{}", auth.body);
    let key = find(&got, "公開鍵の期限");
    assert!(key.body.contains("まであと5日") && key.body.contains("/public-key"), "{}", key.body);

    // Seen again: nothing new.
    assert_eq!(notify(&s).await.raised, 0);
    // The import works again: recovered, once.
    s.sim.http.delete(s.sim.url("/_sim/faults")).send().await.unwrap();
    assert_eq!(s.run_once(orderdesk::db::imports::Trigger::Auto).await, orderdesk::import::Ending::Done);
    // The authorization runs out: its own kind.
    set_store(&s, now - Duration::days(29), today + Duration::days(5)).await;
    assert_eq!(notify(&s).await.raised, 2);
    let got = sink.wait_for(7).await;
    let back = find(&got, "自動取込が回復しました");
    assert!(back.body.contains("再び成功しました"), "{}", back.body);
    find(&got, "認証の期限が切れました");
    assert_eq!(notify(&s).await.raised, 0);
}

/// The held-order notices of one kind and store, raised as an import's batch raises them.
async fn hold_notices(s: &Shop, from: usize, n: usize) -> usize {
    let notices: Vec<NewNotice> = (from..from + n)
        .map(|i| NewNotice {
            account: s.account,
            store: Some(s.store),
            kind: MailKind::HoldReleased,
            key: format!("storm-{i:03}"),
            line: format!("storm-{i:03}"),
            link: format!("{}/orders/{i}", s.app.base),
        })
        .collect();
    raise(&s.app.db, &notices, Utc::now()).await.unwrap()
}

async fn a_storm_is_folded_into_one_mail_an_hour(backend: Backend) {
    let sink = SmtpSink::start().await;
    let s = smtp_shop(backend, &sink).await;
    assert_eq!(hold_notices(&s, 0, 3).await, 3);
    assert_eq!(hold_notices(&s, 0, 3).await, 0, "the same events again raise nothing");
    assert_eq!(notify(&s).await.mails, 1);
    let first = sink.wait_for(1).await;
    assert!(first[0].header("Subject").contains("3件"), "{:?}", subjects(&first));
    // 25 more within the hour: they wait, then go as one mail naming 20 and counting 5.
    hold_notices(&s, 3, 25).await;
    minutes_pass(&s, 30).await;
    assert_eq!(notify(&s).await.mails, 0, "within the hour: folded");
    minutes_pass(&s, 31).await;
    assert_eq!(notify(&s).await.mails, 1);
    let got = sink.wait_for(2).await;
    let second = got.iter().find(|m| m.header("Subject").contains("25件")).expect("the folded mail");
    assert!(second.body.contains("storm-003") && second.body.contains("storm-022"), "{}", second.body);
    assert!(!second.body.contains("storm-023") && second.body.contains("他5件"), "{}", second.body);
    minutes_pass(&s, 200).await;
    assert_eq!(notify(&s).await.mails, 0, "nothing is mailed twice");
}

async fn each_user_chooses_and_staff_start_with_nothing(backend: Backend) {
    let sink = SmtpSink::start().await;
    let s = smtp_shop(backend, &sink).await;
    let now = Utc::now();
    // A masked staff member of the store: nothing until they choose.
    let staff = masked_staff(&s).await;
    let page = staff.get("/account/notifications").await;
    assert!(page.body.contains("スタッフは、選ぶまで通知を受け取りません"), "{}", page.body);
    hold_notices(&s, 0, 1).await;
    notify(&s).await;
    let got = sink.wait_for(1).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].header("To"), "owner@example.jp");
    // They choose 不正保留の解除 at once; the owner turns it off and takes the digest only.
    let chosen = staff
        .submit(
            "/account/notifications",
            "/account/notifications",
            &[("hold_released", "immediate"), ("stores", "all")],
        )
        .await;
    assert_eq!(chosen.status, StatusCode::SEE_OTHER, "{}", chosen.body);
    let owner_off = s
        .owner
        .submit(
            "/account/notifications",
            "/account/notifications",
            &[("hold_released", "digest"), ("daily_summary", "on"), ("stores", "all")],
        )
        .await;
    assert_eq!(owner_off.status, StatusCode::SEE_OTHER);
    let page = staff.get("/account/notifications").await;
    assert_eq!(page.select_attr("input[name=hold_released][checked]", "value"), vec!["immediate"]);
    hold_notices(&s, 1, 2).await;
    notify(&s).await;
    let got = sink.wait_for(2).await;
    let to_staff = got.iter().find(|m| m.header("To") == "masked@example.jp").expect("the staff's mail");
    assert!(to_staff.body.contains("storm-001") && to_staff.body.contains("storm-002"));
    // No personal data in it: the buyer's name and address are nowhere (notices carry IDs).
    for secret in ["山田", "東京都", "@yahoo"] {
        assert!(!to_staff.body.contains(secret), "{}", to_staff.body);
    }
    // The owner's come in the digest at 8:00 (Japan time), with the summary: the users were
    // there before the last 8:00.
    orderdesk::with_pool!(&s.app.db, |p| {
        sqlx::query("update app_user set created_at = $1").bind(now - Duration::days(2)).execute(p).await.map(|_| ())
    })
    .unwrap();
    let tick = notify(&s).await;
    assert!(tick.digests >= 1, "{tick:?}");
    let got = sink.wait_for(3).await;
    let digest = find(&got, "日次のお知らせ");
    assert_eq!(digest.header("To"), "owner@example.jp");
    assert!(
        digest.body.contains("本店: 新しい注文") && digest.body.contains("不正保留の解除（2件）"),
        "{}",
        digest.body
    );
    assert!(digest.body.contains("storm-001"), "{}", digest.body);
    // Once a day, whoever runs it again.
    assert_eq!(notify(&s).await.digests, 0);
    // A staff member's choice never reaches a store outside their scope.
    let other = crate::import::connect_store(&s.app, &s.sim, &s.owner, "二号店", "shop-b").await;
    raise(
        &s.app.db,
        &[NewNotice {
            account: s.account,
            store: Some(other),
            kind: MailKind::HoldReleased,
            key: "other-1".into(),
            line: "other-1".into(),
            link: String::new(),
        }],
        now,
    )
    .await
    .unwrap();
    notify(&s).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!sink.received().iter().any(|m| m.header("To") == "masked@example.jp" && m.body.contains("other-1")));
}

async fn the_store_mails_its_buyers_when_a_parcel_ships(backend: Backend) {
    let sink = SmtpSink::start().await;
    let s = smtp_shop(backend, &sink).await;
    let (paid, _) = order(&s, json!({ "items": [{ "item_id": "apple", "title": "りんご", "quantity": 2 }] })).await;
    let (held, _) =
        order(&s, json!({ "items": [{ "item_id": "apple", "title": "りんご" }], "fraud_hold_status": 1 })).await;
    assert_eq!(s.run_once(orderdesk::db::imports::Trigger::Manual).await, orderdesk::import::Ending::Done);
    let (paid_pk, held_pk) = (pk_of(&s, &paid).await, pk_of(&s, &held).await);
    to_awaiting(&s, paid_pk).await;
    let path = format!("/stores/{}/mail", s.store);

    // Off by default, with the warning; an unknown placeholder is refused and nothing saved.
    let page = s.owner.get(&path).await;
    assert!(page.select_attr("input[name=ship_notice_on][checked]", "value").is_empty());
    assert!(page.select_text("#ship-notice").join("").contains("出荷通知メール"), "{}", page.body);
    let shown = page.select_text("#preview-ship").join("");
    assert!(shown.contains(&held) || shown.contains(&paid), "the newest order previews: {shown}");
    let mut fields = vec![
        ("from_name", "テスト商店 本店"),
        ("reply_to", "shop@example.jp"),
        ("ship_notice_on", "on"),
        ("ship_subject", "【{ストア名}】発送しました {注文番号}"),
        ("ship_body", orderdesk::domain::buyer_mail::SHIP_BODY),
        ("free_subject", orderdesk::domain::buyer_mail::FREE_SUBJECT),
        ("free_body", orderdesk::domain::buyer_mail::FREE_BODY),
        ("action", "save"),
    ];
    let refused = s.owner.submit(&path, &path, &fields).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.select_text(".form-error").join("").contains("{注文番号}"), "{}", refused.body);
    assert!(!orderdesk::db::buyer_mail::settings(&s.app.db, s.account, s.store).await.unwrap().ship_notice_on);
    // A preview with a real order, as typed, saves nothing.
    fields[3] = ("ship_subject", "【{ストア名}】発送しました（{注文ID}）");
    let mut preview = fields.clone();
    preview.push(("preview_order", &paid));
    preview[7] = ("action", "preview");
    let shown = s.owner.submit(&path, &path, &preview).await;
    assert_eq!(shown.status, StatusCode::OK);
    let text = shown.select_text("#mail-preview").join("\n");
    assert!(text.contains(&format!("【本店】発送しました（{paid}）")) && text.contains("りんご × 2"), "{text}");
    assert!(!orderdesk::db::buyer_mail::settings(&s.app.db, s.account, s.store).await.unwrap().ship_notice_on);
    let saved = s.owner.submit(&path, &path, &fields).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);

    // Tracking numbers by hand: the paid order ships and its buyer is mailed; the held one
    // takes no number and no mail.
    let lines = format!("{paid} {}\n{held} {}", number(41), number(42));
    let manual = s
        .owner
        .submit(
            "/shipping",
            "/shipping/tracking/manual",
            &[("carrier", "yamato"), ("ship_date", ""), ("lines", &lines), ("unpaid_confirmed", "on")],
        )
        .await;
    assert_eq!(manual.select_text("#manual-results tbody tr").len(), 2, "{}", manual.body);
    while !s.app.mail.send_due(None).await.unwrap().is_empty() {}
    let queued = orderdesk::db::mail::list(&s.app.db, s.account, 10).await.unwrap();
    let buyer = orderdesk::db::buyer_mail::order(&s.app.db, s.account, paid_pk).await.unwrap().unwrap();
    assert_eq!(queued.len(), 1, "{queued:#?} {buyer:#?} {}", manual.body);
    let got = sink.wait_for(1).await;
    assert_eq!(got.len(), 1, "{:?}", subjects(&got));
    let m = &got[0];
    assert_eq!(m.header("Subject"), format!("【本店】発送しました（{paid}）"));
    assert!(
        m.header("From").contains("テスト商店 本店") && m.header("From").contains("<desk@example.jp>"),
        "{}",
        m.header("From")
    );
    assert_eq!(m.header("Reply-To"), "shop@example.jp");
    assert!(
        m.body.contains(&number(41)) && m.body.contains("ヤマト運輸") && m.body.contains("りんご × 2"),
        "{}",
        m.body
    );
    assert!(m.body.contains("https://"), "the tracking link: {}", m.body);
    let order_page = s.owner.get(&format!("/orders/{}", paid_pk.0)).await;
    assert!(order_page.body.contains("発送連絡メールをお客様に送りました"), "on the order's 履歴");
    let held_page = s.owner.get(&format!("/orders/{}", held_pk.0)).await;
    assert!(!held_page.body.contains("発送連絡メール"));
    // A free message from the order's page; a masked staff member may not write to buyers.
    let compose = s.owner.get(&format!("/orders/{}/mail", paid_pk.0)).await;
    assert_eq!(compose.status, StatusCode::OK);
    assert!(compose.body.contains(&paid));
    let sent = s
        .owner
        .submit(
            &format!("/orders/{}/mail", paid_pk.0),
            &format!("/orders/{}/mail", paid_pk.0),
            &[("subject", "お届けについて（{注文ID}）"), ("body", "{お客様名} 様\n明日お届けします。")],
        )
        .await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER, "{}", sent.body);
    while !s.app.mail.send_due(None).await.unwrap().is_empty() {}
    let got = sink.wait_for(2).await;
    let free = find(&got, "お届けについて");
    assert_eq!(free.header("Subject"), format!("お届けについて（{paid}）"));
    assert_eq!(free.header("Reply-To"), "shop@example.jp");
    let staff = masked_staff(&s).await;
    assert_eq!(staff.get(&format!("/orders/{}/mail", paid_pk.0)).await.status, StatusCode::FORBIDDEN);
}

/// Two notifiers at once (two processes whose leases overlapped): each notice is folded into
/// one mail, never two.
async fn two_notifiers_fold_each_notice_once(backend: Backend) {
    let sink = SmtpSink::start().await;
    let s = smtp_shop(backend, &sink).await;
    let notices: Vec<NewNotice> = orderdesk::domain::notify::NOTICE_KINDS
        .iter()
        .flat_map(|kind| {
            (0..30).map(move |i| NewNotice {
                account: s.account,
                store: Some(s.store),
                kind: *kind,
                key: format!("{}-{i}", kind.as_str()),
                line: format!("{}-{i}", kind.as_str()),
                link: String::new(),
            })
        })
        .collect();
    assert_eq!(raise(&s.app.db, &notices, Utc::now()).await.unwrap(), 9 * 30);
    let (a, b) = (notifier(&s), notifier(&s));
    let now = Utc::now();
    let (x, y) = tokio::join!(a.run_at(now), b.run_at(now));
    let (x, y) = (x.unwrap(), y.unwrap());
    assert_eq!(x.mails + y.mails, 9, "one mail per kind: {x:?} {y:?}");
    let mails = orderdesk::db::mail::list(&s.app.db, s.account, 100).await.unwrap();
    assert_eq!(mails.len(), 9);
    for m in &mails {
        assert!(m.subject.starts_with("【本店】"), "{}", m.subject);
    }
    assert_eq!(notifier(&s).run_at(Utc::now()).await.unwrap().mails, 0);
}

crate::on_both_backends!(
    two_notifiers_fold_each_notice_once,
    every_kind_of_notification_reaches_the_owner,
    a_storm_is_folded_into_one_mail_an_hour,
    each_user_chooses_and_staff_start_with_nothing,
    the_store_mails_its_buyers_when_a_parcel_ships,
);
