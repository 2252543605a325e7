//! A store's mail settings and the mail to its buyers (issue 29): the sender name and Reply-To,
//! the templates, and the 発送連絡 queued inside the transaction that sets an order's tracking
//! number ([`queue_ship_notices`]), never for an order under fraud review.

use chrono::{DateTime, NaiveDate, Utc};

use super::{
    Db,
    orders::{BatchDialect, HistoryActor, HistoryLine, OrderPk},
    with_pool,
};
use crate::{
    carrier::Carrier,
    db::mail::{MailTx, NewMail},
    domain::{
        AccountId, StoreId,
        buyer_mail::{self, OrderFacts},
        jst,
        mail::MailKind,
    },
};

/// A store's mail settings; a store that never saved any has the defaults (発送連絡 off).
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct StoreMail {
    pub from_name: String,
    pub reply_to: String,
    pub ship_notice_on: bool,
    pub ship_subject: String,
    pub ship_body: String,
    pub free_subject: String,
    pub free_body: String,
}

impl Default for StoreMail {
    fn default() -> StoreMail {
        StoreMail {
            from_name: String::new(),
            reply_to: String::new(),
            ship_notice_on: false,
            ship_subject: buyer_mail::SHIP_SUBJECT.into(),
            ship_body: buyer_mail::SHIP_BODY.into(),
            free_subject: buyer_mail::FREE_SUBJECT.into(),
            free_body: buyer_mail::FREE_BODY.into(),
        }
    }
}

const SETTINGS_SQL: &str =
    "select from_name, reply_to, ship_notice_on, ship_subject, ship_body, free_subject, free_body
     from store_mail where account_id = $1 and store_id = $2";

pub async fn settings(db: &Db, account: AccountId, store: StoreId) -> sqlx::Result<StoreMail> {
    with_pool!(db, |p| {
        let mut conn = p.acquire().await?;
        conn.store_mail(account, store).await
    })
}

pub async fn save(db: &Db, account: AccountId, store: StoreId, m: &StoreMail, now: DateTime<Utc>) -> sqlx::Result<()> {
    with_pool!(db, |p| {
        sqlx::query(
            "insert into store_mail (store_id, account_id, from_name, reply_to, ship_notice_on, ship_subject, ship_body,
                 free_subject, free_body, updated_at)
             select id, account_id, $3, $4, $5, $6, $7, $8, $9, $10 from store where account_id = $1 and id = $2
             on conflict (store_id) do update set from_name = excluded.from_name, reply_to = excluded.reply_to,
                 ship_notice_on = excluded.ship_notice_on, ship_subject = excluded.ship_subject,
                 ship_body = excluded.ship_body, free_subject = excluded.free_subject, free_body = excluded.free_body,
                 updated_at = excluded.updated_at",
        )
        .bind(account)
        .bind(store)
        .bind(&m.from_name)
        .bind(&m.reply_to)
        .bind(m.ship_notice_on)
        .bind(&m.ship_subject)
        .bind(&m.ship_body)
        .bind(&m.free_subject)
        .bind(&m.free_body)
        .bind(now)
        .execute(p)
        .await
        .map(|_| ())
    })
}

/// What a buyer mail knows of one order.
#[derive(Clone, Debug)]
pub struct BuyerOrder {
    pub order_pk: OrderPk,
    pub store: StoreId,
    pub store_name: String,
    pub email: String,
    pub held: bool,
    pub facts: OrderFacts,
}

#[derive(sqlx::FromRow)]
struct OrderRow {
    id: OrderPk,
    store_id: StoreId,
    store_name: String,
    order_id: String,
    order_time: DateTime<Utc>,
    bill_last_name: String,
    bill_first_name: String,
    bill_mail: String,
    ship_last_name: String,
    ship_first_name: String,
    ship_zip_code: String,
    ship_prefecture: String,
    ship_city: String,
    ship_address1: String,
    ship_address2: String,
    total_price: i64,
    fraud_hold_status: i64,
}

const ORDER_SQL: &str = "select o.id, o.store_id, s.name as store_name, o.order_id, o.order_time, o.bill_last_name,
        o.bill_first_name, o.bill_mail, o.ship_last_name, o.ship_first_name, o.ship_zip_code, o.ship_prefecture,
        o.ship_city, o.ship_address1, o.ship_address2, o.total_price, o.fraud_hold_status
     from yahoo_order o join store s on s.id = o.store_id
     where o.account_id = $1 and o.id = $2";
