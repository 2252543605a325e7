//! `orderdesk bench orders`: the order desk under load. Fills one account with a million orders
//! over twenty stores straight through SQL (the triggers of 0014 keep the tab counters and the
//! search terms, as they do for an import), starts the server as a child process of this binary
//! (`bench orders-server`: the same state and `web::router` as `serve`, plus a bare page of the
//! same stack), signs in over HTTP and drives it from this process over loopback.
//!
//! The server runs in a child process so that its peak RSS (VmHWM of /proc/<pid>/status) is the
//! server's alone: neither the seeding nor the load generator count.

use std::{
    fmt::Write as _,
    io::{BufRead, BufReader},
    net::SocketAddr,
    path::Path,
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use askama::Template;
use axum::{Router, extract::State, response::Response, routing::get};
use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use rand::{Rng, SeedableRng, seq::SliceRandom};
use rand_chacha::ChaCha8Rng;

use super::bench::{bench_db, drop_bench_db};
use crate::{
    app::AppState,
    config::Config,
    db::{Db, accounts, order_list::Cursor, orders::OrderPk, stores, with_pool},
    domain::{
        AccountId, StoreId,
        store::{Environment, StoreSettings},
    },
    web::{error::AppResult, render::ok, session::Merchant},
};

/// The bare page's path: served only by the benchmark's server, never by `serve`.
const BARE_PATH: &str = "/bench/bare";
/// The line the child server prints once it listens.
const LISTEN_MARKER: &str = "orderdesk-bench-listening ";
const PASSWORD: &str = "bench password 1234";
const OWNER_EMAIL: &str = "owner@bench-orders.example";

/// What `bench orders` runs.
#[derive(Clone, Debug)]
pub struct Options {
    pub orders: usize,
    pub stores: usize,
    /// Seconds measured per scenario (after a short warm-up).
    pub seconds: u64,
    pub concurrency: usize,
    pub postgres: Option<String>,
    /// Orders in the large CSV export (a date range chosen to hold about this many).
    pub csv_orders: usize,
    pub skip_sqlite: bool,
    /// Wait (up to `wait_secs`) for the 1-minute load average to fall below this before measuring.
    pub max_load: f64,
    pub wait_secs: u64,
    /// SQLite only: the folder the seeded database is kept in and reused from.
    pub keep: Option<std::path::PathBuf>,
    /// Only the scenarios whose name contains this (the bare page always runs).
    pub only: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// The data: deterministic orders from a seed.

/// Family names are two parts (kanji, katakana reading): 40 × 50 = 2,000 names, so that a
/// search for one hits about 0.05 % of the orders.
const FAMILY_HEAD: [(&str, &str); 40] = [
    ("山", "ヤマ"),
    ("高", "タカ"),
    ("佐", "サ"),
    ("鈴", "スズ"),
    ("伊", "イ"),
    ("渡", "ワタ"),
    ("中", "ナカ"),
    ("小", "コ"),
    ("加", "カ"),
    ("吉", "ヨシ"),
    ("松", "マツ"),
    ("井", "イ"),
    ("木", "キ"),
    ("林", "ハヤシ"),
    ("清", "キヨ"),
    ("斎", "サイ"),
    ("森", "モリ"),
    ("池", "イケ"),
    ("橋", "ハシ"),
    ("阿", "ア"),
    ("石", "イシ"),
    ("前", "マエ"),
    ("藤", "フジ"),
    ("岡", "オカ"),
    ("長", "ナガ"),
    ("村", "ムラ"),
    ("坂", "サカ"),
    ("遠", "エン"),
    ("青", "アオ"),
    ("西", "ニシ"),
    ("福", "フク"),
    ("太", "オオ"),
    ("三", "ミ"),
    ("原", "ハラ"),
    ("宮", "ミヤ"),
    ("金", "カネ"),
    ("今", "イマ"),
    ("野", "ノ"),
    ("北", "キタ"),
    ("大", "オオ"),
];
const FAMILY_TAIL: [(&str, &str); 50] = [
    ("田", "ダ"),
    ("本", "モト"),
    ("川", "カワ"),
    ("藤", "トウ"),
    ("野", "ノ"),
    ("口", "グチ"),
    ("木", "キ"),
    ("村", "ムラ"),
    ("島", "シマ"),
    ("井", "イ"),
    ("原", "ハラ"),
    ("崎", "サキ"),
    ("沢", "サワ"),
    ("谷", "タニ"),
    ("部", "ベ"),
    ("内", "ウチ"),
    ("辺", "ベ"),
    ("上", "ウエ"),
    ("下", "シタ"),
    ("尾", "オ"),
    ("橋", "ハシ"),
    ("岡", "オカ"),
    ("山", "ヤマ"),
    ("林", "バヤシ"),
    ("森", "モリ"),
    ("城", "シロ"),
    ("浦", "ウラ"),
    ("塚", "ツカ"),
    ("瀬", "セ"),
    ("宮", "ミヤ"),
    ("江", "エ"),
    ("池", "イケ"),
    ("畑", "ハタ"),
    ("坂", "サカ"),
    ("松", "マツ"),
    ("西", "ニシ"),
    ("東", "ヒガシ"),
    ("中", "ナカ"),
    ("永", "ナガ"),
    ("石", "イシ"),
    ("平", "ヒラ"),
    ("葉", "ハ"),
    ("見", "ミ"),
    ("岸", "ギシ"),
    ("垣", "ガキ"),
    ("倉", "クラ"),
    ("熊", "クマ"),
    ("月", "ツキ"),
    ("間", "マ"),
    ("堀", "ホリ"),
];
const GIVEN: [(&str, &str); 40] = [
    ("太郎", "タロウ"),
    ("花子", "ハナコ"),
    ("翔", "ショウ"),
    ("陽菜", "ヒナ"),
    ("大翔", "ヒロト"),
    ("結衣", "ユイ"),
    ("健", "ケン"),
    ("美咲", "ミサキ"),
    ("誠", "マコト"),
    ("さくら", "サクラ"),
    ("一郎", "イチロウ"),
    ("直子", "ナオコ"),
    ("浩", "ヒロシ"),
    ("裕子", "ユウコ"),
    ("悠真", "ユウマ"),
    ("葵", "アオイ"),
    ("蓮", "レン"),
    ("凛", "リン"),
    ("拓海", "タクミ"),
    ("優子", "ユウコ"),
    ("隆", "タカシ"),
    ("恵", "メグミ"),
    ("大輔", "ダイスケ"),
    ("明美", "アケミ"),
    ("修", "オサム"),
    ("智子", "トモコ"),
    ("亮", "リョウ"),
    ("真由美", "マユミ"),
    ("和也", "カズヤ"),
    ("愛", "アイ"),
    ("達也", "タツヤ"),
    ("由美", "ユミ"),
    ("剛", "ツヨシ"),
    ("綾", "アヤ"),
    ("健太", "ケンタ"),
    ("舞", "マイ"),
    ("聡", "サトシ"),
    ("陽子", "ヨウコ"),
    ("翼", "ツバサ"),
    ("千尋", "チヒロ"),
];
const PLACES: [(&str, &str, &str); 10] = [
    ("100-0001", "東京都", "千代田区千代田"),
    ("530-0001", "大阪府", "大阪市北区梅田"),
    ("460-0008", "愛知県", "名古屋市中区栄"),
    ("810-0001", "福岡県", "福岡市中央区天神"),
    ("060-0001", "北海道", "札幌市中央区北一条西"),
    ("980-0811", "宮城県", "仙台市青葉区一番町"),
    ("730-0011", "広島県", "広島市中区基町"),
    ("220-0011", "神奈川県", "横浜市西区高島"),
    ("600-8216", "京都府", "京都市下京区東塩小路町"),
    ("900-0015", "沖縄県", "那覇市久茂地"),
];
const PRODUCTS: [(&str, i64, i64); 12] = [
    ("オーガニック緑茶 100g", 1280, 8),
    ("有田焼 マグカップ", 2480, 10),
    ("今治タオル フェイスタオル 2枚組", 1980, 10),
    ("北海道産 ゆめぴりか 5kg", 3580, 8),
    ("ステンレス水筒 500ml", 2980, 10),
    ("手ぬぐい 桜柄", 980, 10),
    ("国産はちみつ 300g", 2160, 8),
    ("南部鉄器 急須", 8800, 10),
    ("リネンシャツ", 6900, 10),
    ("抹茶ロールケーキ", 2700, 8),
    ("木製カッティングボード", 3300, 10),
    ("ワイヤレスイヤホン", 12800, 10),
];
const PAY_METHODS: [(&str, &str); 4] = [
    ("payment_a1", "クレジットカード決済"),
    ("payment_a16", "PayPay残高等払い"),
    ("payment_b1", "銀行振込"),
    ("payment_d1", "商品代引"),
];

/// Internal statuses with their share (per mille) of the orders that are not held.
const STATUS_MIX: [(&str, u32); 9] = [
    ("completed", 560),
    ("shipped", 150),
    ("awaiting_shipment", 90),
    ("awaiting_payment", 50),
    ("new", 50),
    ("cancelled", 50),
    ("on_hold", 30),
    ("failed", 10),
    ("auto_import_inbox", 10),
];

fn family(i: usize) -> (String, String) {
    let (h, hk) = FAMILY_HEAD[i / FAMILY_TAIL.len() % FAMILY_HEAD.len()];
    let (t, tk) = FAMILY_TAIL[i % FAMILY_TAIL.len()];
    (format!("{h}{t}"), format!("{hk}{tk}"))
}

fn family_names() -> usize {
    FAMILY_HEAD.len() * FAMILY_TAIL.len()
}

/// A SQL string literal (the generated text holds no quotes, but be safe).
fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// A timestamp literal as sqlx writes `DateTime<Utc>` into SQLite (RFC 3339, `+00:00`), which
/// PostgreSQL reads as well: the text the list's comparisons see is the import's.
fn ts(t: DateTime<Utc>) -> String {
    lit(&t.to_rfc3339_opts(SecondsFormat::AutoSi, false))
}

fn day(t: DateTime<Utc>) -> String {
    lit(&t.date_naive().format("%F").to_string())
}

/// Generates the orders in id order (and order-time order, as imports store them).
struct Generator {
    rng: ChaCha8Rng,
    account: i64,
    stores: Vec<i64>,
    next_in_store: Vec<u64>,
    first_id: i64,
    total: usize,
    start: DateTime<Utc>,
    span_secs: f64,
}

/// One statement batch: orders, their item lines and one history line each.
struct SeedBatch {
    sql: String,
    orders: usize,
}

const ORDER_COLUMNS: &str = "id, account_id, store_id, order_id, version, order_time, last_update_time, publication_time, \
    order_status, is_seen, fraud_hold_status, buyer_comments, pay_status, pay_method, pay_method_name, pay_date, \
    bill_last_name, bill_first_name, bill_last_name_kana, bill_first_name_kana, bill_zip_code, bill_prefecture, \
    bill_city, bill_address1, bill_address2, bill_phone, bill_mail, ship_status, ship_method, ship_method_name, \
    ship_date, ship_company_code, ship_invoice_number1, ship_last_name, ship_first_name, ship_last_name_kana, \
    ship_first_name_kana, ship_zip_code, ship_prefecture, ship_city, ship_address1, ship_address2, ship_phone, \
    pay_charge, ship_charge, discount, use_point, total_price, settle_amount, internal_status, cancel_flagged, \
    checked_at, imported_at, updated_at";

impl Generator {
    fn new(seed: u64, account: AccountId, stores: &[StoreId], first_id: i64, total: usize, end: DateTime<Utc>) -> Self {
        let span_secs = 365.0 * 86_400.0;
        Generator {
            rng: ChaCha8Rng::seed_from_u64(seed),
            account: account.0,
            stores: stores.iter().map(|s| s.0).collect(),
            next_in_store: vec![0; stores.len()],
            first_id,
            total,
            start: end - chrono::Duration::seconds(span_secs as i64),
            span_secs,
        }
    }

    fn order_time(&mut self, i: usize) -> DateTime<Utc> {
        let secs = self.span_secs * i as f64 / self.total.max(1) as f64;
        self.start + chrono::Duration::seconds(secs as i64)
    }

    fn batch(&mut self, from: usize, to: usize) -> SeedBatch {
        let mut orders = String::with_capacity((to - from) * 900);
        let mut items = String::with_capacity((to - from) * 300);
        let mut history = String::with_capacity((to - from) * 150);
        for i in from..to {
            self.order(i, &mut orders, &mut items, &mut history);
        }
        let sql = format!(
            "insert into yahoo_order ({ORDER_COLUMNS}) values {orders};\n\
             insert into order_item (order_pk, line_id, item_id, title, sub_code, options, unit_price, quantity, tax_ratio, product_id) values {items};\n\
             insert into order_history (account_id, order_pk, actor_type, actor, kind, message, created_at) values {history};"
        );
        SeedBatch { sql, orders: to - from }
    }

    fn order(&mut self, i: usize, orders: &mut String, items: &mut String, history: &mut String) {
        let r = &mut self.rng;
        let id = self.first_id + i as i64;
        let s = r.gen_range(0..self.stores.len());
        self.next_in_store[s] += 1;
        let order_id = format!("bench{:02}-{:08}", s + 1, 10_000_000 + self.next_in_store[s]);
        let order_time = {
            let base = self.order_time(i);
            base + chrono::Duration::seconds(self.rng.gen_range(0..20))
        };
        let r = &mut self.rng;
        let published = order_time + chrono::Duration::seconds(r.gen_range(30..900));
        // Fraud hold: 3.5 % under review, 1.5 % confirmed, 3 % released.
        let hold: i64 = match r.gen_range(0..1000) {
            0..35 => 1,
            35..50 => 3,
            50..80 => 2,
            _ => 0,
        };
        let status: &str = match hold {
            // Held orders stay in their imported status or are cancelled (the rule).
            1 => {
                if r.gen_bool(0.1) {
                    "cancelled"
                } else {
                    "new"
                }
            }
            3 => {
                if r.gen_bool(0.5) {
                    "cancelled"
                } else {
                    "new"
                }
            }
            _ => {
                let mut k = r.gen_range(0..1000u32);
                let mut pick = "completed";
                for (st, w) in STATUS_MIX {
                    if k < w {
                        pick = st;
                        break;
                    }
                    k -= w;
                }
                pick
            }
        };
        let cancel_flagged = hold == 3 && status != "cancelled";
        let order_status = match status {
            "cancelled" => 4,
            "completed" => 5,
            "on_hold" => 3,
            _ => 2,
        };
        let (pay_method, pay_name) = PAY_METHODS[r.gen_range(0..PAY_METHODS.len())];
        let paid = !matches!(status, "awaiting_payment" | "new") || pay_method != "payment_b1";
        let pay_status = if paid { 1 } else { 0 };
        let ship_status = match status {
            "shipped" | "completed" => 3,
            "awaiting_shipment" => 1,
            _ => 0,
        };
        let (fam, fam_kana) = family(r.gen_range(0..family_names()));
        let (given, given_kana) = GIVEN[r.gen_range(0..GIVEN.len())];
        let (ship_fam, ship_fam_kana, ship_given, ship_given_kana) = if r.gen_bool(0.85) {
            (fam.clone(), fam_kana.clone(), given, given_kana)
        } else {
            let (f, fk) = family(r.gen_range(0..family_names()));
            let (g, gk) = GIVEN[r.gen_range(0..GIVEN.len())];
            (f, fk, g, gk)
        };
        let phone =
            format!("0{}0-{:04}-{:04}", [7, 8, 9][r.gen_range(0..3)], r.gen_range(0..10_000), r.gen_range(0..10_000));
        let ship_phone = if ship_fam == fam {
            phone.clone()
        } else {
            format!("0{}0-{:04}-{:04}", [7, 8, 9][r.gen_range(0..3)], r.gen_range(0..10_000), r.gen_range(0..10_000))
        };
        let mail = format!("buyer{:08x}@example.ne.jp", r.r#gen::<u32>());
        let (zip, pref, city) = PLACES[r.gen_range(0..PLACES.len())];
        let address1 = format!("{}-{}-{}", r.gen_range(1..10), r.gen_range(1..30), r.gen_range(1..20));
        let (ship_zip, ship_pref, ship_city) =
            if ship_fam == fam { (zip, pref, city) } else { PLACES[r.gen_range(0..PLACES.len())] };
        let lines = match r.gen_range(0..10) {
            0..6 => 1,
            6..9 => 2,
            _ => 3,
        };
        let mut goods = 0;
        for line in 1..=lines {
            let p = r.gen_range(0..PRODUCTS.len());
            let (title, price, tax) = PRODUCTS[p];
            let quantity = if r.gen_bool(0.8) { 1 } else { r.gen_range(2..4) };
            goods += price * quantity;
            let options = if p == 8 { r#"[["サイズ","M"],["カラー","生成り"]]"# } else { "[]" };
            if !items.is_empty() {
                items.push(',');
            }
            let _ = write!(
                items,
                "({id},{line},{},{},'',{},{price},{quantity},{tax},'')",
                lit(&format!("item-{:04}", p + 1)),
                lit(title),
                lit(options)
            );
        }
        let ship_charge = if goods >= 5000 { 0 } else { 600 };
        let pay_charge = if pay_method == "payment_d1" { 330 } else { 0 };
        let discount = if r.gen_bool(0.1) { 300 } else { 0 };
        let use_point = if r.gen_bool(0.3) { r.gen_range(1..200) } else { 0 };
        let total = goods + ship_charge + pay_charge - discount;
        let shipped = ship_status == 3;
        let invoice =
            if shipped { format!("{:012}", r.gen_range(100_000_000_000u64..999_999_999_999)) } else { String::new() };
        let version = r.gen_range(1..6);
        let imported = published + chrono::Duration::seconds(60);
        let (ts_order, ts_pub, ts_imp) = (ts(order_time), ts(published), ts(imported));
        let pay_date = if paid { day(order_time) } else { "null".into() };
        let ship_date = if shipped { day(order_time + chrono::Duration::days(2)) } else { "null".into() };
        if !orders.is_empty() {
            orders.push(',');
        }
        let _ = write!(
            orders,
            "({id},{acc},{store},{oid},{version},{ts_order},{ts_pub},{ts_pub},{order_status},true,{hold},'',{pay_status},{pm},{pn},{pay_date},\
             {bl},{bf},{blk},{bfk},{zip},{pref},{city},{a1},'',{phone},{mail},{ship_status},'postage1','宅配便',{ship_date},{company},{inv},\
             {sl},{sf},{slk},{sfk},{szip},{spref},{scity},{a1},'',{sphone},{pay_charge},{ship_charge},{discount},{use_point},{total},{settle},\
             {status},{flag},{ts_imp},{ts_imp},{ts_imp})",
            acc = self.account,
            store = self.stores[s],
            oid = lit(&order_id),
            pm = lit(pay_method),
            pn = lit(pay_name),
            bl = lit(&fam),
            bf = lit(given),
            blk = lit(&fam_kana),
            bfk = lit(given_kana),
            zip = lit(zip),
            pref = lit(pref),
            city = lit(city),
            a1 = lit(&address1),
            phone = lit(&phone),
            mail = lit(&mail),
            company = if shipped { "'1001'" } else { "''" },
            inv = lit(&invoice),
            sl = lit(&ship_fam),
            sf = lit(ship_given),
            slk = lit(&ship_fam_kana),
            sfk = lit(ship_given_kana),
            szip = lit(ship_zip),
            spref = lit(ship_pref),
            scity = lit(ship_city),
            sphone = lit(&ship_phone),
            settle = total - use_point,
            status = lit(status),
            flag = cancel_flagged,
        );
        if !history.is_empty() {
            history.push(',');
        }
        let _ = write!(history, "({},{id},'job','','import','注文を取り込みました',{ts_imp})", self.account);
    }
}

/// What the seed left, for the scenarios.
#[derive(Clone, Debug)]
pub struct Seeded {
    pub first_id: i64,
    pub last_id: i64,
    /// The newest order's time.
    pub newest: DateTime<Utc>,
}

/// Inserts `total` orders of `account` over `stores` in large transactions, through the
/// triggers (tab counters, search terms) exactly as an import's inserts would.
pub async fn seed(
    db: &Db,
    account: AccountId,
    stores: &[StoreId],
    total: usize,
    end: DateTime<Utc>,
    progress: bool,
) -> anyhow::Result<Seeded> {
    anyhow::ensure!(!stores.is_empty(), "no stores to seed");
    let (max_id,): (Option<i64>,) =
        with_pool!(db, |p| sqlx::query_as("select max(id) from yahoo_order").fetch_one(p).await)?;
    let first_id = max_id.unwrap_or(0) + 1;
    let per_statement = 1000;
    let per_transaction = 50_000;
    let mut generator = Generator::new(20_261_130, account, stores, first_id, total, end);
    let newest = generator.order_time(total.saturating_sub(1)) + chrono::Duration::seconds(20);
    // Generated on a thread of its own while the database writes the previous batch.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<SeedBatch>(4);
    let producer = tokio::task::spawn_blocking(move || {
        let mut from = 0;
        while from < total {
            let to = (from + per_statement).min(total);
            if tx.blocking_send(generator.batch(from, to)).is_err() {
                break;
            }
            from = to;
        }
    });
    let postgres = matches!(db, Db::Postgres(_));
    let started = Instant::now();
    let mut done = 0usize;
    with_pool!(db, |p| {
        let mut conn = p.acquire().await?;
        // The insert triggers do per row (SQLite) or per statement (PostgreSQL) what is done
        // here once for all the new rows afterwards, with the same statements the migration
        // used for rows that existed before it: the end state is the triggers'.
        let saved: Vec<(String,)> = if postgres {
            sqlx::raw_sql(
                "alter table yahoo_order disable trigger yahoo_order_count_insert;
                 alter table yahoo_order disable trigger yahoo_order_search_insert",
            )
            .execute(&mut *conn)
            .await?;
            Vec::new()
        } else {
            sqlx::raw_sql("pragma cache_size = -262144").execute(&mut *conn).await?;
            let saved: Vec<(String,)> = sqlx::query_as(
                "select sql from sqlite_master where type = 'trigger'
                 and name in ('yahoo_order_count_insert', 'yahoo_order_search_insert')",
            )
            .fetch_all(&mut *conn)
            .await?;
            anyhow::ensure!(saved.len() == 2, "the insert triggers of 0014 are not there");
            sqlx::raw_sql("drop trigger yahoo_order_count_insert; drop trigger yahoo_order_search_insert")
                .execute(&mut *conn)
                .await?;
            saved
        };
        while done < total {
            let mut tx = sqlx::Connection::begin(&mut *conn).await?;
            if postgres {
                sqlx::raw_sql("set local synchronous_commit = off").execute(&mut *tx).await?;
            }
            let mut in_tx = 0;
            while in_tx < per_transaction && done < total {
                let Some(batch) = rx.recv().await else { anyhow::bail!("the order generator stopped") };
                sqlx::raw_sql(&batch.sql).execute(&mut *tx).await?;
                in_tx += batch.orders;
                done += batch.orders;
            }
            tx.commit().await?;
            if progress && done % 200_000 < per_transaction {
                println!("    … {done} orders ({:.0} orders/s)", done as f64 / started.elapsed().as_secs_f64());
            }
        }
        let (first, last) = (first_id, first_id + total as i64 - 1);
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        sqlx::raw_sql(&format!(
            "insert into order_status_count (account_id, store_id, internal_status, n)
             select account_id, store_id, internal_status, count(*) from yahoo_order where id between {first} and {last}
             group by account_id, store_id, internal_status
             on conflict (account_id, store_id, internal_status) do update set n = order_status_count.n + excluded.n"
        ))
        .execute(&mut *tx)
        .await?;
        if postgres {
            sqlx::raw_sql(&format!(
                "insert into order_search (account_id, term, order_pk, order_time)
                 select o.account_id, t, o.id, o.order_time from yahoo_order o
                 cross join lateral order_search_terms(o.order_id, o.bill_phone, o.ship_phone, o.bill_mail, o.bill_last_name,
                     o.bill_first_name, o.bill_last_name_kana, o.bill_first_name_kana, o.ship_last_name, o.ship_first_name,
                     o.ship_last_name_kana, o.ship_first_name_kana) t
                 where o.id between {first} and {last}
                 on conflict do nothing;
                 alter table yahoo_order enable trigger yahoo_order_count_insert;
                 alter table yahoo_order enable trigger yahoo_order_search_insert"
            ))
            .execute(&mut *tx)
            .await?;
        } else {
            sqlx::raw_sql(&format!(
                "insert or ignore into order_search (account_id, term, order_pk, order_time)
                 select account_id, term, order_pk, order_time from order_search_terms
                 where order_pk between {first} and {last} and term <> '' order by 1, 2, 3"
            ))
            .execute(&mut *tx)
            .await?;
            for (sql,) in &saved {
                sqlx::raw_sql(sql).execute(&mut *tx).await?;
            }
        }
        tx.commit().await?;
        if postgres {
            sqlx::raw_sql(
                "select setval(pg_get_serial_sequence('yahoo_order', 'id'), (select max(id) from yahoo_order));
                 select setval(pg_get_serial_sequence('order_history', 'id'), (select max(id) from order_history))",
            )
            .execute(&mut *conn)
            .await?;
        } else {
            sqlx::raw_sql("pragma cache_size = -2000").execute(&mut *conn).await?;
        }
        anyhow::Ok(())
    })?;
    producer.await?;
    Ok(Seeded { first_id, last_id: first_id + total as i64 - 1, newest })
}

/// The tab counters against a count of the rows: (counted total, mismatching (store, status) keys).
pub async fn check_counters(db: &Db, account: AccountId) -> anyhow::Result<(i64, Vec<String>)> {
    let counted: Vec<(i64, String, i64)> = with_pool!(db, |p| {
        sqlx::query_as(
            "select store_id, internal_status, count(*) from yahoo_order where account_id = $1
             group by store_id, internal_status",
        )
        .bind(account)
        .fetch_all(p)
        .await
    })?;
    let kept: Vec<(i64, String, i64)> = with_pool!(db, |p| {
        sqlx::query_as("select store_id, internal_status, n from order_status_count where account_id = $1 and n <> 0")
            .bind(account)
            .fetch_all(p)
            .await
    })?;
    let mut wrong = Vec::new();
    for row in &counted {
        if !kept.contains(row) {
            wrong.push(format!(
                "{}/{}: {} counted, kept {:?}",
                row.0,
                row.1,
                row.2,
                kept.iter().find(|k| k.0 == row.0 && k.1 == row.1)
            ));
        }
    }
    if kept.len() != counted.len() {
        wrong.push(format!("{} counters kept for {} (store, status) pairs", kept.len(), counted.len()));
    }
    // The held orders' counters (`order_hold_count`) likewise.
    let held_counted: Vec<(i64, i64)> = with_pool!(db, |p| {
        sqlx::query_as(
            "select store_id, count(*) from yahoo_order where account_id = $1 and fraud_hold_status in (1, 3)
             group by store_id",
        )
        .bind(account)
        .fetch_all(p)
        .await
    })?;
    let held_kept: Vec<(i64, i64)> = with_pool!(db, |p| {
        sqlx::query_as("select store_id, n from order_hold_count where account_id = $1 and n <> 0")
            .bind(account)
            .fetch_all(p)
            .await
    })?;
    for row in &held_counted {
        if !held_kept.contains(row) {
            wrong.push(format!(
                "store {}: {} held counted, kept {:?}",
                row.0,
                row.1,
                held_kept.iter().find(|k| k.0 == row.0)
            ));
        }
    }
    if held_kept.len() != held_counted.len() {
        wrong.push(format!("{} held counters kept for {} stores", held_kept.len(), held_counted.len()));
    }
    Ok((counted.iter().map(|r| r.2).sum(), wrong))
}

// ---------------------------------------------------------------------------------------------
// The server (child process) and its bare page.

#[derive(sqlx::FromRow)]
struct BareRow {
    id: i64,
    order_id: String,
    order_time: DateTime<Utc>,
    bill_last_name: String,
    total_price: i64,
}

#[derive(Template)]
#[template(
    source = r#"<!doctype html>
<html lang="ja"><head><meta charset="utf-8"><title>bare</title></head><body>
<table>{% for r in rows %}<tr><td>{{ r.id }}</td><td>{{ r.order_id }}</td><td>{{ r.order_time }}</td><td>{{ r.bill_last_name }}</td><td>{{ r.total_price }}</td></tr>
{% endfor %}</table></body></html>"#,
    ext = "html"
)]
struct BarePage {
    rows: Vec<BareRow>,
}

/// One indexed query of 50 rows rendered by askama, behind the same layers and session.
async fn bare(State(state): State<AppState>, me: Merchant) -> AppResult<Response> {
    let rows: Vec<BareRow> = with_pool!(&state.db, |p| {
        sqlx::query_as(
            "select id, order_id, order_time, bill_last_name, total_price from yahoo_order
             where account_id = $1 order by order_time desc, id desc limit 50",
        )
        .bind(me.account_id())
        .fetch_all(p)
        .await
    })?;
    Ok(ok(&BarePage { rows }))
}

/// `bench orders-server` (hidden): what `serve` serves (same state, same `web::router`), plus
/// the bare page, without the scheduler. Prints its address, stops when stdin closes.
pub async fn serve_child(mut config: Config) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    config.listen = addr;
    config.public_url = Some(config.public_url());
    let state = AppState::new(config).await?;
    let extra = Router::<AppState>::new().route(BARE_PATH, get(bare));
    let app = crate::web::router_with(state.clone(), extra).into_make_service_with_connect_info::<SocketAddr>();
    println!("{LISTEN_MARKER}{addr}");
    let stdin_closed = async {
        let _ = tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            let _ = std::io::stdin().read_line(&mut line);
        })
        .await;
    };
    axum::serve(listener, app).with_graceful_shutdown(stdin_closed).await?;
    state.db.close().await;
    Ok(())
}

struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(data_dir: &Path, database_url: Option<&str>, secret_key: &str) -> anyhow::Result<Server> {
        let mut cmd = Command::new(std::env::current_exe()?);
        cmd.args(["bench", "orders-server"])
            .env_remove("DATABASE_URL")
            .env("ORDERDESK_DATA_DIR", data_dir)
            .env("ORDERDESK_LISTEN", "127.0.0.1:0")
            .env("ORDERDESK_SIMULATOR", "off")
            .env("ORDERDESK_SCHEDULER", "false")
            .env_remove("ORDERDESK_PUBLIC_URL")
            .env("ORDERDESK_SECRET_KEY", secret_key)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(url) = database_url {
            cmd.env("DATABASE_URL", url);
        }
        let mut child = cmd.spawn()?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow::anyhow!("no stdout"))?;
        let mut lines = BufReader::new(stdout).lines();
        let addr = loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(a) = line.strip_prefix(LISTEN_MARKER) {
                        break a.trim().to_string();
                    }
                }
                _ => {
                    let _ = child.kill();
                    anyhow::bail!("the bench server ended before listening");
                }
            }
        };
        // Keep draining its output so that logging never blocks it.
        std::thread::spawn(move || lines.for_each(drop));
        Ok(Server { child, base: format!("http://{addr}") })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// (VmRSS, VmHWM) in kB.
    fn memory(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// Resets the peak RSS (VmHWM) to the current RSS; false where the kernel does not allow it.
    fn reset_peak(&self) -> bool {
        std::fs::write(format!("/proc/{}/clear_refs", self.pid()), "5").is_ok()
    }

    /// User + system CPU seconds of the server so far.
    fn cpu_seconds(&self) -> f64 {
        super::bench::process_cpu_seconds(&self.pid().to_string())
    }

    fn stop(mut self) {
        drop(self.child.stdin.take());
        super::bench::stop_child(&mut self.child, Duration::from_secs(15));
    }
}

