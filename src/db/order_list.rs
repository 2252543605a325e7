//! The order list's query (product.md §6): filters, prefix search, sorting and keyset paging
//! across the stores a person may see, plus the tab counts kept by triggers. The list page, the
//! bulk action's selection and the CSV export all read through [`page`], so the export is
//! exactly the filtered list.
//!
//! Every query starts from the [`OrderScope`]: the account, and the stores this user may work.

use chrono::{DateTime, Utc};

use super::{Db, orders::OrderPk, with_pool};
use crate::domain::{StoreId, scope::OrderScope, store::InternalStatus};

/// Fraud-hold states the list can filter on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum HoldFilter {
    #[default]
    Any,
    /// 1 and 3: the fraud-hold queue.
    Held,
    UnderReview,
    Released,
    Confirmed,
    /// Never held (0).
    Clear,
}

impl HoldFilter {
    pub const ALL: [HoldFilter; 6] = [
        HoldFilter::Any,
        HoldFilter::Held,
        HoldFilter::UnderReview,
        HoldFilter::Released,
        HoldFilter::Confirmed,
        HoldFilter::Clear,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            HoldFilter::Any => "",
            HoldFilter::Held => "held",
            HoldFilter::UnderReview => "1",
            HoldFilter::Released => "2",
            HoldFilter::Confirmed => "3",
            HoldFilter::Clear => "0",
        }
    }

    pub fn parse(s: &str) -> HoldFilter {
        HoldFilter::ALL.into_iter().find(|h| h.as_str() == s).unwrap_or_default()
    }

    pub fn label(self) -> &'static str {
        match self {
            HoldFilter::Any => "すべて",
            HoldFilter::Held => "審査中・不正確定（要対応）",
            HoldFilter::UnderReview => "審査中",
            HoldFilter::Released => "保留解除",
            HoldFilter::Confirmed => "不正確定",
            HoldFilter::Clear => "保留なし",
        }
    }

    /// The SQL condition; `held` matches the partial index `yahoo_order_held` word for word.
    fn condition(self) -> Option<&'static str> {
        match self {
            HoldFilter::Any => None,
            HoldFilter::Held => Some("o.fraud_hold_status in (1, 3)"),
            HoldFilter::UnderReview => Some("o.fraud_hold_status = 1"),
            HoldFilter::Released => Some("o.fraud_hold_status = 2"),
            HoldFilter::Confirmed => Some("o.fraud_hold_status = 3"),
            HoldFilter::Clear => Some("o.fraud_hold_status = 0"),
        }
    }
}

/// The column the list is ordered by (with the id as tie-breaker, both indexed).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SortKey {
    #[default]
    OrderTime,
    PublicationTime,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sort {
    pub key: SortKey,
    pub ascending: bool,
}

impl Sort {
    pub const ALL: [Sort; 4] = [
        Sort { key: SortKey::OrderTime, ascending: false },
        Sort { key: SortKey::OrderTime, ascending: true },
        Sort { key: SortKey::PublicationTime, ascending: false },
        Sort { key: SortKey::PublicationTime, ascending: true },
    ];

    pub fn as_str(self) -> &'static str {
        match (self.key, self.ascending) {
            (SortKey::OrderTime, false) => "",
            (SortKey::OrderTime, true) => "ordered_asc",
            (SortKey::PublicationTime, false) => "published_desc",
            (SortKey::PublicationTime, true) => "published_asc",
        }
    }

    pub fn parse(s: &str) -> Sort {
        Sort::ALL.into_iter().find(|o| o.as_str() == s).unwrap_or_default()
    }

    pub fn label(self) -> &'static str {
        match (self.key, self.ascending) {
            (SortKey::OrderTime, false) => "注文日時（新しい順）",
            (SortKey::OrderTime, true) => "注文日時（古い順）",
            (SortKey::PublicationTime, false) => "公開日時（新しい順）",
            (SortKey::PublicationTime, true) => "公開日時（古い順）",
        }
    }

    fn column(self) -> &'static str {
        match self.key {
            SortKey::OrderTime => "o.order_time",
            SortKey::PublicationTime => "o.publication_time",
        }
    }
}

/// Where the next page starts: the sort column's value and the id of the last row shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    pub at: DateTime<Utc>,
    pub id: OrderPk,
}

impl Cursor {
    /// `<RFC 3339>_<id>`, as it travels in the page's links.
    pub fn encode(&self) -> String {
        format!("{}_{}", self.at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true), self.id)
    }

    pub fn decode(s: &str) -> Option<Cursor> {
        let (time, id) = s.rsplit_once('_')?;
        Some(Cursor { at: DateTime::parse_from_rfc3339(time).ok()?.with_timezone(&Utc), id: OrderPk(id.parse().ok()?) })
    }
}

