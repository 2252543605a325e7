//! Realistic Japanese orders from a seed: names with kana, addresses, payment and shipping
//! methods, 1–5 item lines with options, and a share of fraud-hold test orders (seed 001).

use chrono::{DateTime, Duration, Utc};
use rand::{Rng, SeedableRng, seq::SliceRandom};
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;

use super::orders::{ItemLine, Order, Person, initial_fraud_hold};

const SURNAMES: &[(&str, &str)] = &[
    ("佐藤", "サトウ"),
    ("鈴木", "スズキ"),
    ("高橋", "タカハシ"),
    ("田中", "タナカ"),
    ("伊藤", "イトウ"),
    ("渡辺", "ワタナベ"),
    ("山本", "ヤマモト"),
    ("中村", "ナカムラ"),
    ("小林", "コバヤシ"),
    ("加藤", "カトウ"),
    ("吉田", "ヨシダ"),
    ("山田", "ヤマダ"),
];
const GIVEN: &[(&str, &str)] = &[
    ("太郎", "タロウ"),
    ("花子", "ハナコ"),
    ("翔太", "ショウタ"),
    ("美咲", "ミサキ"),
    ("健一", "ケンイチ"),
    ("由美", "ユミ"),
    ("大輔", "ダイスケ"),
    ("陽菜", "ヒナ"),
    ("直樹", "ナオキ"),
    ("さくら", "サクラ"),
];
const PLACES: &[(&str, &str, &str)] = &[
    ("東京都", "千代田区", "100-0005"),
    ("東京都", "世田谷区", "154-0004"),
    ("大阪府", "大阪市北区", "530-0001"),
    ("北海道", "札幌市中央区", "060-0001"),
    ("愛知県", "名古屋市中村区", "450-0002"),
    ("福岡県", "福岡市博多区", "812-0011"),
    ("神奈川県", "横浜市西区", "220-0011"),
    ("京都府", "京都市下京区", "600-8216"),
    ("宮城県", "仙台市青葉区", "980-0021"),
    ("沖縄県", "那覇市", "900-0006"),
];
const STREETS: &[&str] =
    &["丸の内1-9-1", "三軒茶屋2-11-22", "梅田3-1-3", "北五条西4-7", "名駅1-1-4", "博多駅中央街1-1"];
