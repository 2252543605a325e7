//! The order list (受注一覧, product.md §6): status tabs with counts, filters, search, sorting,
//! keyset paging, the fraud-hold queue, the bulk status change with a result per order, and
//! the CSV export of exactly the filtered list.
//!
//! Every handler reads the person's [`OrderScope`] first; the database layer
//! (`db::order_list`) applies it to every query, so a staff member limited to some stores never
//! sees another store's orders in the list, the counts or the export.

use askama::Template;
use axum::{
    body::Body,
    extract::State,
    http::header,
    response::{IntoResponse, Response},
};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;

use super::{
    error::{AppError, AppResult},
    input::{self, Query},
    render::{Layout, ok},
    session::{ClientIp, Merchant},
};
use crate::{
    app::AppState,
    db::{
        audit, changes,
        order_list::{self, Brief, Cursor, Filter, HoldFilter, Line, Sort},
        orders::{HistoryActor, OrderPk},
        stores::{self, StoreLink},
    },
    domain::{
        StoreId, jst,
        scope::OrderScope,
        status::{CANCEL_REASONS, ChangeRequest, Refusal, ShipInput},
        store::InternalStatus,
    },
};

pub const PAGE_SIZE: i64 = 50;
/// At most this many orders in one bulk change.
pub const BULK_LIMIT: usize = 500;

/// Ship companies offered by the ship form (ShipCompanyCode, yahoo-store-api.md §4.3).
pub const SHIP_COMPANIES: [(&str, &str); 3] = [("1001", "ヤマト運輸"), ("1002", "佐川急便"), ("1000", "その他")];

/// The list's query string, as typed (normalised by [`Query`]).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    pub store: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub hold: String,
    #[serde(default)]
    pub ordered_from: String,
    #[serde(default)]
    pub ordered_to: String,
    #[serde(default)]
    pub published_from: String,
    #[serde(default)]
    pub published_to: String,
    #[serde(default)]
    pub pay: String,
    #[serde(default)]
    pub ship: String,
    #[serde(default)]
    pub q: String,
    /// `<tag id>`, `-<tag id>` (without it) or `stop` (any 出荷止め tag).
    #[serde(default)]
    pub tag: String,
    #[serde(default)]
    pub sort: String,
    /// Keyset paging: the page after this row, or the page before it, and the position of the
    /// page's first row (1-based; what 「51〜100件目」 says).
    #[serde(default)]
    pub after: String,
    #[serde(default)]
    pub before: String,
    #[serde(default)]
    pub from: String,
    /// CSV only: `sjis` for Shift_JIS, anything else UTF-8 with BOM.
    #[serde(default)]
    pub encoding: String,
    /// CSV only: `items` for one row per item line (商品明細).
    #[serde(default)]
    pub lines: String,
}

/// Start of a JST day in UTC.
fn jst_day_start(d: NaiveDate) -> DateTime<Utc> {
    let midnight = d.and_hms_opt(0, 0, 0).unwrap_or_default();
    (midnight - chrono::Duration::hours(9)).and_utc()
}