/// Everything the list can be narrowed by. Times are already converted from the JST dates a
/// person typed: `from` inclusive, `to` exclusive.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// One store, chosen in the filter (still limited by the scope).
    pub store: Option<StoreId>,
    pub status: Option<InternalStatus>,
    pub hold: HoldFilter,
    pub ordered_from: Option<DateTime<Utc>>,
    pub ordered_to: Option<DateTime<Utc>>,
    pub published_from: Option<DateTime<Utc>>,
    pub published_to: Option<DateTime<Utc>>,
    pub pay_status: Option<i64>,
    pub ship_status: Option<i64>,
    /// What was typed into the search box (normalised here).
    pub search: String,
    pub sort: Sort,
    pub tag: Option<TagFilter>,
}

/// The list's tag filter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TagFilter {
    /// Orders carrying this tag of the account.
    With(i64),
    /// Orders without it.
    Without(i64),
    /// Orders carrying any 出荷止め tag: the tab that keeps them from being silently stuck.
    Stopped,
}

impl TagFilter {
    /// `<id>`, `-<id>` or `stop`, as the list's `tag` parameter says it.
    pub fn parse(s: &str) -> Option<TagFilter> {
        match s {
            "stop" => Some(TagFilter::Stopped),
            _ => match s.strip_prefix('-') {
                Some(id) => id.parse().ok().map(TagFilter::Without),
                None => s.parse().ok().map(TagFilter::With),
            },
        }
    }
}

/// A line of the list (and of the CSV export).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Line {
    pub id: OrderPk,
    pub store_id: StoreId,
    pub store_name: String,
    pub order_id: String,
    pub order_time: DateTime<Utc>,
    pub publication_time: Option<DateTime<Utc>>,
    pub order_status: i64,
    pub fraud_hold_status: i64,
    internal_status: String,
    pub pay_status: Option<i64>,
    pub pay_method_name: String,
    pub ship_status: Option<i64>,
    pub ship_method_name: String,
    pub ship_invoice_number1: String,
    pub bill_last_name: String,
    pub bill_first_name: String,
    pub bill_last_name_kana: String,
    pub bill_first_name_kana: String,
    pub bill_phone: String,
    pub bill_mail: String,
    pub bill_zip_code: String,
    pub bill_prefecture: String,
    pub bill_city: String,
    pub bill_address1: String,
    pub bill_address2: String,
    pub ship_last_name: String,
    pub ship_first_name: String,
    pub ship_last_name_kana: String,
    pub ship_first_name_kana: String,
    pub ship_zip_code: String,
    pub ship_prefecture: String,
    pub ship_city: String,
    pub ship_address1: String,
    pub ship_address2: String,
    pub ship_phone: String,
    pub total_price: i64,
    pub cancel_flagged: bool,
    pub note: String,
}

impl Line {
    pub fn internal_status(&self) -> InternalStatus {
        InternalStatus::parse(&self.internal_status).unwrap_or(InternalStatus::New)
    }

    pub fn fraud_hold(&self) -> crate::domain::order::FraudHoldStatus {
        let code = u8::try_from(self.fraud_hold_status).ok();
        crate::domain::order::FraudHoldStatus::from_code(code).unwrap_or_default()
    }

    /// The value of the column the list is sorted by, for the next page's cursor.
    pub fn cursor(&self, sort: Sort) -> Cursor {
        cursor_of(sort, self.order_time, self.publication_time, self.id)
    }

    /// Replaces buyers' personal data with the mask when the scope says so.
    pub fn mask(&mut self, scope: &OrderScope) {
        scope.mask_fields(crate::personal_fields!(self));
    }
}

/// A row of the list page: only the columns the page shows. Decoding all of [`Line`]'s 36
/// columns for every row of a 50-row page was a large part of the page's CPU (`bench orders`).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Brief {
    pub id: OrderPk,
    pub store_id: StoreId,
    pub order_id: String,
    pub order_time: DateTime<Utc>,
    pub publication_time: Option<DateTime<Utc>>,
    pub fraud_hold_status: i64,
    internal_status: String,
    pub bill_last_name: String,
    pub bill_first_name: String,
    pub total_price: i64,
    pub cancel_flagged: bool,
}

/// (The page names the store from the stores it already holds for its header.)
const BRIEF_COLUMNS: &str = "o.id, o.store_id, o.order_id, o.order_time, o.publication_time,
    o.fraud_hold_status, o.internal_status, o.bill_last_name, o.bill_first_name, o.total_price, o.cancel_flagged";