const BUILDINGS: &[&str] = &["", "", "グランメゾン201", "サンハイツ305号室", "コーポ山田1F"];
const PAYMENTS: &[(&str, &str, i64)] = &[
    ("payment_a1", "クレジットカード決済", 0),
    ("payment_a16", "PayPay残高等払い", 0),
    ("payment_b1", "銀行振込", 0),
    ("payment_c1", "コンビニ払い", 0),
    ("payment_d1", "商品代引", 330),
];
const SHIPPING: &[(&str, &str, i64)] = &[("postage1", "宅配便", 800), ("postage2", "メール便", 250)];
/// Option name and its values, e.g. ("サイズ", ["S", "M"]).
type OptionSet = (&'static str, &'static [&'static str]);
/// Item ID, title, price, category, options.
type Product = (&'static str, &'static str, i64, u32, &'static [OptionSet]);

const PRODUCTS: &[Product] = &[
    (
        "tshirt-basic",
        "オーガニックコットン Tシャツ",
        2980,
        37052,
        &[("カラー", &["ホワイト", "ブラック", "ネイビー"]), ("サイズ", &["S", "M", "L"])],
    ),
    ("mug-hasami", "波佐見焼 マグカップ 320ml", 1980, 1990, &[("カラー", &["藍", "白磁"])]),
    ("rice-koshi5", "新潟県産コシヒカリ 5kg", 3480, 2494, &[]),
    ("tea-sencha", "静岡 深蒸し煎茶 100g", 1080, 2502, &[]),
    ("towel-imabari", "今治タオル フェイスタオル 2枚組", 2200, 2202, &[("カラー", &["ベージュ", "グレー"])]),
    ("sneaker-run", "ランニングシューズ 軽量モデル", 6980, 2504, &[("サイズ", &["24.0", "25.0", "26.0", "27.0"])]),
    ("honey-500", "国産 れんげはちみつ 500g", 2680, 2494, &[]),
    ("cable-usbc", "USB-C ケーブル 1m <急速充電対応>", 980, 2502, &[]),
    ("bag-tote", "帆布トートバッグ & ポーチ セット", 3980, 2202, &[("カラー", &["生成り", "カーキ"])]),
    ("coffee-drip", "ドリップコーヒー 30袋 \"ブレンド\"", 1580, 2502, &[]),
];
const COMMENTS: &[&str] = &[
    "",
    "",
    "",
    "午前中の配達を希望します。",
    "ギフト包装をお願いします。<のし不要>",
    "置き配でお願いします & 不在時は宅配ボックスへ",
];

/// What bulk generation should make.
#[derive(Clone, Debug, Deserialize)]
pub struct Generate {
    pub count: usize,
    #[serde(default)]
    pub seed: u64,
    /// Share of orders that are fraud-hold test orders (half 4101, half 2947).
    #[serde(default = "default_fraud_share")]
    pub fraud_share: f64,
    /// Orders are spread over this many hours before the simulator's now.
    #[serde(default = "default_spread_hours")]
    pub spread_hours: i64,
}

fn default_fraud_share() -> f64 {
    0.05
}

fn default_spread_hours() -> i64 {
    24
}

/// A single order asked for by a test: chosen items, optional time and payment.
#[derive(Clone, Debug, Deserialize)]
pub struct NewOrder {
    pub items: Vec<NewItem>,
    #[serde(default)]
    pub order_time: Option<DateTime<Utc>>,
    #[serde(default)]
    pub order_status: Option<u8>,
    #[serde(default)]
    pub pay_method: Option<String>,
    #[serde(default)]
    pub buyer_comments: Option<String>,
    /// The buyer (請求先), replacing the generated one.
    #[serde(default)]
    pub bill: Option<Person>,
    /// The recipient (お届け先), replacing the generated one.
    #[serde(default)]
    pub ship: Option<Person>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct NewItem {
    pub item_id: String,
    pub title: String,
    #[serde(default = "default_category")]
    pub category_id: u32,
    #[serde(default = "default_price")]
    pub unit_price: i64,
    #[serde(default = "default_quantity")]
    pub quantity: i64,
    #[serde(default)]
    pub sub_code: String,
}

fn default_category() -> u32 {
    2502
}
fn default_price() -> i64 {
    1000
}
fn default_quantity() -> i64 {
    1
}

fn person(rng: &mut ChaCha8Rng, with_mail: bool) -> Person {
    let (last, last_kana) = *SURNAMES.choose(rng).expect("non-empty");
    let (first, first_kana) = *GIVEN.choose(rng).expect("non-empty");
    let (prefecture, city, zip) = *PLACES.choose(rng).expect("non-empty");
    Person {
        last_name: last.into(),
        first_name: first.into(),
        last_name_kana: last_kana.into(),
        first_name_kana: first_kana.into(),
        zip_code: zip.into(),
        prefecture: prefecture.into(),
        city: city.into(),
        address1: STREETS.choose(rng).expect("non-empty").to_string(),
        address2: BUILDINGS.choose(rng).expect("non-empty").to_string(),
        phone: format!("0{}-{:04}-{:04}", rng.gen_range(3..=9), rng.gen_range(0..10_000), rng.gen_range(0..10_000)),
        mail: if with_mail { format!("buyer{}@example.jp", rng.gen_range(1000..99_999)) } else { String::new() },
    }
}

fn shell(seller_id: &str, order_id: String, order_time: DateTime<Utc>, rng: &mut ChaCha8Rng) -> Order {
    let (pay_method, pay_method_name, pay_charge) = *PAYMENTS.choose(rng).expect("non-empty");
    let (ship_method, ship_method_name, ship_charge) = *SHIPPING.choose(rng).expect("non-empty");
    let bill = person(rng, true);
    let ship = if rng.gen_bool(0.8) { Person { mail: String::new(), ..bill.clone() } } else { person(rng, false) };
    let prepaid = matches!(pay_method, "payment_a1" | "payment_a16");
    Order {
        order_id,
        seller_id: seller_id.into(),
        version: 1,
        order_time,
        last_update_time: order_time,
        order_status: 2,
        is_seen: false,
        fraud_hold_status: 0,
        publication_time: order_time,
        cancel_reason: None,
        cancel_reason_detail: String::new(),
        buyer_comments: COMMENTS.choose(rng).expect("non-empty").to_string(),
        is_point_fix: false,
        pay_status: u8::from(prepaid),
        pay_method: pay_method.into(),
        pay_method_name: pay_method_name.into(),
        pay_date: prepaid.then(|| crate::domain::jst::today(order_time)),
        bill,
        ship_status: if prepaid { 1 } else { 0 },
        ship_method: ship_method.into(),
        ship_method_name: ship_method_name.into(),
        ship_request_date: None,
        ship_request_time: String::new(),
        ship_company_code: String::new(),
        ship_invoice_number1: String::new(),
        ship_invoice_number2: String::new(),
        ship_date: None,
        ship,
        pay_charge,
        ship_charge,
        gift_wrap_charge: 0,
        discount: 0,
        use_point: 0,
        items: Vec::new(),
    }
}

fn random_items(rng: &mut ChaCha8Rng) -> Vec<ItemLine> {
    let lines = rng.gen_range(1..=5);
    (1..=lines)
        .map(|line_id| {
            let (item_id, title, price, category, option_sets) = *PRODUCTS.choose(rng).expect("non-empty");
            let options: Vec<(String, String)> = option_sets
                .iter()
                .map(|(name, values)| (name.to_string(), values.choose(rng).expect("non-empty").to_string()))
                .collect();
            let sub_code = if options.is_empty() {
                String::new()
            } else {
                format!("{item_id}-{}", options.iter().map(|(_, v)| v.len()).sum::<usize>())
            };
            ItemLine {
                line_id,
                item_id: item_id.into(),
                title: title.into(),
                sub_code,
                options,
                unit_price: price,
                quantity: rng.gen_range(1..=3),
                tax_ratio: if category == 2494 || category == 2502 { 8 } else { 10 },
                product_id: String::new(),
                category_id: category,
            }
        })
        .collect()
}

fn fraud_item(rng: &mut ChaCha8Rng) -> ItemLine {
    let (category, title) = if rng.gen_bool(0.5) {
        (4101, "注文保留テスト商品（保留解除）")
    } else {
        (2947, "注文保留テスト商品（不正確定）")
    };
    ItemLine {
        line_id: 1,
        item_id: format!("fraud-test-{category}"),
        title: title.into(),
        sub_code: String::new(),
        options: Vec::new(),
        unit_price: 1000,
        quantity: 1,
        tax_ratio: 10,
        product_id: String::new(),
        category_id: category,
    }
}

/// Builds `spec.count` orders; `next_id` hands out order IDs.
pub fn bulk(seller_id: &str, spec: &Generate, now: DateTime<Utc>, mut next_id: impl FnMut() -> String) -> Vec<Order> {
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let spread_ms = (spec.spread_hours.max(0) * 3_600_000).max(1);
    let mut times: Vec<DateTime<Utc>> =
        (0..spec.count).map(|_| now - Duration::milliseconds(rng.gen_range(0..spread_ms))).collect();
    times.sort();
    times
        .into_iter()
        .map(|t| {
            let t = t.with_timezone(&Utc) - Duration::nanoseconds(t.timestamp_subsec_nanos().into());
            let mut order = shell(seller_id, next_id(), t, &mut rng);
            order.items = if rng.gen_bool(spec.fraud_share.clamp(0.0, 1.0)) {
                vec![fraud_item(&mut rng)]
            } else {
                random_items(&mut rng)
            };
            order.fraud_hold_status = initial_fraud_hold(&order.items);
            order
        })
        .collect()
}

/// Builds one order with the items a test chose.
pub fn single(seller_id: &str, order_id: String, spec: &NewOrder, now: DateTime<Utc>, seed: u64) -> Order {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let t = spec.order_time.unwrap_or(now);
    let t = t - Duration::nanoseconds(t.timestamp_subsec_nanos().into());
    let mut order = shell(seller_id, order_id, t, &mut rng);
    if let Some(status) = spec.order_status {
        order.order_status = status;
    }
    if let Some(method) = &spec.pay_method
        && let Some((code, name, charge)) = PAYMENTS.iter().find(|(code, ..)| code == method)
    {
        order.pay_method = code.to_string();
        order.pay_method_name = name.to_string();
        order.pay_charge = *charge;
    }
    if let Some(comments) = &spec.buyer_comments {
        order.buyer_comments = comments.clone();
    }
    if let Some(bill) = &spec.bill {
        order.bill = bill.clone();
    }
    if let Some(ship) = &spec.ship {
        order.ship = ship.clone();
    }
    order.items = spec
        .items
        .iter()
        .enumerate()
        .map(|(i, item)| ItemLine {
            line_id: i as u32 + 1,
            item_id: item.item_id.clone(),
            title: item.title.clone(),
            sub_code: item.sub_code.clone(),
            options: Vec::new(),
            unit_price: item.unit_price,
            quantity: item.quantity,
            tax_ratio: 10,
            product_id: String::new(),
            category_id: item.category_id,
        })
        .collect();
    order.fraud_hold_status = initial_fraud_hold(&order.items);
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_orders_with_a_share_of_holds() {
        let now = Utc::now();
        let spec = Generate { count: 400, seed: 7, fraud_share: 0.1, spread_hours: 24 };
        let mut n = 0;
        let a = bulk("shop", &spec, now, || {
            n += 1;
            format!("shop-{n}")
        });
        let mut m = 0;
        let b = bulk("shop", &spec, now, || {
            m += 1;
            format!("shop-{m}")
        });
        assert_eq!(serde_json::to_string(&a).unwrap(), serde_json::to_string(&b).unwrap());
        let held = a.iter().filter(|o| o.fraud_hold_status == 1).count();
        assert!((20..=60).contains(&held), "{held} held of 400");
        assert!(a.iter().all(|o| (1..=5).contains(&o.items.len())));
        assert!(a.windows(2).all(|w| w[0].order_time <= w[1].order_time));
    }
}
