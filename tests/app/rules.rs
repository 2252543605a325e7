//! Rules (issue 30) through real HTTP and real imports on both backends: a rule sorts arriving
//! orders once per trigger and says why in the 履歴, never moves a held order, applies again
//! when Yahoo changes an order, is previewed (and confirmed when wide) before it is saved,
//! refuses bad input, is skipped while it names a deleted tag, and applies once per order even
//! when the import running it is killed.

use std::time::Duration;

use orderdesk::{
    db::{
        imports::Trigger,
        orders::{self, OrderPk},
        rules::{self, RuleInput},
    },
    domain::{
        rules::{Action, Condition, RuleSpec},
        scope::OrderScope,
    },
    import::Ending,
};
use reqwest::StatusCode;
use serde_json::json;

use crate::{
    helpers::Backend,
    import::{SELLER, ServeProcess, Shop, make_due, set_auto, shop, wait_for},
    shipping::{export, order, pk_of, quiet, save_settings, to_awaiting},
};

async fn history(s: &Shop, pk: OrderPk) -> Vec<String> {
    orders::history(&s.app.db, &OrderScope::account(s.account), pk)
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.message)
        .collect()
}

fn count(lines: &[String], needle: &str) -> usize {
    lines.iter().filter(|l| l.contains(needle)).count()
}

async fn make_tag(s: &Shop, name: &str, stops: bool) -> i64 {
    let mut fields = vec![("name", name), ("color", "red")];
    if stops {
        fields.push(("stops_shipping", "on"));
    }
    let made = s.owner.submit("/tags", "/tags", &fields).await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.body);
    orderdesk::db::tags::list(&s.app.db, s.account).await.unwrap().into_iter().find(|t| t.name == name).unwrap().id
}

async fn save_rule(s: &Shop, name: &str, spec: RuleSpec) -> i64 {
    let input = RuleInput { name: name.into(), enabled: true, stores: vec![], spec, stop_after: false };
    rules::save(&s.app.db, s.account, None, &input, orderdesk::db::now()).await.unwrap().unwrap()
}

async fn tags_of(s: &Shop, pk: OrderPk) -> Vec<String> {
    orderdesk::db::tags::of_orders(&s.app.db, s.account, &[pk])
        .await
        .unwrap()
        .remove(&pk)
        .unwrap_or_default()
        .into_iter()
        .map(|t| t.name)
        .collect()
}

async fn note_of(s: &Shop, pk: OrderPk) -> String {
    s.ours().await.into_iter().find(|(o, _)| o.id == pk).unwrap().0.note
}