impl Brief {
    /// The value of the column the list is sorted by, for the next page's cursor.
    pub fn cursor(&self, sort: Sort) -> Cursor {
        cursor_of(sort, self.order_time, self.publication_time, self.id)
    }

    pub fn internal_status(&self) -> InternalStatus {
        InternalStatus::parse(&self.internal_status).unwrap_or(InternalStatus::New)
    }

    pub fn fraud_hold(&self) -> crate::domain::order::FraudHoldStatus {
        let code = u8::try_from(self.fraud_hold_status).ok();
        crate::domain::order::FraudHoldStatus::from_code(code).unwrap_or_default()
    }
}

/// What [`page`] can read: a set of columns, masked by the scope, with the sort values.
pub trait ListRow:
    for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
    + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
    + Send
    + Unpin
    + 'static
{
    /// The `select` list (the order is `o`, its store `s`)…
    const COLUMNS: &'static str;
    /// …and what it reads from.
    const FROM: &'static str = "yahoo_order o join store s on s.id = o.store_id";
    fn mask(&mut self, scope: &OrderScope);
    fn cursor(&self, sort: Sort) -> Cursor;
}

/// Where a row stands in a list sorted by `sort`.
pub fn cursor_of(
    sort: Sort,
    order_time: DateTime<Utc>,
    publication_time: Option<DateTime<Utc>>,
    id: OrderPk,
) -> Cursor {
    let at = match sort.key {
        SortKey::OrderTime => order_time,
        SortKey::PublicationTime => publication_time.unwrap_or(order_time),
    };
    Cursor { at, id }
}

impl ListRow for Line {
    const COLUMNS: &'static str = LINE_COLUMNS;
    fn mask(&mut self, scope: &OrderScope) {
        Line::mask(self, scope);
    }
    fn cursor(&self, sort: Sort) -> Cursor {
        Line::cursor(self, sort)
    }
}

impl ListRow for Brief {
    const COLUMNS: &'static str = BRIEF_COLUMNS;
    const FROM: &'static str = "yahoo_order o";
    /// The list page shows only the buyer's name of the personal fields (`personal_fields!`).
    fn mask(&mut self, scope: &OrderScope) {
        scope.mask_fields([&mut self.bill_last_name, &mut self.bill_first_name]);
    }
    fn cursor(&self, sort: Sort) -> Cursor {
        Brief::cursor(self, sort)
    }
}