// ---------------------------------------------------------------------------------------------
// The load generator.

fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0.0)
}

async fn wait_for_quiet(max_load: f64, wait_secs: u64) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(wait_secs);
    loop {
        let load = load_average();
        if load < max_load || Instant::now() >= deadline {
            return load;
        }
        println!("    waiting: 1-minute load {load:.2} ≥ {max_load}");
        tokio::time::sleep(Duration::from_secs(15)).await;
    }
}

/// Signs the owner in as a browser would: the sign-in page's CSRF token and cookie, then the
/// form. Returns the `Cookie` header value of the signed-in session.
async fn sign_in(http: &reqwest::Client, base: &str) -> anyhow::Result<String> {
    let page = http.get(format!("{base}/signin")).send().await?;
    let csrf_cookie = cookies(page.headers()).into_iter().find(|c| c.starts_with("orderdesk-csrf="));
    let body = page.text().await?;
    let token = body
        .split("name=\"csrf_token\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .ok_or_else(|| anyhow::anyhow!("no CSRF token on the sign-in page"))?
        .to_string();
    let mut req = http.post(format!("{base}/signin")).form(&[
        ("csrf_token", token.as_str()),
        ("email", OWNER_EMAIL),
        ("password", PASSWORD),
    ]);
    if let Some(c) = &csrf_cookie {
        req = req.header(reqwest::header::COOKIE, c.as_str());
    }
    let answer = req.send().await?;
    let session = cookies(answer.headers()).into_iter().find(|c| c.starts_with("orderdesk="));
    session.ok_or_else(|| anyhow::anyhow!("sign-in failed: {}", answer.status()))
}

fn cookies(headers: &reqwest::header::HeaderMap) -> Vec<String> {
    headers
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next().map(str::to_string))
        .collect()
}

