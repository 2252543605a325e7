//! Realistic Japanese orders from a seed: names with kana, addresses, payment and shipping
//! methods, 1–5 item lines with options, a share of fraud-hold test orders (seed 001), and the
//! shipping-day mix (クール便, delivery dates and time slots, paid and unpaid prepayment,
//! points, coupons, gift cards, gifts, and now and then a name outside JIS X 0208). Also the
//! single order a test asks for ([`NewOrder`]), where every one of these can be chosen.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use rand::{Rng, SeedableRng, seq::SliceRandom};
use rand_chacha::ChaCha8Rng;
use serde::Deserialize;

use super::orders::{Gift, ItemLine, Order, Person, initial_fraud_hold};
use crate::domain::jst;

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
/// Paid when ordered: the card and PayPay.
fn paid_at_order(pay_method: &str) -> bool {
    matches!(pay_method, "payment_a1" | "payment_a16")
}
/// 代金引換: paid on delivery, so shippable at once.
const COD: &str = "payment_d1";
/// Paid before shipping (bank transfer, convenience store): PayStatus 0 until paid.
fn prepay(pay_method: &str) -> bool {
    matches!(pay_method, "payment_b1" | "payment_c1")
}
/// The seed's ship methods (ShipMethod, ShipMethodName, ShipCharge). The generator draws the
/// first two from the order's own stream; クール便 comes with a chilled food from the mix.
const SHIPPING: &[(&str, &str, i64)] = &[("postage1", "宅配便", 800), ("postage2", "メール便", 250)];
const COOL: (&str, &str, i64) = ("postage3", "クール便", 1100);
/// Every ship method a test may name by code alone.
const SHIP_METHODS: [(&str, &str, i64); 3] = [SHIPPING[0], SHIPPING[1], COOL];
const MAIL: &str = "postage2";
/// ShipRequestTime values (Yahoo's own wording is not confirmed; these are what the buyer
/// chose, as text).
const TIME_SLOTS: &[&str] = &["午前中", "14:00-16:00", "16:00-18:00", "18:00-20:00", "19:00-21:00"];
/// Option name and its values, e.g. ("サイズ", ["S", "M"]).
type OptionSet = (&'static str, &'static [&'static str]);
/// Item ID, title, price, category, tax rate (8 for food), options.
type Product = (&'static str, &'static str, i64, u32, u8, &'static [OptionSet]);

const PRODUCTS: &[Product] = &[
    (
        "tshirt-basic",
        "オーガニックコットン Tシャツ",
        2980,
        37052,
        10,
        &[("カラー", &["ホワイト", "ブラック", "ネイビー"]), ("サイズ", &["S", "M", "L"])],
    ),
    ("mug-hasami", "波佐見焼 マグカップ 320ml", 1980, 1990, 10, &[("カラー", &["藍", "白磁"])]),
    ("rice-koshi5", "新潟県産コシヒカリ 5kg", 3480, 2494, 8, &[]),
    ("tea-sencha", "静岡 深蒸し煎茶 100g", 1080, 2502, 8, &[]),
    ("towel-imabari", "今治タオル フェイスタオル 2枚組", 2200, 2202, 10, &[("カラー", &["ベージュ", "グレー"])]),
    ("sneaker-run", "ランニングシューズ 軽量モデル", 6980, 2504, 10, &[("サイズ", &["24.0", "25.0", "26.0", "27.0"])]),
    ("honey-500", "国産 れんげはちみつ 500g", 2680, 2494, 8, &[]),
    ("cable-usbc", "USB-C ケーブル 1m <急速充電対応>", 980, 2502, 10, &[]),
    ("bag-tote", "帆布トートバッグ & ポーチ セット", 3980, 2202, 10, &[("カラー", &["生成り", "カーキ"])]),
    ("coffee-drip", "ドリップコーヒー 30袋 \"ブレンド\"", 1580, 2502, 8, &[]),
];
/// Chilled foods: an order with one goes by クール便.
const CHILLED: &[(&str, &str, i64, u32)] = &[
    ("ikura-250", "北海道産 いくら醤油漬け 250g", 4980, 2494),
    ("cheesecake", "濃厚チーズケーキ 5号（冷凍）", 3240, 2494),
];
const COMMENTS: &[&str] = &[
    "",
    "",
    "",
    "午前中の配達を希望します。",
    "ギフト包装をお願いします。<のし不要>",
    "置き配でお願いします & 不在時は宅配ボックスへ",
];
/// UseCouponData text and TotalCouponDiscount.
const COUPONS: &[(&str, i64)] = &[
    ("ストアクーポン 300円OFF", 300),
    ("ストアクーポン 500円OFF", 500),
    ("ストアクーポン 10%OFF（上限1,000円）", 1000),
];
const GIFT_MESSAGES: &[&str] =
    &["お誕生日おめでとう！", "いつもありがとうございます。", "ささやかですが、お祝いの品です。"];
/// A family name outside JIS X 0208 (𠮷, U+20BB7), which B2クラウド refuses.
const OUTSIDE_JIS: (&str, &str) = ("𠮷田", "ヨシダ");

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

/// When orders made now become visible to orderList (`PublicationTime`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Published {
    /// The simulator's now, whatever the order time: an importer whose cursor has passed the
    /// order time still sees the order (the 「注文を作成する」 button, `orders/generate`).
    #[default]
    Now,
    /// The order time: a scene that was there before anyone looked (the demo's first orders,
    /// benchmarks).
    OrderTime,
}

/// A single order asked for by a test: chosen items, and any of the fields below; what is not
/// given is generated as for any order (`docs/simulator.md` lists them with an example).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewOrder {
    pub items: Vec<NewItem>,
    #[serde(default)]
    pub order_time: Option<DateTime<Utc>>,
    /// Default: the order time.
    #[serde(default)]
    pub publication_time: Option<DateTime<Utc>>,
    #[serde(default)]
    pub order_status: Option<u8>,
    #[serde(default)]
    pub is_seen: Option<bool>,
    /// 0–3, instead of the sandbox rule by item (category 4101/2947 and 注文保留…).
    #[serde(default)]
    pub fraud_hold_status: Option<u8>,
    #[serde(default)]
    pub pay_method: Option<String>,
    /// Needed for a pay method the simulator does not know.
    #[serde(default)]
    pub pay_method_name: Option<String>,
    #[serde(default)]
    pub pay_status: Option<u8>,
    /// Default: the order day when PayStatus is 1.
    #[serde(default)]
    pub pay_date: Option<NaiveDate>,
    #[serde(default)]
    pub pay_charge: Option<i64>,
    #[serde(default)]
    pub buyer_comments: Option<String>,
    /// The buyer (請求先): the fields given replace the generated ones.
    #[serde(default)]
    pub bill: Option<PersonPatch>,
    /// The recipient (お届け先): the fields given replace the generated ones.
    #[serde(default)]
    pub ship: Option<PersonPatch>,
    #[serde(default)]
    pub ship_status: Option<u8>,
    /// `postage1` 宅配便, `postage2` メール便, `postage3` クール便, or any code with a name.
    #[serde(default)]
    pub ship_method: Option<String>,
    #[serde(default)]
    pub ship_method_name: Option<String>,
    #[serde(default)]
    pub ship_charge: Option<i64>,
    /// ShipRequestDate, `YYYY-MM-DD`.
    #[serde(default)]
    pub ship_request_date: Option<NaiveDate>,
    /// ShipRequestTime, as text (`14:00-16:00`, `午前中`).
    #[serde(default)]
    pub ship_request_time: Option<String>,
    #[serde(default)]
    pub discount: Option<i64>,
    #[serde(default)]
    pub use_point: Option<i64>,
    #[serde(default)]
    pub use_coupon_data: Option<String>,
    #[serde(default)]
    pub total_coupon_discount: Option<i64>,
    #[serde(default)]
    pub gift_card_discount: Option<i64>,
    #[serde(default)]
    pub gift_wrap_charge: Option<i64>,
    #[serde(default)]
    pub need_gift_wrap: Option<bool>,
    #[serde(default)]
    pub gift_wrap_type: Option<String>,
    #[serde(default)]
    pub gift_wrap_message: Option<String>,
    #[serde(default)]
    pub need_gift_wrap_paper: Option<bool>,
    #[serde(default)]
    pub gift_wrap_paper_type: Option<String>,
    #[serde(default)]
    pub gift_wrap_name: Option<String>,
    #[serde(default)]
    pub social_gift_type: Option<u8>,
}

/// Fields of a [`Person`] to set; those left out keep the generated value.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersonPatch {
    pub last_name: Option<String>,
    pub first_name: Option<String>,
    pub last_name_kana: Option<String>,
    pub first_name_kana: Option<String>,
    pub zip_code: Option<String>,
    pub prefecture: Option<String>,
    pub city: Option<String>,
    pub address1: Option<String>,
    pub address2: Option<String>,
    pub phone: Option<String>,
    pub mail: Option<String>,
}