/// The search box's text as the terms table holds it: NFKC (done by the form reader), no
/// spaces, lower case, and the variants a person may mean — hiragana typed for the stored
/// katakana, a phone number typed with hyphens.
pub fn search_variants(input: &str) -> Vec<String> {
    let base: String = input.chars().filter(|c| !c.is_whitespace()).flat_map(char::to_lowercase).collect();
    if base.is_empty() {
        return Vec::new();
    }
    let mut out = vec![base.clone()];
    let katakana: String = base
        .chars()
        .map(|c| if ('\u{3041}'..='\u{3096}').contains(&c) { hiragana_to_katakana(c) } else { c })
        .collect();
    let digits: String = base.chars().filter(|c| *c != '-').collect();
    for v in [katakana, digits] {
        if !v.is_empty() && !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

fn hiragana_to_katakana(c: char) -> char {
    char::from_u32(c as u32 + 0x60).unwrap_or(c)
}

/// The first value past every string that starts with `prefix` (byte-wise).
fn prefix_end(prefix: &str) -> String {
    format!("{prefix}\u{10FFFF}")
}

/// A value bound to a `$N` placeholder.
#[derive(Clone, Debug)]
enum Arg {
    Int(i64),
    Text(String),
    Time(DateTime<Utc>),
}

/// A statement under construction: SQL text and its arguments, numbered as they are pushed.
#[derive(Default)]
struct Sql {
    text: String,
    args: Vec<Arg>,
}

impl Sql {
    fn arg(&mut self, a: Arg) -> String {
        self.args.push(a);
        format!("${}", self.args.len())
    }
}

const LINE_COLUMNS: &str = "o.id, o.store_id, s.name as store_name, o.order_id, o.order_time, o.publication_time,
    o.order_status, o.fraud_hold_status, o.internal_status, o.pay_status, o.pay_method_name, o.ship_status,
    o.ship_method_name, o.ship_invoice_number1, o.bill_last_name, o.bill_first_name, o.bill_last_name_kana,
    o.bill_first_name_kana, o.bill_phone, o.bill_mail, o.bill_zip_code, o.bill_prefecture, o.bill_city,
    o.bill_address1, o.bill_address2, o.ship_last_name, o.ship_first_name, o.ship_last_name_kana,
    o.ship_first_name_kana, o.ship_zip_code, o.ship_prefecture,
    o.ship_city, o.ship_address1, o.ship_address2, o.ship_phone, o.total_price, o.cancel_flagged, o.note";

/// How the rows of a statement are found.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Through the account's (or a store's) indexes, in the list's order.
    Scan,
    /// By id (`o.id in (…)`, or the ids of matching search terms).
    ById,
}

/// The `where` conditions of the scope and the filter (without the cursor).
fn conditions(sql: &mut Sql, scope: &OrderScope, f: &Filter, variants: &[String], access: Access) -> Vec<String> {
    let mut w = Vec::new();
    let account = sql.arg(Arg::Int(scope.account.0));
    if variants.is_empty() && access == Access::Scan {
        w.push(format!("o.account_id = {account}"));
    } else {
        // Rows found by id (a few). `+ 0` keeps SQLite, which has no statistics and guesses
        // that an equality matches ten rows, from walking the account's index instead and
        // testing each of its million orders against the ids: 20 ms for a name matching 600
        // of 1M orders, 140 ms for a page read by ids (`bench orders`).
        w.push(format!("o.account_id + 0 = {account}"));
    }
    w.extend(scope_stores(sql, scope, "o.store_id"));
    if let Some(store) = f.store {
        let p = sql.arg(Arg::Int(store.0));
        w.push(format!("o.store_id = {p}"));
    }
    if let Some(status) = f.status {
        let p = sql.arg(Arg::Text(status.as_str().into()));
        w.push(format!("o.internal_status = {p}"));
    }
    if let Some(c) = f.hold.condition() {
        w.push(c.into());
    }
    time_range(sql, &mut w, "o.order_time", f.ordered_from, f.ordered_to);
    time_range(sql, &mut w, "o.publication_time", f.published_from, f.published_to);
    if let Some(v) = f.pay_status {
        let p = sql.arg(Arg::Int(v));
        w.push(format!("o.pay_status = {p}"));
    }
    if let Some(v) = f.ship_status {
        let p = sql.arg(Arg::Int(v));
        w.push(format!("o.ship_status = {p}"));
    }
    match f.tag {
        Some(TagFilter::With(id)) => {
            let p = sql.arg(Arg::Int(id));
            w.push(format!("exists (select 1 from order_tag ot where ot.order_pk = o.id and ot.tag_id = {p})"));
        }
        Some(TagFilter::Without(id)) => {
            let p = sql.arg(Arg::Int(id));
            w.push(format!("not exists (select 1 from order_tag ot where ot.order_pk = o.id and ot.tag_id = {p})"));
        }
        Some(TagFilter::Stopped) => w.push(
            "exists (select 1 from order_tag ot join tag t on t.id = ot.tag_id
               where ot.order_pk = o.id and t.stops_shipping)"
                .into(),
        ),
        None => {}
    }
    // A reader who may not see buyers' personal data searches order IDs alone, without the
    // terms (which hold names, phone numbers and emails): not even the time a search takes
    // depends on them.
    if let Some(own) = visible_search(sql, scope, variants) {
        w.push(own);
    } else if !variants.is_empty() {
        let terms = matching_terms(sql, scope, variants);
        w.push(format!("o.id in (select q.order_pk from order_search q where {terms})"));
    }
    w
}

/// What a reader who may not see buyers' personal data may search by: the order ID alone (a
/// prefix of it). The terms also hold names, phone numbers and emails; matching those for such
/// a reader let them recover a phone number one typed character at a time. `None` when the
/// reader sees everything (or nothing was typed).
fn visible_search(sql: &mut Sql, scope: &OrderScope, variants: &[String]) -> Option<String> {
    if !scope.mask_personal || variants.is_empty() {
        return None;
    }
    let ids: Vec<String> = variants
        .iter()
        .map(|v| {
            let len = sql.arg(Arg::Int(v.chars().count() as i64));
            let p = sql.arg(Arg::Text(v.clone()));
            format!("substr(lower(o.order_id), 1, cast({len} as integer)) = {p}")
        })
        .collect();
    Some(format!("({})", ids.join(" or ")))
}

/// `column` from `from` (inclusive) to `to` (exclusive), either end optional.
fn time_range(
    sql: &mut Sql,
    w: &mut Vec<String>,
    column: &str,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) {
    if let Some(t) = from {
        let p = sql.arg(Arg::Time(t));
        w.push(format!("{column} >= {p}"));
    }
    if let Some(t) = to {
        let p = sql.arg(Arg::Time(t));
        w.push(format!("{column} < {p}"));
    }
}