type PathFn = Arc<dyn Fn(&mut ChaCha8Rng) -> String + Send + Sync>;

struct Scenario {
    name: &'static str,
    path: PathFn,
}

#[derive(Clone, Debug, Default)]
struct Figures {
    requests: usize,
    failed: usize,
    p50_ms: f64,
    p99_ms: f64,
    rps: f64,
    server_cpu_ms: f64,
    load: f64,
}

/// `concurrency` connections, each sending its next request when the last answer has been read
/// whole, for `seconds` (after a warm-up of a quarter of that, at most 3 s, not counted).
async fn drive(
    http: &reqwest::Client,
    server: &Server,
    cookie: &str,
    scenario: &Scenario,
    concurrency: usize,
    seconds: u64,
) -> anyhow::Result<Figures> {
    let warm = Duration::from_secs_f64((seconds as f64 / 4.0).min(3.0));
    let run = |window: Duration| {
        let mut workers = Vec::new();
        for w in 0..concurrency {
            let (http, cookie, path, base) =
                (http.clone(), cookie.to_string(), scenario.path.clone(), server.base.clone());
            workers.push(tokio::spawn(async move {
                let mut rng = ChaCha8Rng::seed_from_u64(w as u64 * 7919 + 1);
                let mut lat = Vec::new();
                let mut failed = 0usize;
                let until = Instant::now() + window;
                while Instant::now() < until {
                    let url = format!("{base}{}", path(&mut rng));
                    let t = Instant::now();
                    let ok = match http.get(&url).header(reqwest::header::COOKIE, &cookie).send().await {
                        Ok(r) => r.status().is_success() && r.bytes().await.is_ok(),
                        Err(_) => false,
                    };
                    if ok {
                        lat.push(t.elapsed().as_micros() as u32);
                    } else {
                        failed += 1;
                    }
                }
                (lat, failed)
            }));
        }
        workers
    };
    for w in run(warm) {
        w.await?;
    }
    let load = load_average();
    let cpu = server.cpu_seconds();
    let started = Instant::now();
    let mut all = Vec::new();
    let mut failed = 0;
    for w in run(Duration::from_secs(seconds)) {
        let (lat, f) = w.await?;
        all.extend(lat);
        failed += f;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let cpu_used = server.cpu_seconds() - cpu;
    all.sort_unstable();
    let pct =
        |p: f64| all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1))).copied().unwrap_or(0);
    Ok(Figures {
        requests: all.len(),
        failed,
        p50_ms: f64::from(pct(0.50)) / 1000.0,
        p99_ms: f64::from(pct(0.99)) / 1000.0,
        rps: all.len() as f64 / elapsed,
        server_cpu_ms: if all.is_empty() { 0.0 } else { cpu_used * 1000.0 / all.len() as f64 },
        load,
    })
}