impl PersonPatch {
    fn apply(&self, p: &mut Person) {
        let fields = [
            (&self.last_name, &mut p.last_name),
            (&self.first_name, &mut p.first_name),
            (&self.last_name_kana, &mut p.last_name_kana),
            (&self.first_name_kana, &mut p.first_name_kana),
            (&self.zip_code, &mut p.zip_code),
            (&self.prefecture, &mut p.prefecture),
            (&self.city, &mut p.city),
            (&self.address1, &mut p.address1),
            (&self.address2, &mut p.address2),
            (&self.phone, &mut p.phone),
            (&self.mail, &mut p.mail),
        ];
        for (given, field) in fields {
            if let Some(value) = given {
                value.clone_into(field);
            }
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
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
    /// ItemOption, in order.
    #[serde(default)]
    pub options: Vec<NewOption>,
    /// ItemTaxRatio: 8 (軽減税率) or 10.
    #[serde(default = "default_tax_ratio")]
    pub tax_ratio: u8,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewOption {
    pub name: String,
    pub value: String,
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
fn default_tax_ratio() -> u8 {
    10
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

/// PayStatus, PayDate and ShipStatus as a new order with this pay method has them: card and
/// PayPay paid and shippable; 代金引換 unpaid and shippable; prepayment unpaid and not yet
/// shippable.
fn settle_new(order: &mut Order) {
    let paid = paid_at_order(&order.pay_method);
    order.pay_status = u8::from(paid);
    order.pay_date = paid.then(|| jst::today(order.order_time));
    order.ship_status = u8::from(paid || order.pay_method == COD);
}

fn shell(seller_id: &str, order_id: String, order_time: DateTime<Utc>, rng: &mut ChaCha8Rng) -> Order {
    let (pay_method, pay_method_name, pay_charge) = *PAYMENTS.choose(rng).expect("non-empty");
    let (ship_method, ship_method_name, ship_charge) = *SHIPPING.choose(rng).expect("non-empty");
    let bill = person(rng, true);
    let ship = if rng.gen_bool(0.8) { Person { mail: String::new(), ..bill.clone() } } else { person(rng, false) };
    let mut order = Order {
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
        pay_status: 0,
        pay_method: pay_method.into(),
        pay_method_name: pay_method_name.into(),
        pay_date: None,
        bill,
        ship_status: 0,
        ship_method: ship_method.into(),
        ship_method_name: ship_method_name.into(),
        ship_request_date: None,
        ship_request_time: String::new(),
        ship_company_code: String::new(),
        ship_invoice_number1: String::new(),
        ship_invoice_number2: String::new(),
        ship_invoice_number_empty_reason: String::new(),
        ship_url: String::new(),
        ship_date: None,
        ship,
        gift: Gift::default(),
        social_gift_type: 0,
        pay_charge,
        ship_charge,
        gift_wrap_charge: 0,
        discount: 0,
        use_point: 0,
        use_coupon_data: String::new(),
        total_coupon_discount: 0,
        gift_card_discount: 0,
        items: Vec::new(),
    };
    settle_new(&mut order);
    order
}

fn random_items(rng: &mut ChaCha8Rng) -> Vec<ItemLine> {
    let lines = rng.gen_range(1..=5);
    (1..=lines)
        .map(|line_id| {
            let (item_id, title, price, category, tax_ratio, option_sets) = *PRODUCTS.choose(rng).expect("non-empty");
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
                tax_ratio,
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

/// Seeds the mix's own stream from the order stream's seed.
const MIX_STREAM: u64 = 0x5348_4950_5049_4e47;

/// The shipping day's variety, drawn from a stream of its own so that everything the seed gave
/// before (names, items, payment, the held orders) stays as it was. Fraud-hold test orders keep
/// their single item.
fn shipping_day_mix(o: &mut Order, mix: &mut ChaCha8Rng) {
    let test_order = initial_fraud_hold(&o.items) != 0;
    // A chilled food in place of the last line goes by クール便.
    if !test_order && mix.gen_bool(0.1) {
        let (item_id, title, price, category) = *CHILLED.choose(mix).expect("non-empty");
        if let Some(last) = o.items.last_mut() {
            *last = ItemLine {
                line_id: last.line_id,
                item_id: item_id.into(),
                title: title.into(),
                sub_code: String::new(),
                options: Vec::new(),
                unit_price: price,
                quantity: 1,
                tax_ratio: 8,
                product_id: String::new(),
                category_id: category,
            };
        }
        (o.ship_method, o.ship_method_name, o.ship_charge) = (COOL.0.into(), COOL.1.into(), COOL.2);
    }
    // メール便 takes no 代金引換: such orders go by 宅配便.
    if o.pay_method == COD && o.ship_method == MAIL {
        let (code, name, charge) = SHIPPING[0];
        (o.ship_method, o.ship_method_name, o.ship_charge) = (code.into(), name.into(), charge);
    }
    // About half the bank transfers and convenience-store payments are paid already.
    if prepay(&o.pay_method) && mix.gen_bool(0.5) {
        let paid_on = jst::today(o.order_time) + Duration::days(mix.gen_range(0..=1));
        (o.pay_status, o.pay_date, o.ship_status) = (1, Some(paid_on), 1);
    }
    // A delivery date and/or a time slot on some parcels (メール便 has neither).
    if o.ship_method != MAIL {
        if mix.gen_bool(0.25) {
            o.ship_request_date = Some(jst::today(o.order_time) + Duration::days(mix.gen_range(3..=7)));
        }
        if mix.gen_bool(0.3) {
            o.ship_request_time = TIME_SLOTS.choose(mix).expect("non-empty").to_string();
        }
    }
    // Points, a coupon, rarely a gift card: never more than the order is worth.
    let items = o.items_total();
    if mix.gen_bool(0.2) {
        o.use_point = (mix.gen_range(1..=100) * 10).min(items / 2);
    }
    if mix.gen_bool(0.12) {
        let (text, off) = *COUPONS.choose(mix).expect("non-empty");
        if off * 2 <= items {
            (o.use_coupon_data, o.total_coupon_discount) = (text.into(), off);
        }
    }
    if mix.gen_bool(0.04) {
        let card = *[500, 1000, 3000].choose(mix).expect("non-empty");
        o.gift_card_discount = card.min(o.total_price());
    }
    // Now and then a gift: wrapped with のし, or a social gift.
    if mix.gen_bool(0.06) {
        o.gift = Gift {
            need_gift_wrap: true,
            gift_wrap_type: "ラッピング（リボン）".into(),
            gift_wrap_message: GIFT_MESSAGES.choose(mix).expect("non-empty").to_string(),
            need_gift_wrap_paper: true,
            gift_wrap_paper_type: "のし（御祝）".into(),
            gift_wrap_name: o.bill.last_name.clone(),
        };
        o.gift_wrap_charge = 330;
    } else if mix.gen_bool(0.03) {
        o.social_gift_type = 1;
        mask_giver(o);
    }
    // Rarely, a recipient (and the buyer, if the same person) named outside JIS X 0208.
    if mix.gen_bool(0.04) {
        let same_person = o.ship.last_name == o.bill.last_name && o.ship.address1 == o.bill.address1;
        (o.ship.last_name, o.ship.last_name_kana) = (OUTSIDE_JIS.0.into(), OUTSIDE_JIS.1.into());
        if same_person {
            (o.bill.last_name, o.bill.last_name_kana) = (OUTSIDE_JIS.0.into(), OUTSIDE_JIS.1.into());
        }
    }
}

/// A social gift: the recipient gives their own address, and the giver's name, address and
/// phone reach the store masked (yahoo-store-api.md names the masking, not its form: assumed
/// `****`, as Yahoo masks elsewhere). The mail stays, for Yahoo's own mails to the giver.
fn mask_giver(o: &mut Order) {
    let b = &mut o.bill;
    for field in [
        &mut b.last_name,
        &mut b.first_name,
        &mut b.last_name_kana,
        &mut b.first_name_kana,
        &mut b.zip_code,
        &mut b.address1,
        &mut b.address2,
        &mut b.phone,
    ] {
        "****".clone_into(field);
    }
}

/// Builds `spec.count` orders; `next_id` hands out order IDs. Each is published at its order
/// time; callers that make orders "now" move `PublicationTime` (see [`Published`]).
pub fn bulk(seller_id: &str, spec: &Generate, now: DateTime<Utc>, mut next_id: impl FnMut() -> String) -> Vec<Order> {
    let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
    let mut mix = ChaCha8Rng::seed_from_u64(spec.seed ^ MIX_STREAM);
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
            shipping_day_mix(&mut order, &mut mix);
            order
        })
        .collect()
}

fn amount(value: Option<i64>, name: &str) -> Result<Option<i64>, String> {
    match value {
        Some(v) if v < 0 => Err(format!("{name} must not be negative")),
        v => Ok(v),
    }
}

/// Builds one order with what a test chose; the rest is generated. Refuses values Yahoo would
/// never hold (an unknown status, a tax rate other than 8 or 10, a negative amount or total).
pub fn single(
    seller_id: &str,
    order_id: String,
    spec: &NewOrder,
    now: DateTime<Utc>,
    seed: u64,
) -> Result<Order, String> {
    if spec.items.is_empty() {
        return Err("at least one item is required".into());
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let t = spec.order_time.unwrap_or(now);
    let t = t - Duration::nanoseconds(t.timestamp_subsec_nanos().into());
    let mut order = shell(seller_id, order_id, t, &mut rng);
    if let Some(p) = spec.publication_time {
        order.publication_time = p - Duration::nanoseconds(p.timestamp_subsec_nanos().into());
    }
    if let Some(status) = spec.order_status {
        if !(1..=5).contains(&status) {
            return Err("order_status must be 1–5".into());
        }
        order.order_status = status;
    }
    if let Some(seen) = spec.is_seen {
        order.is_seen = seen;
    }
    if let Some(method) = &spec.pay_method {
        let known = PAYMENTS.iter().find(|(code, ..)| code == method);
        let name = spec.pay_method_name.as_deref().or(known.map(|(_, name, _)| *name));
        let Some(name) = name else {
            return Err(format!("pay_method {method} is not one the simulator knows; give pay_method_name"));
        };
        (order.pay_method, order.pay_method_name) = (method.clone(), name.to_owned());
        order.pay_charge = known.map_or(0, |(_, _, charge)| *charge);
        settle_new(&mut order);
    } else if let Some(name) = &spec.pay_method_name {
        order.pay_method_name = name.clone();
    }
    if let Some(status) = spec.pay_status {
        if status > 1 {
            return Err("pay_status must be 0 or 1".into());
        }
        order.pay_status = status;
        order.pay_date = (status == 1).then(|| jst::today(order.order_time));
    }
    if spec.pay_date.is_some() {
        order.pay_date = spec.pay_date;
    }
    if let Some(comments) = &spec.buyer_comments {
        order.buyer_comments = comments.clone();
    }
    // The recipient follows the buyer when the generator made them the same person.
    let ship_is_bill = order.ship == Person { mail: String::new(), ..order.bill.clone() };
    if let Some(bill) = &spec.bill {
        bill.apply(&mut order.bill);
        if ship_is_bill {
            order.ship = Person { mail: String::new(), ..order.bill.clone() };
        }
    }
    if let Some(ship) = &spec.ship {
        ship.apply(&mut order.ship);
    }
    if let Some(method) = &spec.ship_method {
        let known = SHIP_METHODS.iter().find(|(code, ..)| code == method);
        let name = spec.ship_method_name.as_deref().or(known.map(|(_, name, _)| *name));
        let Some(name) = name else {
            return Err(format!("ship_method {method} is not one the simulator knows; give ship_method_name"));
        };
        (order.ship_method, order.ship_method_name) = (method.clone(), name.to_owned());
        order.ship_charge = known.map_or(0, |(_, _, charge)| *charge);
    } else if let Some(name) = &spec.ship_method_name {
        order.ship_method_name = name.clone();
    }
    if let Some(status) = spec.ship_status {
        if status > 4 {
            return Err("ship_status must be 0–4".into());
        }
        order.ship_status = status;
    }
    if spec.ship_request_date.is_some() {
        order.ship_request_date = spec.ship_request_date;
    }
    if let Some(slot) = &spec.ship_request_time {
        order.ship_request_time = slot.clone();
    }
    for (value, name, field) in [
        (spec.pay_charge, "pay_charge", &mut order.pay_charge),
        (spec.ship_charge, "ship_charge", &mut order.ship_charge),
        (spec.gift_wrap_charge, "gift_wrap_charge", &mut order.gift_wrap_charge),
        (spec.discount, "discount", &mut order.discount),
        (spec.use_point, "use_point", &mut order.use_point),
        (spec.total_coupon_discount, "total_coupon_discount", &mut order.total_coupon_discount),
        (spec.gift_card_discount, "gift_card_discount", &mut order.gift_card_discount),
    ] {
        if let Some(v) = amount(value, name)? {
            *field = v;
        }
    }
    if let Some(data) = &spec.use_coupon_data {
        order.use_coupon_data = data.clone();
    }
    let gift = &mut order.gift;
    if let Some(need) = spec.need_gift_wrap {
        gift.need_gift_wrap = need;
    }
    if let Some(need) = spec.need_gift_wrap_paper {
        gift.need_gift_wrap_paper = need;
    }
    for (value, field) in [
        (&spec.gift_wrap_type, &mut gift.gift_wrap_type),
        (&spec.gift_wrap_message, &mut gift.gift_wrap_message),
        (&spec.gift_wrap_paper_type, &mut gift.gift_wrap_paper_type),
        (&spec.gift_wrap_name, &mut gift.gift_wrap_name),
    ] {
        if let Some(v) = value {
            v.clone_into(field);
        }
    }
    if let Some(kind) = spec.social_gift_type {
        order.social_gift_type = kind;
        if kind != 0 {
            // What the caller gave of the giver stays as given (a test of the field's place).
            let given = spec.bill.clone().unwrap_or_default();
            mask_giver(&mut order);
            given.apply(&mut order.bill);
        }
    }
    let mut items = Vec::with_capacity(spec.items.len());
    for (i, item) in spec.items.iter().enumerate() {
        if !matches!(item.tax_ratio, 8 | 10) {
            return Err(format!("items[{i}].tax_ratio must be 8 or 10"));
        }
        if item.quantity < 1 || item.unit_price < 0 {
            return Err(format!("items[{i}]: quantity must be at least 1 and unit_price not negative"));
        }
        items.push(ItemLine {
            line_id: i as u32 + 1,
            item_id: item.item_id.clone(),
            title: item.title.clone(),
            sub_code: item.sub_code.clone(),
            options: item.options.iter().map(|o| (o.name.clone(), o.value.clone())).collect(),
            unit_price: item.unit_price,
            quantity: item.quantity,
            tax_ratio: item.tax_ratio,
            product_id: String::new(),
            category_id: item.category_id,
        });
    }
    order.items = items;
    order.fraud_hold_status = match spec.fraud_hold_status {
        Some(status @ 0..=3) => status,
        Some(_) => return Err("fraud_hold_status must be 0–3".into()),
        None => initial_fraud_hold(&order.items),
    };
    if order.total_price() < 0 {
        return Err(format!("the discounts exceed the order's worth (TotalPrice would be {})", order.total_price()));
    }
    Ok(order)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn make(spec: &Generate, now: DateTime<Utc>) -> Vec<Order> {
        let mut n = 0;
        bulk("shop", spec, now, || {
            n += 1;
            format!("shop-{n}")
        })
    }

    #[test]
    fn same_seed_same_orders_with_a_share_of_holds() {
        let now = Utc::now();
        let spec = Generate { count: 400, seed: 7, fraud_share: 0.1, spread_hours: 24 };
        let a = make(&spec, now);
        let b = make(&spec, now);
        assert_eq!(serde_json::to_string(&a).unwrap(), serde_json::to_string(&b).unwrap());
        let held = a.iter().filter(|o| o.fraud_hold_status == 1).count();
        assert!((20..=60).contains(&held), "{held} held of 400");
        assert!(a.iter().all(|o| (1..=5).contains(&o.items.len())));
        assert!(a.windows(2).all(|w| w[0].order_time <= w[1].order_time));
        assert!(a.iter().all(|o| o.total_price() >= 0 && o.publication_time == o.order_time));
    }

    /// Which shipping-day kinds an order is; [`every_kind`] names them all.
    fn kinds(o: &Order) -> Vec<&'static str> {
        let mut k = Vec::new();
        let mut add = |yes: bool, kind| {
            if yes {
                k.push(kind)
            }
        };
        add(o.ship_method == "postage1", "宅配便");
        add(o.ship_method == "postage2", "メール便");
        add(o.ship_method == "postage3", "クール便");
        add(o.pay_method == COD, "代金引換");
        add(o.pay_method == "payment_b1" && o.pay_status == 0, "未入金の銀行振込");
        add(prepay(&o.pay_method) && o.pay_status == 1, "入金済みの前払い");
        add(o.ship_request_date.is_some(), "お届け日");
        add(!o.ship_request_time.is_empty(), "時間帯");
        add(o.items.iter().any(|i| !i.options.is_empty() && !i.sub_code.is_empty()), "オプションとサブコード");
        add(o.items.iter().any(|i| i.tax_ratio == 8), "8%");
        add(o.items.iter().any(|i| i.tax_ratio == 10), "10%");
        add(o.use_point > 0, "ポイント");
        add(o.total_coupon_discount > 0 && !o.use_coupon_data.is_empty(), "クーポン");
        add(o.gift_card_discount > 0, "ギフトカード");
        add(o.gift.need_gift_wrap && o.gift_wrap_charge > 0, "ギフト包装");
        add(o.social_gift_type != 0, "ソーシャルギフト");
        add(o.ship.prefecture == "沖縄県", "沖縄県");
        add(o.ship.prefecture == "北海道", "北海道");
        add(o.ship.last_name.contains('𠮷'), "𠮷");
        add(o.fraud_hold_status == 1, "不正保留");
        k
    }

    fn every_kind(orders: &[Order]) -> Vec<&'static str> {
        let mut all: Vec<&str> = orders.iter().flat_map(kinds).collect();
        all.sort();
        all.dedup();
        all
    }

    #[test]
    fn the_mix_has_every_kind_and_keeps_to_yahoos_rules() {
        let orders = make(&Generate { count: 300, seed: 11, fraud_share: 0.05, spread_hours: 72 }, Utc::now());
        assert_eq!(every_kind(&orders).len(), 20, "{:?}", every_kind(&orders));
        for o in &orders {
            assert!(o.total_price() >= 0, "{}", o.order_id);
            assert!(!(o.pay_method == COD && o.ship_method == MAIL), "{}: no 代引 by メール便", o.order_id);
            assert!(o.ship_method != MAIL || o.ship_request_date.is_none() && o.ship_request_time.is_empty());
            let cool = o.items.iter().any(|i| CHILLED.iter().any(|c| c.0 == i.item_id));
            assert_eq!(cool, o.ship_method == COOL.0, "{}: クール便 exactly with a chilled food", o.order_id);
            assert_eq!(o.ship_status == 1, o.pay_status == 1 || o.pay_method == COD, "{}", o.order_id);
            if o.fraud_hold_status == 1 {
                assert_eq!(o.items.len(), 1, "a test order keeps its single item");
            }
        }
        // Cables are not food: 8 % only for food.
        assert!(orders.iter().flat_map(|o| &o.items).all(|i| (i.tax_ratio == 8)
            == (i.category_id == 2494 || matches!(i.item_id.as_str(), "tea-sencha" | "coffee-drip"))));
    }

    /// The demo scene (seed 2024, 60 orders) shows each kind a newcomer may want to try,
    /// the 𠮷 that a B2 label must refuse included.
    #[test]
    fn the_demo_scene_has_every_kind() {
        let orders = make(&Generate { count: 60, seed: 2024, fraud_share: 0.1, spread_hours: 72 }, Utc::now());
        assert_eq!(every_kind(&orders).len(), 20, "{:?}", every_kind(&orders));
    }

    fn spec(value: serde_json::Value) -> NewOrder {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn a_single_order_takes_partial_people_and_refuses_what_yahoo_never_holds() {
        let now = Utc::now();
        let o = single(
            "shop",
            "shop-1".into(),
            &spec(serde_json::json!({
                "items": [{ "item_id": "a", "title": "品", "unit_price": 1000, "quantity": 2 }],
                "bill": { "prefecture": "沖縄県", "address1": "𠮷野1-2" },
                "pay_method": "payment_b1", "use_point": 300, "total_coupon_discount": 200
            })),
            now,
            1,
        )
        .unwrap();
        assert_eq!((o.bill.prefecture.as_str(), o.bill.address1.as_str()), ("沖縄県", "𠮷野1-2"));
        assert!(!o.bill.last_name.is_empty(), "fields not given keep the generated value");
        assert_eq!((o.pay_status, o.ship_status, o.pay_date), (0, 0, None), "unpaid bank transfer");
        assert_eq!(o.total_price(), 2000 + o.ship_charge - 300 - 200);
        let refused = |value: serde_json::Value| single("shop", "shop-2".into(), &spec(value), now, 2).unwrap_err();
        let item = serde_json::json!([{ "item_id": "a", "title": "品" }]);
        assert!(refused(serde_json::json!({ "items": [] })).contains("item"));
        assert!(
            refused(serde_json::json!({ "items": [{ "item_id": "a", "title": "品", "tax_ratio": 5 }] }))
                .contains("tax_ratio")
        );
        assert!(refused(serde_json::json!({ "items": item, "fraud_hold_status": 4 })).contains("fraud_hold_status"));
        assert!(refused(serde_json::json!({ "items": item, "use_point": 999_999 })).contains("TotalPrice"));
        assert!(refused(serde_json::json!({ "items": item, "ship_method": "postage9" })).contains("ship_method_name"));
        assert!(serde_json::from_value::<NewOrder>(serde_json::json!({ "items": item, "use_points": 1 })).is_err());
    }
}