/// The search terms (`order_search q`) of the account that start with one of `variants`.
fn matching_terms(sql: &mut Sql, scope: &OrderScope, variants: &[String]) -> String {
    let account = sql.arg(Arg::Int(scope.account.0));
    let ranges: Vec<String> = variants
        .iter()
        .map(|v| {
            let lo = sql.arg(Arg::Text(v.clone()));
            let hi = sql.arg(Arg::Text(prefix_end(v)));
            format!("(q.term >= {lo} and q.term < {hi})")
        })
        .collect();
    format!("q.account_id = {account} and ({})", ranges.join(" or "))
}

macro_rules! bind_args {
    ($q:expr, $args:expr) => {{
        let mut q = $q;
        for a in $args {
            q = match a {
                Arg::Int(v) => q.bind(*v),
                Arg::Text(v) => q.bind(v.as_str()),
                Arg::Time(v) => q.bind(*v),
            };
        }
        q
    }};
}

/// One page of the filtered list: `limit` lines after the cursor, in the filter's order,
/// through the indexes (account, time, id), (account, status, time, id), (store, time, id), the
/// held-orders partial index or the search terms.
pub async fn page<T: ListRow>(
    db: &Db,
    scope: &OrderScope,
    f: &Filter,
    after: Option<Cursor>,
    limit: i64,
) -> sqlx::Result<Vec<T>> {
    let variants = variants_for(db, scope, &f.search).await?;
    // A masked reader's search is narrowed by the order's own ID (`visible_search`), which the
    // terms-first page below cannot see; theirs is the one statement of `scan_page`.
    if !variants.is_empty() && f.sort.key == SortKey::OrderTime && !scope.mask_personal {
        return search_page(db, scope, f, &variants, after, limit).await;
    }
    scan_page(db, scope, f, &variants, after, limit).await
}

/// The search's variants ([`search_variants`]), and a number typed alone (`10000059`) read as
/// an order number of each of the account's stores (`demo-store-10000059`): Yahoo's order ID is
/// the store account, a hyphen and the number people quote.
async fn variants_for(db: &Db, scope: &OrderScope, search: &str) -> sqlx::Result<Vec<String>> {
    let mut variants = search_variants(search);
    let number = variants.iter().find(|v| v.len() >= 4 && v.bytes().all(|b| b.is_ascii_digit())).cloned();
    if let Some(number) = number {
        let sellers: Vec<String> = with_pool!(db, |p| {
            sqlx::query_scalar("select lower(seller_id) from store where account_id = $1 order by id")
                .bind(scope.account)
                .fetch_all(p)
                .await
        })?;
        variants.extend(sellers.into_iter().map(|s| format!("{s}-{number}")));
    }
    Ok(variants)
}

/// [`page`] in one statement: through the indexes for the filter, or for a search, from every
/// matching term's order.
async fn scan_page<T: ListRow>(
    db: &Db,
    scope: &OrderScope,
    f: &Filter,
    variants: &[String],
    after: Option<Cursor>,
    limit: i64,
) -> sqlx::Result<Vec<T>> {
    let mut sql = Sql::default();
    let mut w = conditions(&mut sql, scope, f, variants, Access::Scan);
    let column = f.sort.column();
    let (cmp, dir) = if f.sort.ascending { (">", "asc") } else { ("<", "desc") };
    if f.sort.key == SortKey::PublicationTime {
        w.push("o.publication_time is not null".into());
    }
    if let Some(c) = after {
        // A row value, so that both backends seek the index to the cursor instead of scanning
        // every row before it: a deep page costs what the first one does.
        let at = sql.arg(Arg::Time(c.at));
        let id = sql.arg(Arg::Int(c.id.0));
        w.push(format!("({column}, o.id) {cmp} ({at}, {id})"));
    }
    let lim = sql.arg(Arg::Int(limit));
    sql.text = format!(
        "select {} from {} where {} order by {column} {dir}, o.id {dir} limit {lim}",
        T::COLUMNS,
        T::FROM,
        w.join(" and ")
    );
    let mut lines: Vec<T> =
        with_pool!(db, |p| { bind_args!(sqlx::query_as::<_, T>(&sql.text), &sql.args).fetch_all(p).await })?;
    for l in &mut lines {
        l.mask(scope);
    }
    Ok(lines)
}