fn parse_day(s: &str) -> Result<Option<NaiveDate>, ()> {
    if s.is_empty() {
        return Ok(None);
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .or_else(|_| NaiveDate::parse_from_str(s, "%Y/%m/%d"))
        .map(Some)
        .map_err(|_| ())
}

impl ListQuery {
    /// The filter, and a message per part that could not be read (that part is left out).
    pub fn filter(&self, stores: &[StoreLink]) -> (Filter, Vec<String>) {
        let mut errors = Vec::new();
        let mut day = |label: &str, s: &str| match parse_day(s) {
            Ok(d) => d,
            Err(()) => {
                errors.push(format!("{label}「{s}」は日付として読めません（例: 2026-11-30）"));
                None
            }
        };
        let ordered = (day("注文日（から）", &self.ordered_from), day("注文日（まで）", &self.ordered_to));
        let published = (day("公開日（から）", &self.published_from), day("公開日（まで）", &self.published_to));
        let range = |(from, to): (Option<NaiveDate>, Option<NaiveDate>)| {
            (from.map(jst_day_start), to.and_then(|d| d.succ_opt()).map(jst_day_start))
        };
        let (ordered_from, ordered_to) = range(ordered);
        let (published_from, published_to) = range(published);
        for ((from, to), label) in [(ordered, "注文日"), (published, "公開日")] {
            if let (Some(f), Some(t)) = (from, to)
                && f > t
            {
                errors.push(format!("{label}の期間は「から」が「まで」より後になっています"));
            }
        }
        let store = self.store.parse::<i64>().ok().map(StoreId).filter(|id| stores.iter().any(|s| s.id == *id));
        let small = |s: &str| s.parse::<i64>().ok().filter(|v| (0..=9).contains(v));
        let filter = Filter {
            store,
            status: InternalStatus::parse(&self.status),
            hold: HoldFilter::parse(&self.hold),
            ordered_from,
            ordered_to,
            published_from,
            published_to,
            pay_status: small(&self.pay),
            ship_status: small(&self.ship),
            search: self.q.chars().take(100).collect(),
            sort: Sort::parse(&self.sort),
            tag: crate::db::order_list::TagFilter::parse(&self.tag),
        };
        (filter, errors)
    }

    /// This list's query with its page (`after`, `before`, `from`): what 「受注一覧に戻る」 returns to.
    pub fn with_page(&self) -> String {
        self.with(&[("after", &self.after), ("before", &self.before), ("from", &self.from)])
    }

    /// What an order's link carries so that its page leads back to this list and on to the
    /// orders beside it there: `?list=<this list's query>` (empty for the plain list). An order
    /// page opened from elsewhere has no list, and no 前の注文 / 次の注文.
    pub fn order_link_suffix(&self) -> String {
        format!("?list={}", url::form_urlencoded::byte_serialize(self.with_page().as_bytes()).collect::<String>())
    }

    /// The query string of this list with some parameters replaced (`""` removes one). The
    /// page's position (`after`, `before`, `from`) is carried only when given: every other link
    /// starts at the first page.
    pub fn with(&self, changes: &[(&str, &str)]) -> String {
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        let current = [
            ("store", self.store.as_str()),
            ("status", self.status.as_str()),
            ("hold", self.hold.as_str()),
            ("ordered_from", self.ordered_from.as_str()),
            ("ordered_to", self.ordered_to.as_str()),
            ("published_from", self.published_from.as_str()),
            ("published_to", self.published_to.as_str()),
            ("pay", self.pay.as_str()),
            ("ship", self.ship.as_str()),
            ("q", self.q.as_str()),
            ("tag", self.tag.as_str()),
            ("sort", self.sort.as_str()),
            ("after", ""),
            ("before", ""),
            ("from", ""),
        ];
        for (k, v) in current {
            let v = changes.iter().find(|(c, _)| *c == k).map_or(v, |(_, v)| *v);
            if !v.is_empty() {
                q.append_pair(k, v);
            }
        }
        q.finish()
    }
}

/// The person's order scope: their account, the stores they may work, and masking.
pub async fn scope_of(state: &AppState, me: &Merchant) -> AppResult<OrderScope> {
    let _ = state;
    me.scope().await
}

/// How long a filtered list's tab counts are reused: paging and switching tabs under one
/// filter count once (the counts are kept apart from the rows anyway).
const COUNTS_FRESH_FOR: std::time::Duration = std::time::Duration::from_secs(20);
/// Lists whose counts are kept at most (per process).
const COUNTS_KEPT: usize = 2_000;

type Counted = Option<Vec<(InternalStatus, i64)>>;

/// The filtered tabs' counts of recent lists, per reader's scope and filter (its status
/// aside), for [`COUNTS_FRESH_FOR`].
#[derive(Default)]
pub struct CountCache {
    kept: std::sync::Mutex<std::collections::HashMap<String, (std::time::Instant, Counted)>>,
}

impl CountCache {
    /// `plain`: the counters' counts of the same scope (and store), read for this page anyway:
    /// when an order arrives or changes status they change, and so does the key, so a status
    /// change made under a filter shows in its tabs at once.
    async fn counts(
        &self,
        state: &AppState,
        scope: &OrderScope,
        filter: &Filter,
        plain: &[(InternalStatus, i64)],
        held: i64,
    ) -> AppResult<Counted> {
        let key = format!(
            "{:?}|{:?}|{}|{:?}|{plain:?}|{held}",
            scope.account,
            scope.stores,
            scope.mask_personal,
            Filter { status: None, ..filter.clone() }
        );
        let fresh = |at: &std::time::Instant| at.elapsed() < COUNTS_FRESH_FOR;
        if let Some((at, counted)) = self.kept.lock().unwrap_or_else(|p| p.into_inner()).get(&key)
            && fresh(at)
        {
            return Ok(counted.clone());
        }
        let counted = order_list::filtered_counts(&state.db, scope, filter).await?;
        let mut kept = self.kept.lock().unwrap_or_else(|p| p.into_inner());
        if kept.len() >= COUNTS_KEPT {
            kept.retain(|_, (at, _)| fresh(at));
            if kept.len() >= COUNTS_KEPT {
                kept.clear();
            }
        }
        kept.insert(key, (std::time::Instant::now(), counted.clone()));
        Ok(counted)
    }
}

/// A status tab with its count.
pub struct Tab {
    pub status: Option<InternalStatus>,
    pub label: &'static str,
    /// `None`: more than `order_list::COUNT_CAP` orders match the filter.
    pub count: Option<i64>,
    pub href: String,
    pub current: bool,
}

#[derive(Template)]
#[template(path = "orders/index.html")]
pub struct OrdersPage {
    layout: Layout,
    q: ListQuery,
    filter: Filter,
    errors: Vec<String>,
    tabs: Vec<Tab>,
    held: i64,
    stores: Vec<StoreLink>,
    orders: Vec<Brief>,
    /// The page's orders' tags, and the account's (for the filter).
    tags: std::collections::HashMap<OrderPk, Vec<crate::db::tags::Tag>>,
    all_tags: Vec<crate::db::tags::Tag>,
    /// The rules a person may run on chosen orders (id, name).
    rules: Vec<(i64, String)>,
    next: Option<String>,
    previous: Option<String>,
    /// The position of the page's first row (1-based).
    first_row: i64,
    now: DateTime<Utc>,
    targets: Vec<InternalStatus>,
    cancel_reasons: &'static [(u16, &'static str)],
    masked: bool,
}