struct Export {
    rows: usize,
    bytes: u64,
    secs: f64,
    /// Server RSS before, and its peak during the export (kB).
    rss_before: u64,
    peak: u64,
    /// The file as received (kept to check it against the list).
    body: Vec<u8>,
}

/// One CSV download, read as a stream; the server's peak RSS during it (VmHWM reset before,
/// and VmRSS sampled every 5 ms in case the reset is not allowed).
async fn export(http: &reqwest::Client, server: &Server, cookie: &str, path: &str) -> anyhow::Result<Export> {
    let reset = server.reset_peak();
    let rss_before = server.memory().0;
    let pid = server.pid();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let stop = stop.clone();
        tokio::task::spawn_blocking(move || {
            let mut peak = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
                if let Some(kb) = status
                    .lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
                {
                    peak = peak.max(kb);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            peak
        })
    };
    let started = Instant::now();
    let mut answer = http.get(format!("{}{path}", server.base)).header(reqwest::header::COOKIE, cookie).send().await?;
    anyhow::ensure!(answer.status().is_success(), "CSV export answered {}", answer.status());
    let (mut bytes, mut newlines, mut body) = (0u64, 0usize, Vec::new());
    while let Some(chunk) = answer.chunk().await? {
        bytes += chunk.len() as u64;
        newlines += chunk.iter().filter(|b| **b == b'\n').count();
        body.extend_from_slice(&chunk);
    }
    let secs = started.elapsed().as_secs_f64();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let sampled = sampler.await?;
    let peak = if reset { server.memory().1.max(sampled) } else { sampled };
    Ok(Export { rows: newlines.saturating_sub(1), bytes, secs, rss_before, peak, body })
}