/// A page of a search in order-time order. The matching terms carry their order's time, so the
/// first page's worth of matches is taken in order from the terms alone and only those orders
/// are read: reading every matching order to sort them cost a row lookup per match (600 for a
/// common family name) for a page of 50. When other filters (or the scope) leave the page short,
/// the rest comes from [`scan_page`] after the last match read, in one statement, so a page
/// never reads the matching terms more than twice however few of them pass.
async fn search_page<T: ListRow>(
    db: &Db,
    scope: &OrderScope,
    f: &Filter,
    variants: &[String],
    after: Option<Cursor>,
    limit: i64,
) -> sqlx::Result<Vec<T>> {
    let (cmp, dir) = if f.sort.ascending { (">", "asc") } else { ("<", "desc") };
    let wanted = usize::try_from(limit).unwrap_or(0);
    let batch = wanted.clamp(1, db.rows_per_statement(1));

    // The next matching orders, with their times, from the terms alone.
    let mut sql = Sql::default();
    let mut w = vec![matching_terms(&mut sql, scope, variants)];
    time_range(&mut sql, &mut w, "q.order_time", f.ordered_from, f.ordered_to);
    if let Some(c) = after {
        let at = sql.arg(Arg::Time(c.at));
        let id = sql.arg(Arg::Int(c.id.0));
        w.push(format!("(q.order_time, q.order_pk) {cmp} ({at}, {id})"));
    }
    let lim = sql.arg(Arg::Int(batch as i64));
    sql.text = format!(
        "select distinct q.order_pk, q.order_time from order_search q where {}
         order by q.order_time {dir}, q.order_pk {dir} limit {lim}",
        w.join(" and ")
    );
    let hits: Vec<(i64, DateTime<Utc>)> = with_pool!(db, |p| {
        bind_args!(sqlx::query_as::<_, (i64, DateTime<Utc>)>(&sql.text), &sql.args).fetch_all(p).await
    })?;
    let Some(&(last_pk, last_at)) = hits.last() else { return Ok(Vec::new()) };

    // Those of them that pass the other filters, in the list's order.
    let others = Filter { search: String::new(), ..f.clone() };
    let mut sql = Sql::default();
    let mut w = conditions(&mut sql, scope, &others, &[], Access::ById);
    let list: Vec<String> = hits.iter().map(|(pk, _)| sql.arg(Arg::Int(*pk))).collect();
    w.push(format!("o.id in ({})", list.join(", ")));
    sql.text = format!("select {} from {} where {}", T::COLUMNS, T::FROM, w.join(" and "));
    let mut out: Vec<T> =
        with_pool!(db, |p| { bind_args!(sqlx::query_as::<_, T>(&sql.text), &sql.args).fetch_all(p).await })?;
    out.sort_by(|a, b| {
        let (a, b) = (a.cursor(f.sort), b.cursor(f.sort));
        let o = (a.at, a.id.0).cmp(&(b.at, b.id.0));
        if f.sort.ascending { o } else { o.reverse() }
    });
    for l in &mut out {
        l.mask(scope);
    }
    if out.len() < wanted && hits.len() == batch {
        let from = Cursor { at: last_at, id: OrderPk(last_pk) };
        let rest = (wanted - out.len()) as i64;
        out.extend(scan_page::<T>(db, scope, f, variants, Some(from), rest).await?);
    }
    Ok(out)
}

/// The list lines of these orders that the scope can see (others are simply not there).
pub async fn by_ids(db: &Db, scope: &OrderScope, pks: &[OrderPk]) -> sqlx::Result<Vec<Line>> {
    let mut out = Vec::with_capacity(pks.len());
    for part in pks.chunks(db.rows_per_statement(1)) {
        let mut sql = Sql::default();
        let mut w = conditions(&mut sql, scope, &Filter::default(), &[], Access::ById);
        let list: Vec<String> = part.iter().map(|pk| sql.arg(Arg::Int(pk.0))).collect();
        w.push(format!("o.id in ({})", list.join(", ")));
        sql.text = format!(
            "select {LINE_COLUMNS} from yahoo_order o join store s on s.id = o.store_id where {}",
            w.join(" and ")
        );
        let mut lines: Vec<Line> =
            with_pool!(db, |p| { bind_args!(sqlx::query_as::<_, Line>(&sql.text), &sql.args).fetch_all(p).await })?;
        for l in &mut lines {
            l.mask(scope);
        }
        out.extend(lines);
    }
    Ok(out)
}