const ITEMS_SQL: &str = "select title, quantity from order_item where order_pk = $1 order by line_id";

fn buyer_order(r: OrderRow, items: Vec<(String, i64)>) -> BuyerOrder {
    let name = |last: &str, first: &str| format!("{last} {first}").trim().to_owned();
    let ship_to = format!(
        "{} 様\n〒{} {}{}{}{}",
        name(&r.ship_last_name, &r.ship_first_name),
        r.ship_zip_code,
        r.ship_prefecture,
        r.ship_city,
        r.ship_address1,
        r.ship_address2
    );
    BuyerOrder {
        order_pk: r.id,
        store: r.store_id,
        store_name: r.store_name.clone(),
        email: r.bill_mail,
        held: r.fraud_hold_status == 1,
        facts: OrderFacts {
            order_id: r.order_id,
            order_date: jst::format_display(r.order_time).chars().take(10).collect(),
            buyer_name: name(&r.bill_last_name, &r.bill_first_name),
            ship_to,
            lines: items,
            total: r.total_price,
            store: r.store_name,
            ..OrderFacts::default()
        },
    }
}

/// The reads and writes of buyer mail inside a transaction, once for both backends.
pub(crate) trait BuyerMailTx {
    async fn buyer_order(&mut self, account: AccountId, order: OrderPk) -> sqlx::Result<Option<BuyerOrder>>;
    async fn store_mail(&mut self, account: AccountId, store: StoreId) -> sqlx::Result<StoreMail>;
    /// Whether the order's 発送連絡 was queued before.
    async fn ship_notice_sent(&mut self, account: AccountId, order: OrderPk) -> sqlx::Result<bool>;
}

macro_rules! buyer_mail_tx {
    ($conn:ty) => {
        impl BuyerMailTx for $conn {
            async fn buyer_order(&mut self, account: AccountId, order: OrderPk) -> sqlx::Result<Option<BuyerOrder>> {
                let Some(row): Option<OrderRow> =
                    sqlx::query_as(ORDER_SQL).bind(account).bind(order).fetch_optional(&mut *self).await?
                else {
                    return Ok(None);
                };
                let items: Vec<(String, i64)> = sqlx::query_as(ITEMS_SQL).bind(order).fetch_all(&mut *self).await?;
                Ok(Some(buyer_order(row, items)))
            }

            async fn store_mail(&mut self, account: AccountId, store: StoreId) -> sqlx::Result<StoreMail> {
                Ok(sqlx::query_as(SETTINGS_SQL)
                    .bind(account)
                    .bind(store)
                    .fetch_optional(&mut *self)
                    .await?
                    .unwrap_or_default())
            }

            async fn ship_notice_sent(&mut self, account: AccountId, order: OrderPk) -> sqlx::Result<bool> {
                let n: i64 = sqlx::query_scalar(
                    "select count(*) from order_history where account_id = $1 and order_pk = $2 and kind = 'ship_notice'",
                )
                .bind(account)
                .bind(order)
                .fetch_one(&mut *self)
                .await?;
                Ok(n > 0)
            }
        }
    };
}

buyer_mail_tx!(sqlx::SqliteConnection);
buyer_mail_tx!(sqlx::PgConnection);

/// An order that just got its tracking number.
pub struct Shipped {
    pub order: OrderPk,
    pub carrier: Carrier,
    pub number: String,
    pub ship_date: NaiveDate,
}

/// The mail a buyer gets from the store for `order` (its sender and Reply-To the store's).
pub fn buyer_mail(
    account: AccountId,
    kind: MailKind,
    order: &BuyerOrder,
    settings: &StoreMail,
    subject: String,
    body: String,
) -> NewMail {
    NewMail {
        from_name: if settings.from_name.trim().is_empty() {
            order.store_name.clone()
        } else {
            settings.from_name.clone()
        },
        reply_to: settings.reply_to.clone(),
        ..NewMail::plain(account, Some(order.store), kind, &order.email, subject, body)
    }
}

