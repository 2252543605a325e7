//! 納品書 and picking lists (issue 28). [`create_batch`] decides what a print batch holds: each
//! chosen order goes through the shipping gate (`domain::shipping::may_leave`: the fraud-hold
//! rule first, then 出荷止め, the order's state and payment), and a 納品書's money must come to
//! Yahoo's TotalPrice; whatever is left out is listed with the reason. [`render`] makes the PDF
//! of a batch when it is asked for, asking the gate again, so an order held since the batch was
//! made is not printed. The pages and `bench documents` call these.

pub mod pdf;
pub mod picking;
pub mod slip;

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use self::{
    pdf::{Paper, Writer},
    picking::{PickItem, PickOrder},
    slip::{Money, Party, Seller, Slip, SlipLine},
};
use crate::{
    db::{
        Db,
        documents::{self as store, Batch, DocumentKind, DocumentSettings, LeftOut},
        orders::{self as read, HistoryActor, OrderPk, OrderRow},
        shipping as ship_store,
    },
    domain::{
        StoreId,
        invoice::{Charges, LineAmount, STANDARD_RATE, summarize},
        jst,
        order::OrderItem,
        scope::OrderScope,
        shipping::{Exclusion, may_leave},
    },
};

/// The most orders one batch prints (a day's parcels for a large shop; larger runs are split).
pub const MAX_ORDERS: usize = 1000;

/// A masked reader cannot print 納品書: they carry the recipient's name and address.
pub const MASKED_CANNOT_PRINT_SLIPS: &str = "納品書にはお届け先の氏名・住所が入るため、個人情報が伏せられている利用者は印刷できません。アカウントのオーナーに依頼してください（ピッキングリストは印刷できます）";

/// Why nothing was recorded.
pub fn too_many(n: usize) -> String {
    format!("一度に印刷できるのは{MAX_ORDERS}件までです（{n}件が選ばれています）。条件を絞って分けて印刷してください")
}

/// The gate for printing: which of these orders (in the reader's scope) may be printed, and
/// which are left out with the reason. `unpaid_confirmed` is 「入金前でも印刷する」.
async fn gate(
    db: &Db,
    scope: &OrderScope,
    pks: &[OrderPk],
    unpaid_confirmed: bool,
) -> sqlx::Result<(Vec<OrderPk>, Vec<LeftOut>)> {
    let orders = ship_store::orders(db, scope, pks).await?;
    let settings = ship_store::settings_of(db, scope.account, orders.iter().map(|o| o.store_id).collect()).await?;
    let mut ok = Vec::with_capacity(orders.len());
    let mut out = Vec::new();
    for o in &orders {
        let prepay = settings.get(&o.store_id).map_or("", |(s, _)| s.prepay_methods.as_str());
        match may_leave(&o.leave_facts(prepay), unpaid_confirmed) {
            Ok(()) => ok.push(o.pk),
            Err(e) => out.push(LeftOut {
                order_id: o.order_id.clone(),
                store_name: o.store_name.clone(),
                reason: e.to_string(),
                held: e == Exclusion::FraudHold,
            }),
        }
    }
    Ok((ok, out))
}

/// One order read for printing: its row, lines and store.
struct Printed {
    row: OrderRow,
    items: Vec<OrderItem>,
}

async fn read_orders(db: &Db, scope: &OrderScope, pks: &[OrderPk]) -> sqlx::Result<Vec<Printed>> {
    let rows = read::read_rows(db, scope, pks).await?;
    let ids: Vec<OrderPk> = rows.iter().map(|r| r.id).collect();
    let mut items = read::items_of(db, &ids).await?;
    let mut by_pk: HashMap<OrderPk, OrderRow> = rows.into_iter().map(|r| (r.id, r)).collect();
    Ok(pks
        .iter()
        .filter_map(|pk| by_pk.remove(pk))
        .map(|row| {
            let items = items.remove(&row.id).unwrap_or_default();
            Printed { row, items }
        })
        .collect())
}