/// The list's tabs: orders per internal status in the scope (and the chosen store), and the
/// fraud-hold queue's count in the scope (all its stores), from the counters the triggers keep
/// (`order_status_count`, `order_hold_count`: a few rows, whatever the number of orders), in
/// one statement: on SQLite every statement is a round trip to the connection's thread, which
/// costs more than these small reads themselves.
pub async fn tab_counts(
    db: &Db,
    scope: &OrderScope,
    store: Option<StoreId>,
) -> sqlx::Result<(Vec<(InternalStatus, i64)>, i64)> {
    let mut sql = Sql::default();
    let account = sql.arg(Arg::Int(scope.account.0));
    let allowed = scope_stores(&mut sql, scope, "store_id").unwrap_or_else(|| "1 = 1".to_string());
    let mut counted = vec![format!("account_id = {account}"), "n <> 0".to_string(), allowed.clone()];
    if let Some(store) = store {
        let p = sql.arg(Arg::Int(store.0));
        counted.push(format!("store_id = {p}"));
    }
    sql.text = format!(
        "select internal_status, cast(sum(n) as bigint) from order_status_count where {} group by internal_status
         union all
         select '{HELD_ROW}', cast(coalesce(sum(n), 0) as bigint) from order_hold_count where account_id = {account} and {allowed}",
        counted.join(" and "),
    );
    let rows: Vec<(String, i64)> = with_pool!(db, |p| {
        bind_args!(sqlx::query_as::<_, (String, i64)>(&sql.text), &sql.args).fetch_all(p).await
    })?;
    let mut out: Vec<(InternalStatus, i64)> = InternalStatus::ALL.into_iter().map(|s| (s, 0)).collect();
    let mut held = 0;
    for (status, n) in rows {
        if status == HELD_ROW {
            held = n;
        } else if let Some(slot) = out.iter_mut().find(|(s, _)| s.as_str() == status) {
            slot.1 += n;
        }
    }
    Ok((out, held))
}

/// The most rows [`filtered_counts`] counts: past it the tabs say 「以上」 (counting a month of a
/// large account's orders cost 200 ms on SQLite, 2,000 rows 42 ms; `bench orders`).
pub const COUNT_CAP: i64 = 1_000;
/// A search matching more terms than this is not counted (its tabs say 「以上」).
const TERMS_CAP: i64 = 5_000;

/// The tabs' counts for a list narrowed by more than a store (a search, dates, payment, ship
/// status, hold or tag): orders per internal status matching the filter but its status, so a
/// tab says how many rows it would show; `None` when more than [`COUNT_CAP`] match (the counts
/// of so many would cost a scan of them on every page). Read in the list's own order through
/// the same conditions as [`page`], so the database walks the index the page walks and stops
/// at the cap; a plain list asks [`tab_counts`] (the counters).
pub async fn filtered_counts(
    db: &Db,
    scope: &OrderScope,
    f: &Filter,
) -> sqlx::Result<Option<Vec<(InternalStatus, i64)>>> {
    let variants = variants_for(db, scope, &f.search).await?;
    // A search (by a reader who sees personal data) is counted as its page is read: the
    // matching orders from the terms, then those orders by id with the other conditions.
    // Capping rows instead let PostgreSQL walk the account's orders testing each against the
    // terms (+26 ms a page for 591 hits; +50 ms without the cap).
    if !variants.is_empty() && !scope.mask_personal {
        let mut sql = Sql::default();
        let terms = matching_terms(&mut sql, scope, &variants);
        let cap = sql.arg(Arg::Int(TERMS_CAP));
        sql.text = format!("select distinct q.order_pk from order_search q where {terms} limit {cap}");
        let hits: Vec<(i64,)> =
            with_pool!(db, |p| { bind_args!(sqlx::query_as::<_, (i64,)>(&sql.text), &sql.args).fetch_all(p).await })?;
        if hits.len() as i64 >= TERMS_CAP {
            return Ok(None);
        }
        let others = Filter { search: String::new(), status: None, ..f.clone() };
        let mut counts: Vec<(InternalStatus, i64)> = InternalStatus::ALL.into_iter().map(|s| (s, 0)).collect();
        for part in hits.chunks(db.rows_per_statement(1)) {
            let mut sql = Sql::default();
            let mut w = conditions(&mut sql, scope, &others, &[], Access::ById);
            if others.sort.key == SortKey::PublicationTime {
                w.push("o.publication_time is not null".into());
            }
            let list: Vec<String> = part.iter().map(|(pk,)| sql.arg(Arg::Int(*pk))).collect();
            w.push(format!("o.id in ({})", list.join(", ")));
            sql.text = format!(
                "select o.internal_status, cast(count(*) as bigint) from yahoo_order o where {} group by o.internal_status",
                w.join(" and ")
            );
            let rows: Vec<(String, i64)> = with_pool!(db, |p| {
                bind_args!(sqlx::query_as::<_, (String, i64)>(&sql.text), &sql.args).fetch_all(p).await
            })?;
            for (status, n) in rows {
                if let Some(slot) = counts.iter_mut().find(|(s, _)| s.as_str() == status) {
                    slot.1 += n;
                }
            }
        }
        return Ok(Some(counts));
    }
    let all = Filter { status: None, ..f.clone() };
    let mut sql = Sql::default();
    let mut w = conditions(&mut sql, scope, &all, &variants, Access::Scan);
    let column = all.sort.column();
    let dir = if all.sort.ascending { "asc" } else { "desc" };
    if all.sort.key == SortKey::PublicationTime {
        w.push("o.publication_time is not null".into());
    }
    let cap = sql.arg(Arg::Int(COUNT_CAP + 1));
    sql.text = format!(
        "select internal_status, cast(count(*) as bigint) from (
             select o.internal_status from yahoo_order o where {} order by {column} {dir}, o.id {dir} limit {cap}
         ) c group by internal_status",
        w.join(" and ")
    );
    let rows: Vec<(String, i64)> = with_pool!(db, |p| {
        bind_args!(sqlx::query_as::<_, (String, i64)>(&sql.text), &sql.args).fetch_all(p).await
    })?;
    if rows.iter().map(|(_, n)| n).sum::<i64>() > COUNT_CAP {
        return Ok(None);
    }
    Ok(Some(
        InternalStatus::ALL
            .into_iter()
            .map(|s| (s, rows.iter().filter(|(r, _)| r == s.as_str()).map(|(_, n)| n).sum()))
            .collect(),
    ))
}