/// Fills a store's 発送連絡 for an order that shipped.
pub fn ship_notice(account: AccountId, order: &BuyerOrder, s: &Shipped, settings: &StoreMail) -> NewMail {
    let facts = OrderFacts {
        carrier: s.carrier.label().to_owned(),
        tracking: s.number.clone(),
        tracking_url: s.carrier.tracking_url(&s.number),
        ship_date: s.ship_date.format("%Y-%m-%d").to_string(),
        ..order.facts.clone()
    };
    let values = buyer_mail::values(&facts);
    let subject = buyer_mail::render(&settings.ship_subject, &values);
    let body = buyer_mail::render(&settings.ship_body, &values);
    buyer_mail(account, MailKind::ShipNotice, order, settings, subject, body)
}

/// Queues the 発送連絡 of orders that just got their first tracking number, inside the
/// transaction that set it: only where the store switched it on, once per order, never for an
/// order under fraud review (which cannot get a number anyway: the status change refuses it;
/// this asks again), never without an address. Each is written on the order's 履歴.
pub(crate) async fn queue_ship_notices<C: BuyerMailTx + MailTx + BatchDialect>(
    conn: &mut C,
    account: AccountId,
    shipped: &[Shipped],
    actor: &HistoryActor,
    now: DateTime<Utc>,
) -> sqlx::Result<usize> {
    let mut queued = 0;
    let mut settings: Vec<(StoreId, StoreMail)> = Vec::new();
    for s in shipped {
        let Some(order) = conn.buyer_order(account, s.order).await? else { continue };
        if order.held || order.email.trim().is_empty() || !order.email.contains('@') {
            continue;
        }
        if !settings.iter().any(|(id, _)| *id == order.store) {
            let m = conn.store_mail(account, order.store).await?;
            settings.push((order.store, m));
        }
        let Some((_, m)) = settings.iter().find(|(id, _)| *id == order.store) else { continue };
        if !m.ship_notice_on || conn.ship_notice_sent(account, s.order).await? {
            continue;
        }
        let mail = ship_notice(account, &order, s, m);
        let id = conn.queue_one(&mail, now).await?;
        let line = HistoryLine {
            kind: "ship_notice",
            message: format!("発送連絡メールをお客様に送りました（送信メール #{id}、お問い合わせ番号 {}）", s.number),
        };
        conn.insert_history(account, actor.parts(), now, &[(s.order, &line)]).await?;
        queued += 1;
    }
    Ok(queued)
}

/// One order as a buyer mail sees it (the preview and the free message).
pub async fn order(db: &Db, account: AccountId, order: OrderPk) -> sqlx::Result<Option<BuyerOrder>> {
    with_pool!(db, |p| {
        let mut conn = p.acquire().await?;
        conn.buyer_order(account, order).await
    })
}

/// The store's newest order (for a preview when none is named).
pub async fn newest_order(db: &Db, account: AccountId, store: StoreId) -> sqlx::Result<Option<OrderPk>> {
    with_pool!(db, |p| {
        sqlx::query_scalar("select id from yahoo_order where account_id = $1 and store_id = $2 order by order_time desc, id desc limit 1")
            .bind(account)
            .bind(store)
            .fetch_optional(p)
            .await
    })
}

/// A store's order by its Yahoo order ID (the preview's 「注文ID」 field).
pub async fn order_by_id(db: &Db, account: AccountId, store: StoreId, order_id: &str) -> sqlx::Result<Option<OrderPk>> {
    with_pool!(db, |p| {
        sqlx::query_scalar("select id from yahoo_order where account_id = $1 and store_id = $2 and order_id = $3")
            .bind(account)
            .bind(store)
            .bind(order_id.trim())
            .fetch_optional(p)
            .await
    })
}

/// Queues a free message to an order's buyer and writes it on the order's 履歴, in one
/// transaction; the mail's id.
pub async fn send_message(
    db: &Db,
    account: AccountId,
    order: OrderPk,
    mail: &NewMail,
    actor: &HistoryActor,
    now: DateTime<Utc>,
) -> sqlx::Result<i64> {
    with_pool!(db, |p| {
        let mut tx = p.begin().await?;
        let id = tx.queue_one(mail, now).await?;
        let line = HistoryLine {
            kind: "buyer_message",
            message: format!("お客様にメールを送りました（送信メール #{id}）"),
        };
        tx.insert_history(account, actor.parts(), now, &[(order, &line)]).await?;
        tx.commit().await?;
        Ok(id)
    })
}