impl OrdersPage {
    fn is_store(&self, id: &StoreId) -> bool {
        self.filter.store == Some(*id)
    }

    /// A row's store, by name, from the stores the page holds (those this person may see).
    fn store_name(&self, id: &StoreId) -> &str {
        self.stores.iter().find(|s| s.id == *id).map_or("", |s| s.name.as_str())
    }

    fn tags_of(&self, pk: &OrderPk) -> &[crate::db::tags::Tag] {
        self.tags.get(pk).map_or(&[], Vec::as_slice)
    }

    fn is_inbox(&self) -> bool {
        self.filter.status == Some(InternalStatus::AutoImportInbox)
    }

    fn is_queue(&self) -> bool {
        self.filter.hold == HoldFilter::Held
    }

    fn hold_options(&self) -> [HoldFilter; 6] {
        HoldFilter::ALL
    }

    fn sort_options(&self) -> [Sort; 4] {
        Sort::ALL
    }

    /// The label export of every order of this filter (the button posts the selection's form
    /// there; `all=1` makes the filter, not the ticks, choose).
    fn labels_all_href(&self) -> String {
        format!("/shipping/labels?all=1&{}", self.q.with(&[("after", "")]))
    }

    fn csv_href(&self, encoding: &str) -> String {
        format!("/orders.csv?{}&encoding={encoding}", self.q.with(&[("after", "")]))
    }

    /// The same export with one row per item line.
    fn items_csv_href(&self, encoding: &str) -> String {
        format!("{}&lines=items", self.csv_href(encoding))
    }

    /// The held count as the alert says it.
    fn held_label(&self) -> String {
        format!("{}件", self.held)
    }

    fn queue_href(&self) -> String {
        "/orders?hold=held".into()
    }

    /// How long a held order has been held (since it was placed: Yahoo holds at ordering).
    fn held_for(&self, line: &Brief) -> String {
        if !line.fraud_hold().is_held() {
            return String::new();
        }
        let mins = (self.now - line.order_time).num_minutes().max(0);
        match mins {
            m if m < 60 => format!("{m}分"),
            m if m < 60 * 48 => format!("{}時間", m / 60),
            m => format!("{}日", m / (60 * 24)),
        }
    }

    /// What a row's link carries so that its order page leads back here and on to the
    /// rows beside it.
    fn row_link_suffix(&self) -> String {
        self.q.order_link_suffix()
    }