/// The story: 「沖縄県 → tag 離島確認 (出荷止め)」 made in the form, previewed, saved; an
/// order to 沖縄 arrives tagged and is left out of the label file, the 履歴 says why; a rerun of
/// the import applies nothing twice; with the tag off it exports without its delivery date.
async fn a_rule_sorts_arriving_orders_once_and_says_why(backend: Backend) {
    let s = quiet(backend).await;
    save_settings(&s).await;
    let tag = make_tag(&s, "離島確認", true).await;
    let tag_text = tag.to_string();
    let fields = [
        ("name", "沖縄"),
        ("enabled", "on"),
        ("prefectures", "沖縄県"),
        ("add_tag", tag_text.as_str()),
        ("memo", "離島: 送料を確認"),
        ("clear_delivery_date", "on"),
    ];
    let mut preview: Vec<(&str, &str)> = fields.to_vec();
    preview.push(("intent", "preview"));
    let page = s.owner.submit("/rules/new", "/rules/new", &preview).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.select_text("#preview-summary").join("").contains("0件"), "{}", page.body);
    assert!(rules::list(&s.app.db, s.account).await.unwrap().is_empty(), "a preview saves nothing");
    let mut save: Vec<(&str, &str)> = fields.to_vec();
    save.push(("intent", "save"));
    let saved = s.owner.submit("/rules/new", "/rules/new", &save).await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let list = s.owner.get("/rules").await;
    assert!(list.select_text("#rules").join("").contains("お届け先が 沖縄県"), "{}", list.body);

    let okinawa = json!({
        "items": [{ "item_id": "mug", "title": "マグカップ" }], "pay_method": "payment_a1", "pay_status": 1,
        "ship": { "prefecture": "沖縄県", "city": "石垣市", "zip_code": "907-0004" },
        "ship_request_date": (chrono::Utc::now() + chrono::Duration::days(5)).date_naive().to_string(),
    });
    let (island_id, _) = order(&s, okinawa).await;
    let tokyo = json!({
        "items": [{ "item_id": "mug", "title": "マグカップ" }], "pay_method": "payment_a1", "pay_status": 1,
        "ship": { "prefecture": "東京都", "city": "千代田区", "zip_code": "100-0001" },
    });
    let (tokyo_id, _) = order(&s, tokyo).await;
    assert_eq!(s.run_once(Trigger::Manual).await, Ending::Done);
    let (island, tokyo) = (pk_of(&s, &island_id).await, pk_of(&s, &tokyo_id).await);
    assert_eq!(tags_of(&s, island).await, vec!["離島確認".to_string()]);
    assert!(tags_of(&s, tokyo).await.is_empty());
    let lines = history(&s, island).await;
    let why = "ルール「沖縄」を適用しました（お届け先の都道府県=沖縄県）: タグ「離島確認」を付けました（出荷止め）、社内メモに「離島: 送料を確認」を追記しました、送り状のお届け希望日を空にしました";
    assert_eq!(count(&lines, why), 1, "{lines:#?}");
    assert_eq!(count(&history(&s, tokyo).await, "ルール"), 0);
    assert_eq!(note_of(&s, island).await, "離島: 送料を確認");
    let page = s.owner.get(&format!("/orders/{island}")).await;
    assert!(page.select_text("ol.history").join("").contains("ルール「沖縄」を適用しました"), "{}", page.body);

    // Imported again (nothing changed at Yahoo): nothing applies twice.
    assert_eq!(s.run_once(Trigger::Manual).await, Ending::Done);
    assert_eq!(count(&history(&s, island).await, "ルール「沖縄」"), 1);

    // Kept off the label file, naming the tag; off the tag, it exports without お届け希望日.
    to_awaiting(&s, island).await;
    let refused = export(&s, &[island], &[("format", "b2")]).await;
    assert!(
        refused.select_text("#excluded-table tbody tr").join("").contains("出荷止めのタグ「離島確認」"),
        "{}",
        refused.body
    );
    let path = format!("/orders/{island}");
    s.owner.submit(&path, &format!("{path}/tags"), &[("tag", &tag_text), ("action", "remove")]).await;
    let done = export(&s, &[island], &[("format", "b2")]).await;
    assert!(done.select_text("#labels-done").join("").contains("1件"), "{}", done.body);
    let file = orderdesk::with_pool!(&s.app.db, |p| {
        sqlx::query_scalar::<_, Vec<u8>>("select body from label_export order by id desc limit 1").fetch_one(p).await
    })
    .unwrap();
    let (text, _, _) = encoding_rs::SHIFT_JIS.decode(&file);
    let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
    let row: Vec<&str> = text.lines().nth(1).unwrap().split(',').collect();
    let at = header.iter().position(|h| h.contains("お届け予定")).expect("a delivery date column");
    assert_eq!(row[at].trim_matches('"'), "", "the rule left お届け希望日 blank: {text}");

    // Run again by hand on the chosen order: a new trigger, so it applies (the tag once more).
    let chosen = island.to_string();
    let ran = s.owner.submit("/orders", "/orders/rules", &[("order", chosen.as_str()), ("rule", "all")]).await;
    assert_eq!(ran.status, StatusCode::SEE_OTHER, "{}", ran.body);
    assert_eq!(count(&history(&s, island).await, "ルール「沖縄」"), 2);
    assert_eq!(tags_of(&s, island).await, vec!["離島確認".to_string()]);

    // One rule run by hand: it takes the tag off again.
    let spec = RuleSpec {
        conditions: vec![Condition::Prefecture(vec!["沖縄県".into()])],
        actions: vec![Action::RemoveTag(tag)],
        match_all: false,
    };
    let off = save_rule(&s, "確認済み", spec).await.to_string();
    let ran = s.owner.submit("/orders", "/orders/rules", &[("order", chosen.as_str()), ("rule", off.as_str())]).await;
    assert_eq!(ran.status, StatusCode::SEE_OTHER, "{}", ran.body);
    assert!(tags_of(&s, island).await.is_empty());
    assert_eq!(
        count(
            &history(&s, island).await,
            "ルール「確認済み」を適用しました（お届け先の都道府県=沖縄県）: タグ「離島確認」を外しました"
        ),
        1
    );
    assert_eq!(count(&history(&s, island).await, "ルール「沖縄」"), 2, "only the rule chosen ran");
}