/// The money of an order as its slip prints it, or why it cannot be printed.
fn money(row: &OrderRow, items: &[OrderItem]) -> Result<Money, String> {
    let lines: Vec<LineAmount> = items
        .iter()
        .map(|i| LineAmount {
            amount: i.unit_price * i.quantity,
            rate: i.tax_ratio.and_then(|r| u8::try_from(r).ok()).unwrap_or(STANDARD_RATE),
        })
        .collect();
    let charges = Charges {
        ship_charge: row.ship_charge,
        pay_charge: row.pay_charge,
        gift_wrap_charge: row.gift_wrap_charge,
        discount: row.discount,
        coupon: row.coupon_discount,
        points: row.use_point,
        gift_card: row.gift_card_discount,
        total_price: row.total_price,
    };
    summarize(&lines, &charges).map(|summary| Money { charges, summary }).map_err(|e| e.to_string())
}

fn is_gift(row: &OrderRow) -> bool {
    row.social_gift_type != 0 || row.need_gift_wrap == Some(true)
}

/// Records a print batch of `kind` for the chosen orders: `Err` with the message to show when
/// nothing was recorded (a masked reader asking for 納品書, no order, too many).
pub async fn create_batch(
    db: &Db,
    scope: &OrderScope,
    kind: DocumentKind,
    pks: &[OrderPk],
    unpaid_confirmed: bool,
    actor: &HistoryActor,
    now: DateTime<Utc>,
) -> sqlx::Result<Result<i64, String>> {
    if kind == DocumentKind::Slip && scope.mask_personal {
        return Ok(Err(MASKED_CANNOT_PRINT_SLIPS.into()));
    }
    if pks.is_empty() {
        return Ok(Err("注文を選んでください".into()));
    }
    if pks.len() > MAX_ORDERS {
        return Ok(Err(too_many(pks.len())));
    }
    let (mut ok, mut excluded) = gate(db, scope, pks, unpaid_confirmed).await?;
    if kind == DocumentKind::Slip {
        // A slip whose sum is not Yahoo's total is listed, never printed wrong.
        let printed = read_orders(db, scope, &ok).await?;
        let stores: HashMap<StoreId, String> =
            crate::db::stores::links(db, scope.account).await?.into_iter().map(|s| (s.id, s.name)).collect();
        let mut fine = Vec::with_capacity(ok.len());
        for p in &printed {
            if is_gift(&p.row) {
                fine.push(p.row.id);
                continue;
            }
            match money(&p.row, &p.items) {
                Ok(_) => fine.push(p.row.id),
                Err(reason) => excluded.push(LeftOut {
                    order_id: p.row.order_id.clone(),
                    store_name: stores.get(&p.row.store_id).cloned().unwrap_or_default(),
                    reason,
                    held: false,
                }),
            }
        }
        ok = fine;
    }
    if ok.is_empty() && excluded.is_empty() {
        return Ok(Err("選んだ注文が見つかりません".into()));
    }
    let id = store::create_batch(db, scope.account, kind, &ok, &excluded, actor, now).await?;
    Ok(Ok(id))
}

/// A batch as this reader may see it: `None` unless every order it prints is in the reader's
/// stores (a batch of another store's orders is not theirs to see).
pub async fn batch(db: &Db, scope: &OrderScope, id: i64) -> sqlx::Result<Option<Batch>> {
    let Some(b) = store::batch(db, scope.account, id).await? else { return Ok(None) };
    if scope.stores.is_some() {
        let rows = read::rows(db, scope.account, &b.orders).await?;
        if rows.iter().any(|r| !scope.allows(r.store_id)) {
            return Ok(None);
        }
    }
    Ok(Some(b))
}

/// What a PDF of a batch printed, and what it left out because the gate refuses it now.
pub struct Rendered {
    pub pdf: Vec<u8>,
    pub pages: usize,
    pub printed: usize,
    pub left_out_now: Vec<LeftOut>,
}