    /// Which rows the page shows, of how many the current tab counts: 「51〜100件目（全234件）」.
    fn shown(&self) -> String {
        let total = self.tabs.iter().find(|t| t.current).map(|t| t.count);
        let last = self.first_row + self.orders.len() as i64 - 1;
        match total {
            // The counts are kept apart from the rows; a page read while orders arrive may
            // run past them.
            Some(Some(total)) if total >= last => format!("{}〜{}件目（全{}件）", self.first_row, last, total),
            Some(None) => format!("{}〜{}件目（全{}件以上）", self.first_row, last, crate::db::order_list::COUNT_CAP),
            _ => format!("{}〜{}件目", self.first_row, last),
        }
    }

    /// A tab's count as it shows: the number, or 「10000+」 past the cap.
    fn count_label(count: &Option<i64>) -> String {
        count.map_or_else(|| format!("{}+", crate::db::order_list::COUNT_CAP), |n| n.to_string())
    }

    /// How many conditions besides the search narrow the list (the folded box says so).
    fn filters_on(&self) -> usize {
        let f = &self.filter;
        [
            f.store.is_some(),
            f.hold != HoldFilter::default(),
            f.ordered_from.is_some() || f.ordered_to.is_some(),
            f.published_from.is_some() || f.published_to.is_some(),
            f.pay_status.is_some(),
            f.ship_status.is_some(),
            f.tag.is_some(),
        ]
        .into_iter()
        .filter(|on| *on)
        .count()
    }

    fn any_filter(&self) -> bool {
        self.filter != Filter { status: self.filter.status, sort: self.filter.sort, ..Filter::default() }
    }
}

/// One page of the list, with the links to the pages beside it.
struct Pages {
    orders: Vec<Brief>,
    next: Option<String>,
    previous: Option<String>,
    first_row: i64,
}

/// The orders before and after `order` in the list `q` describes (as the reader sees it), for
/// the order page's 前の注文 / 次の注文.
pub async fn neighbours(
    state: &AppState,
    scope: &OrderScope,
    q: &ListQuery,
    stores: &[StoreLink],
    order: &crate::db::orders::OrderRow,
) -> AppResult<(Option<OrderPk>, Option<OrderPk>)> {
    let (filter, _) = q.filter(stores);
    let at = order_list::cursor_of(filter.sort, order.order_time, order.publication_time, order.id);
    let before: Vec<Brief> = order_list::page(&state.db, scope, &filter.reversed(), Some(at), 1).await?;
    let after: Vec<Brief> = order_list::page(&state.db, scope, &filter, Some(at), 1).await?;
    Ok((before.first().map(|o| o.id), after.first().map(|o| o.id)))
}

/// The page the query asks for: after a row (forward), before a row (the list read backwards
/// from it, then turned round), or the first. Going back to the start shows the first page
/// whole, whatever arrived meanwhile.
async fn pages_of(
    state: &AppState,
    scope: &OrderScope,
    q: &ListQuery,
    filter: &Filter,
    errors: &mut Vec<String>,
) -> AppResult<Pages> {
    let size = PAGE_SIZE as usize;
    let read = |s: &str| if s.is_empty() { Ok(None) } else { Cursor::decode(s).map(Some).ok_or(()) };
    let (after, before) = match (read(&q.after), read(&q.before)) {
        (Ok(after), Ok(before)) => (after, before),
        _ => {
            errors.push("ページの位置が読めなかったため、先頭から表示しています".into());
            (None, None)
        }
    };
    let said = q.from.parse::<i64>().ok().filter(|n| *n >= 1);
    let (mut orders, mut first_row, more_before, more_after) = match (after, before) {
        (_, Some(b)) => {
            let mut rows: Vec<Brief> =
                order_list::page(&state.db, scope, &filter.reversed(), Some(b), PAGE_SIZE + 1).await?;
            if rows.len() > size {
                rows.truncate(size);
                rows.reverse();
                (rows, said.unwrap_or(2).max(2), true, true)
            } else {
                (Vec::new(), 1, false, false)
            }
        }
        (Some(a), None) => {
            let rows: Vec<Brief> = order_list::page(&state.db, scope, filter, Some(a), PAGE_SIZE + 1).await?;
            let more = rows.len() > size;
            (rows, said.unwrap_or(PAGE_SIZE + 1).max(2), true, more)
        }
        (None, None) => (Vec::new(), 1, false, false),
    };
    if !more_before {
        // The first page (asked for, or reached going back).
        orders = order_list::page(&state.db, scope, filter, None, PAGE_SIZE + 1).await?;
        first_row = 1;
    }
    let more_after = more_after || orders.len() > size;
    orders.truncate(size);
    let at = |o: &Brief| o.cursor(filter.sort).encode();
    let next = orders.last().filter(|_| more_after).map(|o| {
        let from = (first_row + PAGE_SIZE).to_string();
        format!("/orders?{}", q.with(&[("after", &at(o)), ("from", &from)]))
    });
    let previous = orders.first().filter(|_| more_before).map(|o| {
        let from = (first_row - PAGE_SIZE).max(1).to_string();
        format!("/orders?{}", q.with(&[("before", &at(o)), ("from", &from)]))
    });
    Ok(Pages { orders, next, previous, first_row })
}