impl Filter {
    /// The same list read the other way round (a page before a row is the page after it
    /// in the reversed order).
    pub fn reversed(&self) -> Filter {
        Filter { sort: Sort { ascending: !self.sort.ascending, ..self.sort }, ..self.clone() }
    }

    /// Whether it narrows the list by more than a store and a status (the tabs then count the
    /// orders themselves: [`filtered_counts`]).
    pub fn narrows(&self) -> bool {
        *self != Filter { store: self.store, status: self.status, sort: self.sort, ..Filter::default() }
    }
}

/// The label of [`tab_counts`]' held row (never an internal status).
const HELD_ROW: &str = "#held";

/// `column` limited to the scope's stores, as a condition; `None` when it has them all. A
/// scope of no stores matches nothing.
fn scope_stores(sql: &mut Sql, scope: &OrderScope, column: &str) -> Option<String> {
    let allowed = scope.stores.as_ref()?;
    if allowed.is_empty() {
        return Some("1 = 0".to_string());
    }
    let list: Vec<String> = allowed.iter().map(|s| sql.arg(Arg::Int(s.0))).collect();
    Some(format!("{column} in ({})", list.join(", ")))
}

/// Held orders (1 and 3) in the scope: the fraud-hold queue's count, from `order_hold_count`.
pub async fn held_count(db: &Db, scope: &OrderScope) -> sqlx::Result<i64> {
    let mut sql = Sql::default();
    let account = sql.arg(Arg::Int(scope.account.0));
    let allowed = scope_stores(&mut sql, scope, "store_id").unwrap_or_else(|| "1 = 1".to_string());
    sql.text = format!(
        "select cast(coalesce(sum(n), 0) as bigint) from order_hold_count where account_id = {account} and {allowed}"
    );
    let (n,): (i64,) =
        with_pool!(db, |p| { bind_args!(sqlx::query_as::<_, (i64,)>(&sql.text), &sql.args).fetch_one(p).await })?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_variants_cover_kana_and_phone_numbers() {
        assert_eq!(search_variants("  "), Vec::<String>::new());
        assert_eq!(search_variants("やまだ"), vec!["やまだ".to_string(), "ヤマダ".to_string()]);
        assert_eq!(search_variants("090-1234"), vec!["090-1234".to_string(), "0901234".to_string()]);
        assert_eq!(search_variants("Yamada@Example.JP"), vec!["yamada@example.jp".to_string()]);
        assert_eq!(search_variants("山田 太郎"), vec!["山田太郎".to_string()]);
    }

    #[test]
    fn cursors_round_trip() {
        let c = Cursor { at: DateTime::from_timestamp(1_700_000_000, 123_456_000).unwrap(), id: OrderPk(42) };
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        assert_eq!(Cursor::decode("garbage"), None);
        assert_eq!(Cursor::decode("2026-01-01T00:00:00Z_x"), None);
    }

    #[test]
    fn filters_and_sorts_parse_back() {
        for h in HoldFilter::ALL {
            assert_eq!(HoldFilter::parse(h.as_str()), h);
        }
        for s in Sort::ALL {
            assert_eq!(Sort::parse(s.as_str()), s);
        }
        assert_eq!(Sort::parse("nonsense"), Sort::default());
    }

    #[test]
    fn a_scope_without_stores_sees_nothing() {
        let scope = OrderScope { account: crate::domain::AccountId(1), stores: Some(vec![]), mask_personal: false };
        let mut sql = Sql::default();
        let w = conditions(&mut sql, &scope, &Filter::default(), &[], Access::Scan);
        assert!(w.iter().any(|c| c == "1 = 0"));
    }
}