fn mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

// ---------------------------------------------------------------------------------------------
// The run.

/// The account, its owner (who signs in) and the stores.
pub async fn bench_account(db: &Db, stores: usize) -> anyhow::Result<(AccountId, Vec<StoreId>)> {
    let hash = crate::crypto::hash_password_blocking(PASSWORD.to_string()).await?;
    let (account, _) =
        accounts::create_account_with_owner(db, "ベンチ商店", OWNER_EMAIL, "ベンチ", &hash, None).await?;
    let mut ids = Vec::new();
    for n in 1..=stores {
        let settings = StoreSettings {
            name: format!("ベンチ店{n:02}"),
            seller_id: format!("bench-store-{n:02}"),
            environment: Environment::Simulator,
            client_id: "bench-app".into(),
            auto_import_enabled: false,
            auto_import_interval_minutes: 60,
            auto_status_change_enabled: false,
            auto_status_change_target: None,
            restrict_fraud_hold_changes: true,
            stock_sync_enabled: false,
            auto_import_inbox: false,
        };
        ids.push(stores::create(db, account, &settings, None, None).await?);
    }
    Ok((account, ids))
}

/// A database kept by `--keep` from an earlier run: its account, stores and orders.
async fn kept_seed(db: &Db) -> anyhow::Result<Option<(AccountId, Vec<StoreId>, Seeded)>> {
    let account: Option<(i64,)> = with_pool!(db, |p| {
        sqlx::query_as("select account_id from app_user where email = $1").bind(OWNER_EMAIL).fetch_optional(p).await
    })?;
    let Some((account,)) = account else { return Ok(None) };
    let account = AccountId(account);
    let stores: Vec<(i64,)> = with_pool!(db, |p| {
        sqlx::query_as("select id from store where account_id = $1 order by id").bind(account).fetch_all(p).await
    })?;
    let (first, last, newest): (Option<i64>, Option<i64>, Option<DateTime<Utc>>) = with_pool!(db, |p| {
        sqlx::query_as("select min(id), max(id), max(order_time) from yahoo_order where account_id = $1")
            .bind(account)
            .fetch_one(p)
            .await
    })?;
    let (Some(first_id), Some(last_id), Some(newest)) = (first, last, newest) else { return Ok(None) };
    Ok(Some((account, stores.into_iter().map(|(s,)| StoreId(s)).collect(), Seeded { first_id, last_id, newest })))
}

/// The server's secret key: random, or kept beside a kept database.
fn bench_secret_key(keep: Option<&Path>) -> anyhow::Result<String> {
    let fresh = || base64::Engine::encode(&base64::engine::general_purpose::STANDARD, rand::random::<[u8; 32]>());
    let Some(dir) = keep else { return Ok(fresh()) };
    let file = dir.join("bench-secret.key");
    if let Ok(key) = std::fs::read_to_string(&file) {
        return Ok(key.trim().to_string());
    }
    let key = fresh();
    std::fs::write(&file, &key)?;
    Ok(key)
}

fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