pub async fn index(State(state): State<AppState>, me: Merchant, Query(q): Query<ListQuery>) -> AppResult<Response> {
    let scope = scope_of(&state, &me).await?;
    let title = if HoldFilter::parse(&q.hold) == HoldFilter::Held { "不正保留の注文" } else { "受注一覧" };
    let layout = me.layout(title).await?;
    // The header already holds the stores this person may see.
    let stores: Vec<StoreLink> = layout.nav.as_ref().map(|n| n.stores.clone()).unwrap_or_default();
    let (filter, mut errors) = q.filter(&stores);
    let pages = pages_of(&state, &scope, &q, &filter, &mut errors).await?;
    let orders = pages.orders;
    let pks: Vec<OrderPk> = orders.iter().map(|o| o.id).collect();
    let tags = crate::db::tags::of_orders(&state.db, scope.account, &pks).await?;
    let (counts, held) = order_list::tab_counts(&state.db, &scope, filter.store).await?;
    // Narrowed by more than a store: the tabs count what the filter shows, up to the cap. A
    // list of every status that fits on one page counts its own rows.
    let whole = filter.status.is_none() && pages.previous.is_none() && pages.next.is_none();
    let counts: Vec<(InternalStatus, Option<i64>)> = if filter.narrows() && whole {
        InternalStatus::ALL
            .into_iter()
            .map(|s| (s, Some(orders.iter().filter(|o| o.internal_status() == s).count() as i64)))
            .collect()
    } else if filter.narrows() {
        match state.tab_counts.counts(&state, &scope, &filter, &counts, held).await? {
            Some(counts) => counts.into_iter().map(|(s, n)| (s, Some(n))).collect(),
            None => counts.into_iter().map(|(s, _)| (s, None)).collect(),
        }
    } else {
        counts.into_iter().map(|(s, n)| (s, Some(n))).collect()
    };
    let tab = |status: Option<InternalStatus>, label: &'static str, count: Option<i64>| Tab {
        status,
        label,
        count,
        href: format!("/orders?{}", q.with(&[("status", status.map_or("", InternalStatus::as_str)), ("after", "")])),
        current: filter.status == status,
    };
    let total = counts.iter().map(|(_, n)| *n).sum::<Option<i64>>();
    let mut tabs = vec![tab(None, "すべて", total)];
    tabs.extend(counts.iter().map(|(s, n)| tab(Some(*s), s.label(), *n)));
    let targets = InternalStatus::ALL
        .into_iter()
        .filter(|s| !matches!(s, InternalStatus::AutoImportInbox | InternalStatus::Failed))
        .collect();
    Ok(ok(&OrdersPage {
        layout,
        q,
        filter,
        errors,
        tabs,
        held,
        stores,
        orders,
        tags,
        all_tags: crate::db::tags::list(&state.db, scope.account).await?,
        rules: super::rules::runnable(&state, &me).await?,
        next: pages.next,
        previous: pages.previous,
        first_row: pages.first_row,
        now: Utc::now(),
        targets,
        cancel_reasons: &CANCEL_REASONS,
        masked: scope.mask_personal,
    }))
}

/// A bulk form's fields: the selected orders and the change asked for.
#[derive(Clone, Debug, Default)]
pub struct BulkForm {
    pub orders: Vec<OrderPk>,
    pub target: String,
    pub cancel_reason: String,
    pub ship_company: String,
    pub ship_date: String,
    /// Per order: the tracking number typed on the ship step.
    pub invoices: Vec<(OrderPk, String)>,
    /// Set by the ship step's form.
    pub ship_step: bool,
}