/// A rule that sets a status goes through the status plan: a held order stays where it is and
/// its 履歴 says so; the others move. Rules apply top to bottom and stop when told.
async fn a_rule_never_moves_a_held_order(backend: Backend) {
    let s = shop(backend, |c| c.scheduler = false).await;
    let tag = make_tag(&s, "自動確認", false).await;
    let second = make_tag(&s, "二番目", false).await;
    let third = make_tag(&s, "三番目", false).await;
    let all = |actions: Vec<Action>| RuleSpec { conditions: vec![], actions, match_all: true };
    save_rule(&s, "保留へ", all(vec![Action::AddTag(tag), Action::SetStatus("on_hold".into())])).await;
    let stop = save_rule(&s, "ここまで", all(vec![Action::AddTag(second)])).await;
    save_rule(&s, "届かない", all(vec![Action::AddTag(third)])).await;
    let mut r = rules::get(&s.app.db, s.account, stop).await.unwrap().unwrap();
    r.stop_after = true;
    let input =
        RuleInput { name: r.name.clone(), enabled: true, stores: vec![], spec: r.spec.clone(), stop_after: true };
    rules::save(&s.app.db, s.account, Some(stop), &input, orderdesk::db::now()).await.unwrap();
    s.generate(40, 7).await;
    assert_eq!(s.run_once(Trigger::Manual).await, Ending::Done);
    let ours = s.ours().await;
    let held: Vec<_> = ours.iter().filter(|(o, _)| o.fraud_hold().is_held()).collect();
    assert!(!held.is_empty());
    for (o, _) in &ours {
        let lines = history(&s, o.id).await;
        assert_eq!(tags_of(&s, o.id).await, vec!["二番目".to_string(), "自動確認".to_string()], "{}", o.order_id);
        if o.fraud_hold().is_held() {
            assert_eq!(o.internal_status().as_str(), "new", "{} is held and stays", o.order_id);
            assert_eq!(
                count(
                    &lines,
                    "ルール「保留へ」を適用しました（すべての注文）: タグ「自動確認」を付けました、不正保留中のためステータス変更しませんでした"
                ),
                1,
                "{lines:#?}"
            );
        } else {
            assert_eq!(o.internal_status().as_str(), "on_hold", "{}", o.order_id);
            assert_eq!(count(&lines, "ステータスを「保留」にしました"), 1, "{lines:#?}");
        }
        assert_eq!(count(&lines, "ルール「届かない」"), 0, "the stop held");
    }
}

/// A rule's label: 佐川 for 北海道 keeps the order out of a B2 file (saying which file it wants)
/// and in the e飛伝 file; a B2 service set by a rule is the one the B2 file carries.
async fn a_rule_chooses_the_label(backend: Backend) {
    let s = quiet(backend).await;
    save_settings(&s).await;
    let sagawa = RuleSpec {
        conditions: vec![Condition::Prefecture(vec!["北海道".into()])],
        actions: vec![Action::Label { format: "ehiden".into(), service: None }],
        match_all: false,
    };
    save_rule(&s, "北海道は佐川", sagawa).await;
    let gift = RuleSpec {
        conditions: vec![Condition::Gift(true)],
        actions: vec![Action::Label { format: "b2".into(), service: Some("8".into()) }],
        match_all: false,
    };
    save_rule(&s, "ギフトはコンパクト", gift).await;
    let paid = |prefecture: &str, zip: &str, wrap: i64| {
        json!({
            "items": [{ "item_id": "mug", "title": "マグカップ" }], "pay_method": "payment_a1", "pay_status": 1,
            "ship": { "prefecture": prefecture, "city": "札幌市中央区", "zip_code": zip }, "gift_wrap_charge": wrap,
        })
    };
    let (north_id, _) = order(&s, paid("北海道", "060-0001", 0)).await;
    let (gift_id, _) = order(&s, paid("東京都", "100-0001", 300)).await;
    assert_eq!(s.run_once(Trigger::Manual).await, Ending::Done);
    let (north, gift) = (pk_of(&s, &north_id).await, pk_of(&s, &gift_id).await);
    to_awaiting(&s, north).await;
    to_awaiting(&s, gift).await;
    let b2 = export(&s, &[north, gift], &[("format", "b2")]).await;
    let excluded = b2.select_text("#excluded-table tbody tr").join("");
    assert!(
        excluded.contains(&north_id) && excluded.contains("ルールで「佐川 e飛伝Ⅲ」に指定されています"),
        "{}",
        b2.body
    );
    assert!(b2.select_text("#labels-done").join("").contains("1件"), "{}", b2.body);
    let file = orderdesk::with_pool!(&s.app.db, |p| {
        sqlx::query_scalar::<_, Vec<u8>>("select body from label_export order by id desc limit 1").fetch_one(p).await
    })
    .unwrap();
    let (text, _, _) = encoding_rs::SHIFT_JIS.decode(&file);
    let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
    let row: Vec<&str> = text.lines().nth(1).unwrap().split(',').collect();
    let at = header.iter().position(|h| h.trim_matches('"') == "送り状種類").expect("a service column");
    assert_eq!(row[at].trim_matches('"'), "8", "the rule's service: {text}");
    let ehiden = export(&s, &[north], &[("format", "ehiden")]).await;
    assert!(ehiden.select_text("#labels-done").join("").contains("1件"), "{}", ehiden.body);
}