pub async fn run(o: Options) -> anyhow::Result<()> {
    let dir = match &o.keep {
        Some(keep) => keep.clone(),
        None => std::env::temp_dir().join(format!("orderdesk-bench-orders-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir)?;
    println!(
        "order desk benchmark: {} orders over {} stores in one account; {} connections, {} s per scenario; \
         server = child process `orderdesk bench orders-server` (serve's state and router plus the bare page {BARE_PATH}), \
         RSS from its /proc/<pid>/status",
        o.orders, o.stores, o.concurrency, o.seconds
    );
    let mut backends: Vec<Option<&str>> = Vec::new();
    if !o.skip_sqlite {
        backends.push(None);
    }
    if let Some(url) = o.postgres.as_deref() {
        backends.push(Some(url));
    }
    let mut summary = Vec::new();
    for backend in backends {
        let label = if backend.is_some() { "PostgreSQL" } else { "SQLite" };
        let sub = dir.join(label);
        std::fs::create_dir_all(&sub)?;
        let result = run_backend(&o, backend, &sub, label).await;
        if let Err(e) = &result {
            println!("  {label}: failed: {e:#}");
        }
        if let Ok(lines) = result {
            summary.extend(lines);
        }
    }
    if o.keep.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    println!("\nsummary");
    for l in summary {
        println!("  {l}");
    }
    Ok(())
}

async fn run_backend(o: &Options, backend: Option<&str>, dir: &Path, label: &str) -> anyhow::Result<Vec<String>> {
    println!("\n{label}");
    let (db, pg) = bench_db(backend, dir).await?;
    // The server (a child process) opens the same database.
    let pg_url = match (backend, &pg) {
        (Some(admin), Some(name)) => {
            let mut url = url::Url::parse(admin)?;
            url.set_path(name);
            Some(url.to_string())
        }
        _ => None,
    };
    let outcome = measure_backend(o, backend, &db, pg_url.as_deref(), dir, label).await;
    db.close().await;
    drop_bench_db(backend, pg).await;
    outcome
}

async fn measure_backend(
    o: &Options,
    backend: Option<&str>,
    db: &Db,
    db_url: Option<&str>,
    dir: &Path,
    label: &str,
) -> anyhow::Result<Vec<String>> {
    let kept = if backend.is_none() && o.keep.is_some() { kept_seed(db).await? } else { None };
    let reused = kept.is_some();
    let load = load_average();
    let started = Instant::now();
    let (account, store_ids, seeded) = match kept {
        Some(k) => k,
        None => {
            let (account, store_ids) = bench_account(db, o.stores).await?;
            let end = crate::db::now() - chrono::Duration::hours(1);
            let seeded = seed(db, account, &store_ids, o.orders, end, true).await?;
            (account, store_ids, seeded)
        }
    };
    let seed_secs = started.elapsed().as_secs_f64();
    let t = Instant::now();
    match db {
        Db::Sqlite(p) => {
            sqlx::raw_sql("pragma wal_checkpoint(truncate)").execute(p).await?;
        }
        Db::Postgres(p) => {
            // What autovacuum would have done on a database that grew over a year.
            sqlx::raw_sql("vacuum analyze").execute(p).await?;
        }
    }
    let (counted, wrong) = check_counters(db, account).await?;
    anyhow::ensure!(counted == o.orders as i64 && wrong.is_empty(), "counters disagree: {counted} rows, {wrong:?}");
    let (terms,): (i64,) = with_pool!(db, |p| sqlx::query_as("select count(*) from order_search").fetch_one(p).await)?;
    let (items,): (i64,) = with_pool!(db, |p| sqlx::query_as("select count(*) from order_item").fetch_one(p).await)?;
    let (held,): (i64,) = with_pool!(db, |p| {
        sqlx::query_as("select count(*) from yahoo_order where fraud_hold_status in (1, 3)").fetch_one(p).await
    })?;
    println!(
        "  {} {} orders ({items} item lines, {terms} search terms, {held} held) in {seed_secs:.1} s = {:.0} orders/s \
         (load {load:.2} at start); counters match a count of the rows; {} s to {}",
        if reused { "reused the kept database of" } else { "seeded" },
        o.orders,
        o.orders as f64 / seed_secs,
        t.elapsed().as_secs(),
        if backend.is_some() { "vacuum analyze" } else { "checkpoint the WAL" },
    );

    // The scenarios' inputs, from the database.
    let deep: Vec<(DateTime<Utc>, i64)> = with_pool!(db, |p| {
        sqlx::query_as(
            "select order_time, id from yahoo_order where account_id = $1
             order by order_time desc, id desc limit 1000 offset 9950",
        )
        .bind(account)
        .fetch_all(p)
        .await
    })?;
    let deep: Arc<Vec<String>> = Arc::new(
        deep.iter()
            .step_by(50)
            .map(|(at, id)| format!("/orders?after={}", enc(&Cursor { at: *at, id: OrderPk(*id) }.encode())))
            .collect(),
    );
    let surname = family(7 * FAMILY_TAIL.len() + 3).0;
    let (hits,): (i64,) = with_pool!(db, |p| {
        sqlx::query_as(
            "select count(distinct order_pk) from order_search where account_id = $1 and term >= $2 and term < $3",
        )
        .bind(account)
        .bind(&surname)
        .bind(format!("{surname}\u{10FFFF}"))
        .fetch_one(p)
        .await
    })?;
    let last_day = (seeded.newest + chrono::Duration::hours(9)).date_naive();
    let days_for = |rows: usize| ((rows as f64 * 365.0 / o.orders as f64).round() as i64).max(1);
    let range =
        |rows: usize| -> (NaiveDate, NaiveDate) { (last_day - chrono::Duration::days(days_for(rows) - 1), last_day) };
    let (big_from, big_to) = range(o.csv_orders);
    let (small_from, small_to) = range(o.csv_orders / 10);
    let (filter_from, filter_to) = range(o.orders / 12);
    let secret_key = bench_secret_key(o.keep.as_deref().filter(|_| backend.is_none()))?;

    let stores = Arc::new(store_ids.iter().map(|s| s.0).collect::<Vec<_>>());
    let (first, last) = (seeded.first_id, seeded.last_id);
    let surnames = family_names();
    let scenarios = vec![
        Scenario { name: "bare page (50 rows, askama)", path: Arc::new(|_: &mut ChaCha8Rng| BARE_PATH.to_string()) },
        Scenario { name: "list, first page", path: Arc::new(|_: &mut ChaCha8Rng| "/orders".to_string()) },
        Scenario {
            name: "list, store + held filter",
            path: {
                let stores = stores.clone();
                Arc::new(move |r: &mut ChaCha8Rng| {
                    format!("/orders?store={}&hold=held", stores.choose(r).copied().unwrap_or(0))
                })
            },
        },
        Scenario {
            name: "list, status tab + 1 month",
            path: Arc::new(move |_: &mut ChaCha8Rng| {
                format!("/orders?status=awaiting_shipment&ordered_from={filter_from}&ordered_to={filter_to}")
            }),
        },
        Scenario {
            // A different range nearly every time: the tabs' filtered counts are read afresh
            // (a list seen again within seconds reuses them).
            name: "list, random date range (fresh tab counts)",
            path: Arc::new(move |r: &mut ChaCha8Rng| {
                let from = last_day - chrono::Duration::days(r.gen_range(0..330));
                let to = from + chrono::Duration::days(r.gen_range(0..30));
                format!("/orders?ordered_from={from}&ordered_to={to}")
            }),
        },
        Scenario {
            name: "list, deep page (~10,000 rows)",
            path: {
                let deep = deep.clone();
                Arc::new(move |r: &mut ChaCha8Rng| deep.choose(r).cloned().unwrap_or_default())
            },
        },
        Scenario {
            name: "list, search family name",
            path: Arc::new(move |r: &mut ChaCha8Rng| format!("/orders?q={}", enc(&family(r.gen_range(0..surnames)).0))),
        },
        Scenario {
            name: "list, status tab",
            path: Arc::new(|_: &mut ChaCha8Rng| "/orders?status=awaiting_shipment".to_string()),
        },
        Scenario {
            name: "detail page (random id)",
            path: Arc::new(move |r: &mut ChaCha8Rng| format!("/orders/{}", r.gen_range(first..=last))),
        },
        Scenario {
            name: "detail page from the list (前 / 次)",
            path: Arc::new(move |r: &mut ChaCha8Rng| format!("/orders/{}?list=", r.gen_range(first..=last))),
        },
    ];
    let mut scenarios = scenarios;
    if let Some(only) = &o.only {
        let mut i = 0;
        scenarios.retain(|s| {
            i += 1;
            i == 1 || s.name.contains(only.as_str())
        });
    }
    // The large export's expected lines: the list's orders in that date range, in its order.
    let jst_midnight =
        |d: NaiveDate| (d.and_hms_opt(0, 0, 0).unwrap_or_default() - chrono::Duration::hours(9)).and_utc();
    let expected_big: Vec<(String,)> = with_pool!(db, |p| {
        sqlx::query_as(
            "select order_id from yahoo_order where account_id = $1 and order_time >= $2 and order_time < $3
             order by order_time desc, id desc",
        )
        .bind(account)
        .bind(jst_midnight(big_from))
        .bind(jst_midnight(big_to + chrono::Duration::days(1)))
        .fetch_all(p)
        .await
    })?;
    if let Db::Sqlite(p) = db {
        p.close().await;
    }

    let server = Server::start(dir, db_url, &secret_key)?;
    let http = reqwest::Client::builder()
        .no_gzip()
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(o.concurrency)
        .timeout(Duration::from_secs(120))
        .build()?;
    let outcome = async {
        let cookie = sign_in(&http, &server.base).await?;
        // Every scenario answers a page before it is measured.
        for s in &scenarios {
            let path = (s.path)(&mut ChaCha8Rng::seed_from_u64(1));
            let r = http.get(format!("{}{path}", server.base)).header(reqwest::header::COOKIE, &cookie).send().await?;
            anyhow::ensure!(r.status().is_success(), "{path} answered {}", r.status());
        }
        let (rss_idle, _) = server.memory();
        println!(
            "  server pid {} on {}; search「{surname}」hits {hits} orders; RSS after start {:.0} MB",
            server.pid(),
            server.base,
            mb(rss_idle)
        );
        let quiet = wait_for_quiet(o.max_load, o.wait_secs).await;
        println!("  1-minute load before measuring: {quiet:.2}");
        println!(
            "  {:<32} {:>8} {:>8} {:>9} {:>9} {:>8} {:>7} {:>6}",
            "scenario", "p50 ms", "p99 ms", "req/s", "cpu ms/req", "requests", "load", "errors"
        );
        let mut figures = Vec::new();
        for s in &scenarios {
            let f = drive(&http, &server, &cookie, s, o.concurrency, o.seconds).await?;
            println!(
                "  {:<32} {:>8.1} {:>8.1} {:>9.0} {:>9.2} {:>8} {:>7.2} {:>6}",
                s.name, f.p50_ms, f.p99_ms, f.rps, f.server_cpu_ms, f.requests, f.load, f.failed
            );
            figures.push((s.name, f));
        }
        let (_, peak_under_load) = server.memory();
        let bare = figures[0].1.rps;
        let by_name = |name: &str| figures.iter().find(|(n, _)| *n == name).map(|(_, f)| f.clone()).unwrap_or_default();
        let list = &by_name("list, first page");
        let detail = by_name("detail page (random id)");
        println!(
            "  list ÷ bare page: {:.2} (list first page {:.0} req/s, bare page {bare:.0} req/s)",
            list.rps / bare.max(1.0),
            list.rps
        );
        println!("  server peak RSS (VmHWM) after the scenarios: {:.0} MB", mb(peak_under_load));

        let small = format!("/orders.csv?ordered_from={small_from}&ordered_to={small_to}");
        let big = format!("/orders.csv?ordered_from={big_from}&ordered_to={big_to}");
        let big_sjis = format!("{big}&encoding=sjis");
        let mut exports = Vec::new();
        for (name, path) in [("CSV small (UTF-8)", &small), ("CSV large (UTF-8)", &big), ("CSV large (Shift_JIS)", &big_sjis)] {
            let e = export(&http, &server, &cookie, path).await?;
            println!(
                "  {name}: {} rows, {:.1} MB in {:.2} s ({:.0} rows/s); server RSS {:.0} MB before, peak {:.0} MB during (load {:.2})",
                e.rows,
                e.bytes as f64 / 1e6,
                e.secs,
                e.rows as f64 / e.secs,
                mb(e.rss_before),
                mb(e.peak),
                load_average()
            );
            exports.push(e);
        }
        // The large exports are exactly the list (order IDs, in order), and the Shift_JIS file
        // decodes as Shift_JIS without a single error.
        let expected: Vec<&str> = expected_big.iter().map(|(id,)| id.as_str()).collect();
        let utf8 = std::str::from_utf8(exports[1].body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(&exports[1].body))?.to_string();
        let (sjis, _, bad) = encoding_rs::SHIFT_JIS.decode(&exports[2].body);
        anyhow::ensure!(!bad, "the Shift_JIS export does not decode as Shift_JIS");
        for (label, text) in [("UTF-8", utf8.as_str()), ("Shift_JIS", sjis.as_ref())] {
            let ids: Vec<&str> =
                text.lines().skip(1).map(|l| l.split(',').next().unwrap_or("").trim_matches('"')).collect();
            anyhow::ensure!(
                ids == expected,
                "the {label} export differs from the list ({} lines, {} in the list)",
                ids.len(),
                expected.len()
            );
        }
        println!(
            "  CSV large: both files list exactly the {} orders of the filtered list, in its order; Shift_JIS decodes without errors",
            expected.len()
        );
        let (_, final_peak) = server.memory();
        let peak = peak_under_load.max(final_peak).max(exports.iter().map(|e| e.peak).max().unwrap_or(0));
        let growth = exports[1].peak as i64 - exports[0].peak as i64;
        println!(
            "  CSV memory: peak during the {}-row export {:.0} MB vs {:.0} MB during the {}-row one ({:+.1} MB for {}× the rows)",
            exports[1].rows,
            mb(exports[1].peak),
            mb(exports[0].peak),
            exports[0].rows,
            growth as f64 / 1024.0,
            exports[1].rows / exports[0].rows.max(1)
        );
        println!("  server peak RSS over the whole run: {:.0} MB", mb(peak));

        let mut summary = Vec::new();
        let worst_p99 = figures[1..].iter().map(|(_, f)| f.p99_ms).fold(0.0, f64::max);
        let least_rps = figures[1..].iter().map(|(_, f)| f.rps).fold(f64::INFINITY, f64::min);
        summary.push(format!(
            "{label}: list first page p99 {:.1} ms, {:.0} req/s, {:.2} of the bare page; detail p99 {:.1} ms, {:.0} req/s; \
             worst list/detail p99 {worst_p99:.1} ms, lowest {least_rps:.0} req/s; server peak RSS {:.0} MB; \
             CSV {} rows {:.2} s {:.1} MB, RSS peak {:+.1} MB vs {} rows",
            list.p99_ms,
            list.rps,
            list.rps / bare.max(1.0),
            detail.p99_ms,
            detail.rps,
            mb(peak),
            exports[1].rows,
            exports[1].secs,
            exports[1].bytes as f64 / 1e6,
            growth as f64 / 1024.0,
            exports[0].rows,
        ));
        if backend.is_none() {
            let checks = [
                ("list and detail p99 ≤ 50 ms", worst_p99 <= 50.0),
                ("≥ 500 req/s", least_rps >= 500.0),
                ("list ≥ 0.5 × bare page", list.rps >= 0.5 * bare),
                ("server RSS ≤ 150 MB", peak <= 150 * 1024),
            ];
            let line: Vec<String> =
                checks.iter().map(|(n, met)| format!("{n}: {}", if *met { "met" } else { "MISSED" })).collect();
            summary.push(format!("SQLite targets: {}", line.join("; ")));
        }
        anyhow::Ok(summary)
    }
    .await;
    drop(http);
    server.stop();
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_small_seed_leaves_what_the_triggers_would() {
        let dir = tempfile::tempdir().unwrap();
        let (db, _) = bench_db(None, dir.path()).await.unwrap();
        let (account, stores) = bench_account(&db, 3).await.unwrap();
        let count_triggers = || async {
            let (n,): (i64,) = with_pool!(&db, |p| {
                sqlx::query_as("select count(*) from sqlite_master where type = 'trigger' and tbl_name = 'yahoo_order'")
                    .fetch_one(p)
                    .await
            })
            .unwrap();
            n
        };
        let triggers_before = count_triggers().await;
        let seeded = seed(&db, account, &stores, 1000, crate::db::now(), false).await.unwrap();
        assert_eq!(seeded.last_id - seeded.first_id + 1, 1000);
        let (counted, wrong) = check_counters(&db, account).await.unwrap();
        assert_eq!(counted, 1000);
        assert!(wrong.is_empty(), "{wrong:?}");
        // The search terms are exactly those the view derives from the rows.
        let (kept, derived): (i64, i64) = with_pool!(&db, |p| {
            sqlx::query_as(
                "select (select count(*) from order_search),
                        (select count(*) from (select distinct account_id, term, order_pk from order_search_terms where term <> ''))",
            )
            .fetch_one(p)
            .await
        })
        .unwrap();
        assert_eq!(kept, derived);
        // Every term carries its order's time (the search sorts by it).
        let (off,): (i64,) = with_pool!(&db, |p| {
            sqlx::query_as(
                "select count(*) from order_search q join yahoo_order o on o.id = q.order_pk
                 where q.order_time is null or q.order_time <> o.order_time",
            )
            .fetch_one(p)
            .await
        })
        .unwrap();
        assert_eq!(off, 0);
        // The triggers are back, all of them, and keep counting.
        assert_eq!(count_triggers().await, triggers_before);
        // About 5 % held, some held orders confirmed (3), every order with item lines.
        let (held, confirmed, without_items): (i64, i64, i64) = with_pool!(&db, |p| {
            sqlx::query_as(
                "select (select count(*) from yahoo_order where fraud_hold_status in (1, 3)),
                        (select count(*) from yahoo_order where fraud_hold_status = 3),
                        (select count(*) from yahoo_order o where not exists (select 1 from order_item i where i.order_pk = o.id))",
            )
            .fetch_one(p)
            .await
        })
        .unwrap();
        assert!((25..=80).contains(&held), "{held} held");
        assert!(confirmed > 0);
        assert_eq!(without_items, 0);
        // The list reads them back through the product's query, newest first.
        let scope = crate::domain::scope::OrderScope::account(account);
        let page: Vec<crate::db::order_list::Line> =
            crate::db::order_list::page(&db, &scope, &Default::default(), None, 50).await.unwrap();
        assert_eq!(page.len(), 50);
        assert_eq!(page[0].id.0, seeded.last_id);
        db.close().await;
    }
}