impl BulkForm {
    fn parse(body: &str) -> BulkForm {
        let mut f = BulkForm::default();
        for (k, v) in url::form_urlencoded::parse(body.as_bytes()) {
            let v = input::normalize(&k, &v);
            match k.as_ref() {
                "order" => {
                    if let Ok(id) = v.parse()
                        && f.orders.len() < BULK_LIMIT
                        && !f.orders.contains(&OrderPk(id))
                    {
                        f.orders.push(OrderPk(id));
                    }
                }
                "target" => f.target = v,
                "cancel_reason" => f.cancel_reason = v,
                "ship_company" => f.ship_company = v,
                "ship_date" => f.ship_date = v,
                "ship_step" => f.ship_step = true,
                other => {
                    if let Some(id) = other.strip_prefix("invoice_").and_then(|s| s.parse().ok()) {
                        f.invoices.push((OrderPk(id), v));
                    }
                }
            }
        }
        f
    }
}

/// One order's outcome in a bulk change.
pub struct BulkResult {
    pub pk: OrderPk,
    pub order_id: String,
    pub store_name: String,
    pub done: bool,
    pub message: String,
    /// Refused by the fraud-hold rule: the same target would be refused again.
    pub held: bool,
}

#[derive(Template)]
#[template(path = "orders/bulk.html")]
pub struct BulkPage {
    layout: Layout,
    target: InternalStatus,
    form: BulkForm,
    /// The ship step: orders to give tracking numbers.
    ship_lines: Vec<Line>,
    results: Vec<BulkResult>,
    errors: Vec<String>,
    today: String,
    companies: &'static [(&'static str, &'static str)],
    cancel_reasons: &'static [(u16, &'static str)],
}

impl BulkPage {
    fn refused(&self) -> impl Iterator<Item = &BulkResult> {
        self.results.iter().filter(|r| !r.done)
    }

    fn done_count(&self) -> usize {
        self.results.iter().filter(|r| r.done).count()
    }

    /// The refused target is worth offering again only for an order the fraud-hold rule did not
    /// refuse (it refuses the same change every time).
    fn retry_same(&self) -> bool {
        self.refused().any(|r| !r.held)
    }

    fn refused_count(&self) -> usize {
        self.results.len() - self.done_count()
    }

    fn is_company(&self, code: &&str) -> bool {
        self.form.ship_company == *code
    }

    fn is_reason(&self, code: &u16) -> bool {
        self.form.cancel_reason == code.to_string()
    }
}