/// The batch's PDF. The gate is asked again (an order held since is not printed); `now` is
/// the print time on a picking list and a slip's 発行日.
pub async fn render(
    db: &Db,
    scope: &OrderScope,
    b: &Batch,
    now: DateTime<Utc>,
) -> sqlx::Result<Result<Rendered, String>> {
    if b.kind == DocumentKind::Slip && scope.mask_personal {
        return Ok(Err(MASKED_CANNOT_PRINT_SLIPS.into()));
    }
    let (ok, left_out_now) = gate(db, scope, &b.orders, true).await?;
    let printed = read_orders(db, scope, &ok).await?;
    let stores: HashMap<StoreId, String> =
        crate::db::stores::links(db, scope.account).await?.into_iter().map(|s| (s.id, s.name)).collect();
    let (planned, parcels) = store::shipping_facts(db, scope.account, &ok).await?;
    let today = jst::today(now);
    let created = b.created_at;
    let title = format!("{} 印刷バッチ #{}", b.kind.label(), b.id);
    let count = printed.len();
    let result = match b.kind {
        DocumentKind::Slip => {
            let mut settings: HashMap<StoreId, DocumentSettings> = HashMap::new();
            for p in &printed {
                if let std::collections::hash_map::Entry::Vacant(e) = settings.entry(p.row.store_id) {
                    e.insert(store::settings(db, scope.account, p.row.store_id).await?);
                }
            }
            let printed_first_store = printed.first().map(|p| p.row.store_id);
            let mut slips = Vec::with_capacity(printed.len());
            for p in printed {
                let s = &settings[&p.row.store_id];
                let ship_date = match (p.row.ship_date, planned.get(&p.row.id)) {
                    (Some(d), _) => (d, "出荷日"),
                    (None, Some(d)) => (*d, "出荷予定日"),
                    (None, None) => (today, "発行日"),
                };
                slips.push(slip_of(&p, stores.get(&p.row.store_id).cloned().unwrap_or_default(), s, ship_date));
            }
            // One paper per PDF: the first printed order's store's.
            let paper = printed_first_store
                .and_then(|store| settings.get(&store))
                .and_then(|s| Paper::parse(&s.paper))
                .unwrap_or(Paper::A4);
            tokio::task::spawn_blocking(move || write_slips(&slips, paper, &title, created))
                .await
                .map_err(|e| sqlx::Error::Protocol(format!("the PDF task ended: {e}")))?
        }
        DocumentKind::Picking => {
            let locations = store::locations(db, scope.account).await?;
            let orders: Vec<PickOrder> = printed
                .iter()
                .map(|p| pick_order(p, stores.get(&p.row.store_id).cloned().unwrap_or_default(), &parcels))
                .collect();
            let heading =
                format!("印刷バッチ #{} ・ 印刷 {}", b.id, now.with_timezone(&jst::offset()).format("%Y-%m-%d %H:%M"));
            tokio::task::spawn_blocking(move || write_picking(&heading, &orders, &locations, &title, created))
                .await
                .map_err(|e| sqlx::Error::Protocol(format!("the PDF task ended: {e}")))?
        }
    };
    Ok(result.map(|(pdf, pages)| Rendered { pdf, pages, printed: count, left_out_now }))
}

/// A field Yahoo masked (a social gift shows `****` for what the giver may not see).
fn masked(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| matches!(c, '*' | '＊' | '●' | '※' | ' ' | '　'))
}

use self::slip::HIDDEN;

fn shown(s: &str) -> String {
    if masked(s) { HIDDEN.to_owned() } else { s.trim().to_owned() }
}