/// 「以前にも購入あり」: the second order of a buyer (same e-mail, or the same phone under
/// another address) is tagged, the first and a stranger's are not.
async fn a_repeat_buyer_is_known_by_mail_or_phone(backend: Backend) {
    let s = quiet(backend).await;
    let tag = make_tag(&s, "リピーター", false).await;
    let spec = RuleSpec {
        conditions: vec![Condition::RepeatBuyer(true)],
        actions: vec![Action::AddTag(tag)],
        match_all: false,
    };
    save_rule(&s, "リピーター", spec).await;
    let buyer = |hours: i64, mail: &str, phone: &str| {
        json!({
            "order_time": (chrono::Utc::now() - chrono::Duration::hours(hours)).to_rfc3339(),
            "items": [{ "item_id": "mug", "title": "マグカップ" }],
            "bill": { "mail": mail, "phone": phone },
        })
    };
    let first =
        s.sim.order(SELLER, buyer(5, "hanako@example.jp", "0311112222")).await["order_id"].as_str().unwrap().to_owned();
    let again =
        s.sim.order(SELLER, buyer(3, "hanako@example.jp", "0399998888")).await["order_id"].as_str().unwrap().to_owned();
    let by_phone =
        s.sim.order(SELLER, buyer(2, "other@example.jp", "0311112222")).await["order_id"].as_str().unwrap().to_owned();
    let stranger =
        s.sim.order(SELLER, buyer(1, "taro@example.jp", "0455556666")).await["order_id"].as_str().unwrap().to_owned();
    assert_eq!(s.run_once(Trigger::Manual).await, Ending::Done);
    for (id, tagged) in [(&first, false), (&again, true), (&by_phone, true), (&stranger, false)] {
        let pk = pk_of(&s, id).await;
        assert_eq!(tags_of(&s, pk).await.len(), usize::from(tagged), "{id}");
    }
}

/// Yahoo releasing a hold is a change: a rule about released orders applies then, once.
async fn a_change_at_yahoo_applies_rules_again_once(backend: Backend) {
    let s = shop(backend, |_| {}).await;
    let tag = make_tag(&s, "解除済み", false).await;
    let spec = RuleSpec {
        conditions: vec![Condition::FraudHold(vec![2])],
        actions: vec![Action::AddTag(tag)],
        match_all: false,
    };
    save_rule(&s, "保留解除", spec).await;
    let days_ago = (chrono::Utc::now() - chrono::Duration::days(3)).to_rfc3339();
    let held = |category: u32| json!({ "order_time": days_ago, "items": [{ "item_id": "flower", "title": "注文保留_テスト", "category_id": category }] });
    let release = s.sim.order(SELLER, held(4101)).await["order_id"].as_str().unwrap().to_owned();
    let confirm = s.sim.order(SELLER, held(2947)).await["order_id"].as_str().unwrap().to_owned();
    let plain = s.sim.plain_order(SELLER).await;
    set_auto(&s.app.db, s.store, true).await;
    make_due(&s.app.db, s.store).await;
    let stored = wait_for(&s, |o| o.len() == 3).await;
    for (o, _) in &stored {
        assert!(tags_of(&s, o.id).await.is_empty(), "{}: not released yet", o.order_id);
    }
    s.sim.control("/_sim/review", json!({})).await;
    make_due(&s.app.db, s.store).await;
    let stored = wait_for(&s, |o| {
        o.iter().any(|(r, _)| r.order_id == confirm && r.fraud_hold_status == 3)
            && o.iter().any(|(r, _)| r.order_id == release && r.fraud_hold_status == 2)
    })
    .await;
    // Imported again with nothing new: it does not apply twice.
    make_due(&s.app.db, s.store).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    for (o, _) in &stored {
        let lines = history(&s, o.id).await;
        let want = usize::from(o.order_id == release);
        assert_eq!(
            count(&lines, "ルール「保留解除」を適用しました（不正保留=ルール保留解除）"),
            want,
            "{}: {lines:#?}",
            o.order_id
        );
        assert_eq!(tags_of(&s, o.id).await.len(), want, "{}", o.order_id);
    }
    assert!(stored.iter().any(|(o, _)| o.order_id == plain));
}