/// The bulk status change: every selected order goes through `changes::change_status` (and so
/// through the fraud-hold rule) on its own; the page shows a result per order and lets the
/// refused ones be retried. 出荷済み first asks for each order's tracking number.
pub async fn bulk(
    State(state): State<AppState>,
    me: Merchant,
    ClientIp(ip): ClientIp,
    body: String,
) -> AppResult<Response> {
    let form = BulkForm::parse(&body);
    let scope = scope_of(&state, &me).await?;
    let layout = me.layout("ステータスの一括変更").await?;
    let today = jst::today(Utc::now());
    let mut page = BulkPage {
        layout,
        target: InternalStatus::New,
        form: form.clone(),
        ship_lines: Vec::new(),
        results: Vec::new(),
        errors: Vec::new(),
        today: today.format("%Y-%m-%d").to_string(),
        companies: &SHIP_COMPANIES,
        cancel_reasons: &CANCEL_REASONS,
    };
    let Some(target) = InternalStatus::parse(&form.target) else {
        page.errors.push("変更後のステータスを選んでください".into());
        return Ok(ok(&page));
    };
    page.target = target;
    if form.orders.is_empty() {
        page.errors.push("注文を選んでください".into());
        return Ok(ok(&page));
    }
    let cancel_reason = form.cancel_reason.parse::<u16>().ok();
    if target == InternalStatus::Cancelled && cancel_reason.is_none() {
        page.errors.push("キャンセル理由を選んでください".into());
        return Ok(ok(&page));
    }
    let ship_date = parse_day(&form.ship_date).ok().flatten();
    if target == InternalStatus::Shipped {
        let mut step_errors = Vec::new();
        if form.ship_step {
            if !SHIP_COMPANIES.iter().any(|(c, _)| *c == form.ship_company) {
                step_errors.push("配送会社を選んでください".to_string());
            }
            if ship_date.is_none() {
                step_errors.push(format!("出荷日「{}」は日付として読めません（例: 2026-11-30）", form.ship_date));
            }
        }
        if !form.ship_step || !step_errors.is_empty() {
            page.errors = step_errors;
            if page.form.ship_date.is_empty() {
                page.form.ship_date = page.today.clone();
            }
            page.ship_lines = lines_of(&state, &scope, &form.orders).await?;
            return Ok(ok(&page));
        }
    }
    let actor = HistoryActor::User(me.user.email.clone());
    let lines = lines_of(&state, &scope, &form.orders).await?;
    for pk in &form.orders {
        let line = lines.iter().find(|l| l.id == *pk);
        let ship = match (target, ship_date) {
            (InternalStatus::Shipped, Some(date)) => {
                let invoice = form.invoices.iter().find(|(p, _)| p == pk).map(|(_, v)| v.clone()).unwrap_or_default();
                Some(ShipInput {
                    ship_url: crate::domain::shipping::ship_url(&form.ship_company, &invoice),
                    company_code: form.ship_company.clone(),
                    invoice_number: invoice,
                    ship_date: date,
                })
            }
            _ => None,
        };
        let req = ChangeRequest { target, cancel_reason, ship, unpaid_confirmed: false };
        let outcome = changes::change_status(&state.db, &scope, *pk, &req, &actor, crate::db::now()).await?;
        let held =
            matches!(outcome, Err(Refusal::FraudHold | Refusal::Leave(crate::domain::shipping::Exclusion::FraudHold)));
        let (done, message) = match outcome {
            Ok(plan) if plan.pushes.is_empty() => (true, "変更しました".to_string()),
            Ok(_) => (true, "変更しました（Yahoo!への反映を送信待ち）".to_string()),
            Err(refusal) => (false, refusal.to_string()),
        };
        page.results.push(BulkResult {
            pk: *pk,
            order_id: line.map_or_else(|| pk.to_string(), |l| l.order_id.clone()),
            store_name: line.map(|l| l.store_name.clone()).unwrap_or_default(),
            done,
            message,
            held,
        });
    }
    let detail = format!(
        "ステータス一括変更: 「{}」へ {}件（変更 {}件・拒否 {}件）",
        target.label(),
        page.results.len(),
        page.done_count(),
        page.refused_count()
    );
    me.audit(audit::Action::BulkStatusChange, &detail, &ip).await?;
    Ok(ok(&page))
}

/// The list lines of the given orders that the scope can see.
async fn lines_of(state: &AppState, scope: &OrderScope, pks: &[OrderPk]) -> AppResult<Vec<Line>> {
    Ok(order_list::by_ids(&state.db, scope, pks).await?)
}

/// The CSV export of exactly the filtered list, streamed page by page (keyset), so memory does
/// not grow with its size. UTF-8 with a BOM, or Shift_JIS for Excel, where a character that
/// Shift_JIS cannot hold becomes 〓 (visible, never dropped).
pub async fn csv(
    State(state): State<AppState>,
    me: Merchant,
    ClientIp(ip): ClientIp,
    Query(q): Query<ListQuery>,
) -> AppResult<Response> {
    let scope = scope_of(&state, &me).await?;
    let stores: Vec<StoreLink> = stores::visible_links(&state.db, &scope).await?;
    let (filter, errors) = q.filter(&stores);
    if !errors.is_empty() {
        return Err(AppError::BadRequest("絞り込みの日付が読めません。受注一覧で条件を直してから出力してください"));
    }
    let encoding =
        if q.encoding == "sjis" { crate::web::csv::Encoding::ShiftJis } else { crate::web::csv::Encoding::Utf8Bom };
    // The search text may be a buyer's name or phone number, and the audit log is read by
    // people who may not see those (support without 個人情報): it says a search was used, not what.
    let searched = if q.q.trim().is_empty() { "" } else { crate::domain::scope::MASK };
    me.audit(audit::Action::OrdersExported, &format!("CSV出力: {}", q.with(&[("after", ""), ("q", searched)])), &ip)
        .await?;
    let now = Utc::now().with_timezone(&jst::offset());
    let shape = if q.lines == "items" { crate::web::csv::Shape::Items } else { crate::web::csv::Shape::Orders };
    let prefix = if shape == crate::web::csv::Shape::Items { "order-items" } else { "orders" };
    let name = format!("{prefix}-{}.csv", now.format("%Y%m%d-%H%M"));
    let stream = crate::web::csv::order_stream(state.db.clone(), scope, filter, encoding, shape);
    Ok((
        [
            (header::CONTENT_TYPE, encoding.content_type().to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}