fn slip_of(
    p: &Printed,
    store_name: String,
    s: &DocumentSettings,
    ship_date: (chrono::NaiveDate, &'static str),
) -> Slip {
    let r = &p.row;
    let gift = is_gift(r);
    let name = |last: &str, first: &str| {
        if masked(last) || masked(first) { HIDDEN.to_owned() } else { format!("{last} {first}").trim().to_owned() }
    };
    let address = |parts: [&str; 4]| {
        if parts.iter().any(|p| masked(p)) {
            HIDDEN.to_owned()
        } else {
            parts.iter().map(|p| p.trim()).filter(|p| !p.is_empty()).collect::<Vec<_>>().join(" ")
        }
    };
    let recipient = Party {
        name: name(&r.ship_last_name, &r.ship_first_name),
        zip: if masked(&r.ship_zip_code) { String::new() } else { r.ship_zip_code.clone() },
        address: address([&r.ship_prefecture, &r.ship_city, &r.ship_address1, &r.ship_address2]),
        phone: shown(&r.ship_phone),
    };
    let buyer = Party {
        name: name(&r.bill_last_name, &r.bill_first_name),
        zip: if masked(&r.bill_zip_code) { String::new() } else { r.bill_zip_code.clone() },
        address: address([&r.bill_prefecture, &r.bill_city, &r.bill_address1, &r.bill_address2]),
        phone: shown(&r.bill_phone),
    };
    let lines = p
        .items
        .iter()
        .map(|i| SlipLine {
            title: i.title.clone(),
            item_id: i.item_id.clone(),
            sub_code: i.sub_code.clone(),
            options: i.options.clone(),
            unit_price: i.unit_price,
            quantity: i.quantity,
            rate: i.tax_ratio.and_then(|r| u8::try_from(r).ok()).unwrap_or(STANDARD_RATE),
        })
        .collect();
    Slip {
        order_id: r.order_id.clone(),
        store_name,
        order_date: jst::today(r.order_time),
        ship_date,
        recipient,
        buyer,
        lines,
        money: if gift { None } else { money(r, &p.items).ok() },
        pay_method: if gift { String::new() } else { r.pay_method_name.clone() },
        comments: s.print_comments.then(|| r.buyer_comments.clone()),
        seller: Seller {
            name: s.seller_name.clone(),
            address: s.address.clone(),
            phone: s.phone.clone(),
            registration: s.registration_number.clone(),
            message: s.message.clone(),
        },
        gift,
    }
}

fn pick_order(p: &Printed, store_name: String, parcels: &HashMap<OrderPk, i64>) -> PickOrder {
    PickOrder {
        order_id: p.row.order_id.clone(),
        store_name,
        ship_method: if p.row.ship_method_name.is_empty() {
            p.row.ship_method.clone()
        } else {
            p.row.ship_method_name.clone()
        },
        lines: p
            .items
            .iter()
            .map(|i| PickItem {
                item_id: i.item_id.clone(),
                sub_code: i.sub_code.clone(),
                title: i.title.clone(),
                options: i.options.clone(),
                quantity: i.quantity,
            })
            .collect(),
        parcels: parcels.get(&p.row.id).copied().unwrap_or(1),
    }
}

/// Slips to a PDF, one slip after another (each starts on a new region). Returns the bytes and
/// the number of pages.
pub fn write_slips(
    slips: &[Slip],
    paper: Paper,
    title: &str,
    created: DateTime<Utc>,
) -> Result<(Vec<u8>, usize), String> {
    let mut w = Writer::new(paper, title, created);
    for s in slips {
        for frame in slip::layout(s, paper.region()) {
            w.push(frame);
        }
    }
    let pages = w.pages();
    w.finish().map(|pdf| (pdf, pages))
}

/// A picking list to a PDF (A4 portrait).
pub fn write_picking(
    heading: &str,
    orders: &[PickOrder],
    locations: &HashMap<String, String>,
    title: &str,
    created: DateTime<Utc>,
) -> Result<(Vec<u8>, usize), String> {
    let lines = picking::aggregate(orders, locations);
    let mut w = Writer::new(Paper::A4, title, created);
    for frame in picking::layout(heading, &lines, orders, Paper::A4.region()) {
        w.push(frame);
    }
    let pages = w.pages();
    w.finish().map(|pdf| (pdf, pages))
}