/// The rule form: bad input refused in Japanese and nothing saved; a rule touching most orders
/// saved only once confirmed; order changed by 上へ; a rule naming a deleted tag is shown broken,
/// raised on the dashboard and skipped.
async fn the_rule_form_refuses_confirms_and_flags_broken_rules(backend: Backend) {
    let s = shop(backend, |c| c.scheduler = false).await;
    s.generate(30, 5).await;
    assert_eq!(s.run_once(Trigger::Manual).await, Ending::Done);
    let post = |fields: Vec<(&'static str, String)>| {
        let s = &s;
        async move {
            let f: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            s.owner.submit("/rules/new", "/rules/new", &f).await
        }
    };
    let save = |extra: &[(&'static str, &str)]| {
        let mut v: Vec<(&'static str, String)> =
            vec![("name", "テスト".into()), ("intent", "save".into()), ("enabled", "on".into())];
        v.extend(extra.iter().map(|(k, val)| (*k, (*val).to_owned())));
        v
    };
    for (fields, message) in [
        (save(&[("memo", "確認")]), "条件がありません"),
        (save(&[("prefectures", "オキナワ"), ("memo", "確認")]), "都道府県「オキナワ」はありません"),
        (save(&[("total_min", "1万"), ("memo", "確認")]), "合計金額の下限「1万」は0以上の数字で"),
        (save(&[("total_min", "5000"), ("total_max", "100"), ("memo", "確認")]), "下限が上限より大きく"),
        (save(&[("prefectures", "沖縄県")]), "動作を1つ以上"),
    ] {
        let page = post(fields).await;
        assert_eq!(page.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", page.body);
        assert!(page.select_text("#rule-errors").join("").contains(message), "{message}: {}", page.body);
    }
    assert!(rules::list(&s.app.db, s.account).await.unwrap().is_empty(), "nothing was saved");

    // Every order: more than 20 % of the newest, so saving asks first.
    let wide = save(&[("match_all", "on"), ("memo", "全件確認")]);
    let asked = post(wide.clone()).await;
    assert_eq!(asked.status, StatusCode::OK, "{}", asked.body);
    assert!(asked.select_text("#preview-summary").join("").contains("30件（100%）"), "{}", asked.body);
    assert!(!asked.select_text("#preview-confirm").is_empty());
    assert!(rules::list(&s.app.db, s.account).await.unwrap().is_empty(), "not saved without the confirmation");
    let mut confirmed = wide.clone();
    confirmed.push(("confirm", "on".into()));
    assert_eq!(post(confirmed).await.status, StatusCode::SEE_OTHER);
    let tag = make_tag(&s, "一時", false).await;
    let tag_text = tag.to_string();
    let second = save(&[("pay_methods", "payment_a1"), ("add_tag", tag_text.as_str()), ("confirm", "on")]);
    let mut second = second;
    second[0].1 = "カード".into();
    assert_eq!(post(second).await.status, StatusCode::SEE_OTHER);
    let listed = rules::list(&s.app.db, s.account).await.unwrap();
    assert_eq!(listed.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), vec!["テスト", "カード"]);
    let moved = s.owner.submit("/rules", &format!("/rules/{}/move", listed[1].id), &[("dir", "up")]).await;
    assert_eq!(moved.status, StatusCode::SEE_OTHER);
    let listed = rules::list(&s.app.db, s.account).await.unwrap();
    assert_eq!(listed.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), vec!["カード", "テスト"]);

    // The tag deleted: the rule is broken, flagged, and skipped.
    s.owner.submit("/tags", &format!("/tags/{tag}/delete"), &[]).await;
    assert!(s.owner.get("/rules").await.select_text("#rules tr.rule-broken").join("").contains("カード"));
    let dashboard = s.owner.get("/").await;
    assert!(
        dashboard
            .select_text("#broken-rules")
            .join("")
            .contains("ルール「カード」は削除されたタグを使っているため実行されていません"),
        "{}",
        dashboard.body
    );
    let id = s.sim.plain_order(SELLER).await;
    // An import reads up to a few seconds before now.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_eq!(s.run_once(Trigger::Manual).await, Ending::Done);
    let pk = s.ours().await.into_iter().find(|(o, _)| o.order_id == id).unwrap().0.id;
    let lines = history(&s, pk).await;
    assert_eq!(count(&lines, "ルール「カード」"), 0, "{lines:#?}");
    assert_eq!(count(&lines, "ルール「テスト」"), 1, "{lines:#?}");
}

/// A `serve` process importing with rules is killed (SIGKILL) mid-import; at that moment and
/// after the rerun every stored order has had each rule applied exactly once.
async fn a_killed_import_applies_each_rule_once(backend: Backend) {
    let s = shop(backend, |c| c.scheduler = false).await;
    let tag = make_tag(&s, "取込済み", false).await;
    let spec = RuleSpec {
        conditions: vec![],
        actions: vec![Action::AddTag(tag), Action::Memo("自動".into())],
        match_all: true,
    };
    save_rule(&s, "全件", spec).await;
    s.sim
        .control(
            &format!("/_sim/sellers/{SELLER}/orders/generate"),
            json!({ "count": 1200, "seed": 21, "fraud_share": 0.1, "spread_hours": 48 }),
        )
        .await;
    s.sim.control("/_sim/faults", json!({ "api": "orderInfo", "kind": "delay", "share": 1.0, "delay_ms": 10 })).await;
    set_auto(&s.app.db, s.store, true).await;
    let mut serve = ServeProcess::start(&s.app, 2);
    for _ in 0..1200 {
        if s.ours().await.len() > 150 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    serve.kill();
    set_auto(&s.app.db, s.store, false).await;
    let check = |label: &'static str| {
        let s = &s;
        async move {
            let ours = s.ours().await;
            let runs: Vec<(OrderPk, i64)> = orderdesk::with_pool!(&s.app.db, |p| {
                sqlx::query_as(
                    "select order_pk, count(*) from order_history where rule_trigger is not null group by order_pk",
                )
                .fetch_all(p)
                .await
            })
            .unwrap();
            let lines: Vec<(OrderPk, i64)> = orderdesk::with_pool!(&s.app.db, |p| {
                sqlx::query_as("select order_pk, count(*) from order_history where kind = 'rule' group by order_pk")
                    .fetch_all(p)
                    .await
            })
            .unwrap();
            for (o, _) in &ours {
                assert_eq!(runs.iter().find(|(pk, _)| *pk == o.id).map(|r| r.1), Some(1), "{label}: {}", o.order_id);
                assert_eq!(lines.iter().find(|(pk, _)| *pk == o.id).map(|r| r.1), Some(1), "{label}: {}", o.order_id);
                assert_eq!(o.note, "自動", "{label}: {}", o.order_id);
            }
            ours.len()
        }
    };
    let at_kill = check("at the kill").await;
    assert!(at_kill < 1200, "killed mid-import ({at_kill} stored)");
    // The lease of the dead process runs out; the rerun imports the rest.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(s.run_once(Trigger::Manual).await, Ending::Done);
    assert_eq!(check("after the rerun").await, 1200);
}

crate::on_both_backends!(
    a_rule_sorts_arriving_orders_once_and_says_why,
    a_rule_never_moves_a_held_order,
    a_change_at_yahoo_applies_rules_again_once,
    a_repeat_buyer_is_known_by_mail_or_phone,
    a_rule_chooses_the_label,
    the_rule_form_refuses_confirms_and_flags_broken_rules,
    a_killed_import_applies_each_rule_once,
);
