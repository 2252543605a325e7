//! Rules (issue 30): the account's rules in their order, the 離島 postcode list, and applying
//! rules to orders inside the caller's transaction ([`RuleTx::apply_rules`]): the import's
//! batch (so a killed import never leaves an order half-ruled) and a person's run on chosen
//! orders. The rules apply once per order per trigger: their 履歴 entry records the trigger
//! (`order_history.rule_trigger`, unique per order) and says what matched and what it did.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};

use super::{
    Db,
    changes::ChangeTx,
    orders::{HistoryActor, OrderPk},
    with_pool,
};
use crate::{
    carrier::LabelFormat,
    domain::{
        AccountId, StoreId,
        order::OrderDetail,
        rules::{
            Action, Hit, Rule, RuleContext, RuleFacts, RuleSpec, evaluate, history_line, needs_repeat_buyer, tag_effect,
        },
        scope::OrderScope,
        status::{ChangeRequest, Refusal},
        store::InternalStatus,
    },
    import::rules::AUTO_CHANGE_REFUSED,
};

#[derive(sqlx::FromRow)]
struct RuleRow {
    id: i64,
    name: String,
    position: i64,
    enabled: bool,
    stores: String,
    spec: String,
    stop_after: bool,
}

impl RuleRow {
    /// A spec that no longer reads (it never should) keeps the rule listed, without actions
    /// that could do anything.
    fn into_rule(self) -> Rule {
        let spec: RuleSpec = serde_json::from_str(&self.spec).unwrap_or_default();
        let stores: Vec<i64> = serde_json::from_str(&self.stores).unwrap_or_default();
        Rule {
            id: self.id,
            name: self.name,
            position: self.position,
            enabled: self.enabled,
            stores: stores.into_iter().map(StoreId).collect(),
            spec,
            stop_after: self.stop_after,
        }
    }
}

const RULE_SELECT: &str =
    "select id, name, position, enabled, stores, spec, stop_after from order_rule where account_id = $1";

/// The account's rules, in their order.
pub async fn list(db: &Db, account: AccountId) -> sqlx::Result<Vec<Rule>> {
    let sql = format!("{RULE_SELECT} order by position, id");
    let rows: Vec<RuleRow> = with_pool!(db, |p| sqlx::query_as(&sql).bind(account).fetch_all(p).await)?;
    Ok(rows.into_iter().map(RuleRow::into_rule).collect())
}

/// One rule of the account.
pub async fn get(db: &Db, account: AccountId, id: i64) -> sqlx::Result<Option<Rule>> {
    let sql = format!("{RULE_SELECT} and id = $2");
    let row: Option<RuleRow> = with_pool!(db, |p| sqlx::query_as(&sql).bind(account).bind(id).fetch_optional(p).await)?;
    Ok(row.map(RuleRow::into_rule))
}

/// A rule as the form gives it.
#[derive(Clone, Debug)]
pub struct RuleInput {
    pub name: String,
    pub enabled: bool,
    pub stores: Vec<StoreId>,
    pub spec: RuleSpec,
    pub stop_after: bool,
}

/// Saves a rule: a new one goes last. False when `id` is not a rule of the account.
pub async fn save(
    db: &Db,
    account: AccountId,
    id: Option<i64>,
    r: &RuleInput,
    now: DateTime<Utc>,
) -> sqlx::Result<Option<i64>> {
    let spec = serde_json::to_string(&r.spec).map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
    let stores = serde_json::to_string(&r.stores.iter().map(|s| s.0).collect::<Vec<_>>())
        .map_err(|e| sqlx::Error::Protocol(e.to_string()))?;
    with_pool!(db, |p| {
        match id {
            Some(id) => {
                let n = sqlx::query(
                    "update order_rule set name = $3, enabled = $4, stores = $5, spec = $6, stop_after = $7,
                         updated_at = $8
                     where account_id = $1 and id = $2",
                )
                .bind(account)
                .bind(id)
                .bind(&r.name)
                .bind(r.enabled)
                .bind(&stores)
                .bind(&spec)
                .bind(r.stop_after)
                .bind(now)
                .execute(p)
                .await?
                .rows_affected();
                Ok((n == 1).then_some(id))
            }
            None => {
                let id: i64 = sqlx::query_scalar(
                    "insert into order_rule (account_id, position, name, enabled, stores, spec, stop_after,
                         created_at, updated_at)
                     values ($1, (select coalesce(max(position), 0) + 1 from order_rule where account_id = $1),
                         $2, $3, $4, $5, $6, $7, $7)
                     returning id",
                )
                .bind(account)
                .bind(&r.name)
                .bind(r.enabled)
                .bind(&stores)
                .bind(&spec)
                .bind(r.stop_after)
                .bind(now)
                .fetch_one(p)
                .await?;
                Ok(Some(id))
            }
        }
    })
}

/// Deletes a rule of the account (the orders keep what it did, and their 履歴 says so).
pub async fn delete(db: &Db, account: AccountId, id: i64) -> sqlx::Result<bool> {
    with_pool!(db, |p| {
        sqlx::query("delete from order_rule where account_id = $1 and id = $2")
            .bind(account)
            .bind(id)
            .execute(p)
            .await
            .map(|r| r.rows_affected() == 1)
    })
}

/// Moves a rule one place up or down (swapping with its neighbour). False when it is not the
/// account's or already first/last.
pub async fn move_rule(db: &Db, account: AccountId, id: i64, up: bool) -> sqlx::Result<bool> {
    let rules = list(db, account).await?;
    let Some(i) = rules.iter().position(|r| r.id == id) else { return Ok(false) };
    let j = if up { i.checked_sub(1) } else { Some(i + 1).filter(|j| *j < rules.len()) };
    let Some(j) = j else { return Ok(false) };
    // Positions are renumbered in order, so two rules never share one.
    let order: Vec<i64> = {
        let mut ids: Vec<i64> = rules.iter().map(|r| r.id).collect();
        ids.swap(i, j);
        ids
    };
    with_pool!(db, |p| {
        let mut tx = p.begin().await?;
        for (pos, rid) in order.iter().enumerate() {
            sqlx::query("update order_rule set position = $3 where account_id = $1 and id = $2")
                .bind(account)
                .bind(*rid)
                .bind(pos as i64 + 1)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(true)
    })
}

/// The account's 離島 postcodes (seven digits each), sorted.
pub async fn islands(db: &Db, account: AccountId) -> sqlx::Result<Vec<String>> {
    with_pool!(db, |p| {
        sqlx::query_scalar("select postcode from island_postcode where account_id = $1 order by postcode")
            .bind(account)
            .fetch_all(p)
            .await
    })
}

/// Replaces the account's 離島 postcodes.
pub async fn set_islands(db: &Db, account: AccountId, postcodes: &[String]) -> sqlx::Result<()> {
    with_pool!(db, |p| {
        let mut tx = p.begin().await?;
        sqlx::query("delete from island_postcode where account_id = $1").bind(account).execute(&mut *tx).await?;
        for part in postcodes.chunks(400) {
            let rows: Vec<String> = (0..part.len()).map(|i| format!("($1, ${})", i + 2)).collect();
            let sql = format!(
                "insert into island_postcode (account_id, postcode) values {} on conflict do nothing",
                rows.join(", ")
            );
            let mut q = sqlx::query(&sql).bind(account);
            for code in part {
                q = q.bind(code);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await
    })
}

/// The account's tags and 離島 postcodes, as the rules read them.
pub async fn context(db: &Db, account: AccountId) -> sqlx::Result<RuleContext> {
    let tags = super::tags::list(db, account).await?;
    let islands = islands(db, account).await?;
    Ok(RuleContext {
        tags: tags.into_iter().map(|t| (t.id, (t.name, t.stops_shipping))).collect(),
        islands: islands.into_iter().collect(),
    })
}

/// Orders among `pks` whose buyer (same e-mail or phone) is on an earlier order of the account.
pub async fn repeat_buyers(db: &Db, account: AccountId, pks: &[OrderPk]) -> sqlx::Result<HashSet<OrderPk>> {
    // A phone Yahoo masked (a social gift's giver, `****`) names nobody.
    with_pool!(db, |p| {
        let mut conn = p.acquire().await?;
        conn.repeat_buyers(account, pks).await
    })
}

/// One order a rule run looks at: its key and store, Yahoo's fields, and the trigger
/// (`import`, `change:<version>`, `manual:<run>`).
#[derive(Clone, Debug)]
pub struct RuleTarget<'a> {
    pub pk: OrderPk,
    pub store: StoreId,
    pub detail: &'a OrderDetail,
    pub trigger: String,
}

/// What a run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RuleRunOutcome {
    /// Orders at least one rule applied to.
    pub orders: usize,
    /// Rules applied, counted per order.
    pub applied: usize,
}

/// The trigger of an order arriving.
pub const TRIGGER_IMPORT: &str = "import";

/// The trigger of an order changed at Yahoo: once per version Yahoo gives it.
pub fn trigger_change(d: &OrderDetail) -> String {
    format!("change:{}:{}", d.version, d.last_update_time.map(|t| t.timestamp_millis()).unwrap_or_default())
}

/// Applies rules inside a transaction the caller holds (and commits).
pub(crate) trait RuleTx {
    /// The account's rules (`only`: just that one) applied to these orders, each at most once
    /// per order and trigger. Statuses go through the status plan; every applied rule writes
    /// a history line naming what matched and what it did.
    async fn apply_rules(
        &mut self,
        account: AccountId,
        targets: &[RuleTarget<'_>],
        only: Option<i64>,
        actor: &HistoryActor,
        now: DateTime<Utc>,
    ) -> sqlx::Result<RuleRunOutcome>;

    async fn repeat_buyers(&mut self, account: AccountId, pks: &[OrderPk]) -> sqlx::Result<HashSet<OrderPk>>;
}

/// What the actions of one order's hits come to.
#[derive(Default)]
struct OrderEffect {
    memo: Vec<String>,
    label: Option<(Option<String>, Option<String>)>,
    clear_date: bool,
}

macro_rules! rule_tx {
    ($conn:ty, $postgres:expr) => {
        impl RuleTx for $conn {
            async fn apply_rules(
                &mut self,
                account: AccountId,
                targets: &[RuleTarget<'_>],
                only: Option<i64>,
                actor: &HistoryActor,
                now: DateTime<Utc>,
            ) -> sqlx::Result<RuleRunOutcome> {
                let mut outcome = RuleRunOutcome::default();
                if targets.is_empty() {
                    return Ok(outcome);
                }
                let sql = format!("{RULE_SELECT} and enabled order by position, id");
                let rows: Vec<RuleRow> = sqlx::query_as(&sql).bind(account).fetch_all(&mut *self).await?;
                let rules: Vec<Rule> = rows
                    .into_iter()
                    .map(RuleRow::into_rule)
                    .filter(|r| only.is_none_or(|id| r.id == id))
                    .collect();
                if rules.is_empty() {
                    return Ok(outcome);
                }
                // What the rules read besides the orders.
                let tags: Vec<(i64, String, bool)> =
                    sqlx::query_as("select id, name, stops_shipping from tag where account_id = $1")
                        .bind(account)
                        .fetch_all(&mut *self)
                        .await?;
                let islands: Vec<String> =
                    sqlx::query_scalar("select postcode from island_postcode where account_id = $1")
                        .bind(account)
                        .fetch_all(&mut *self)
                        .await?;
                let cx = RuleContext {
                    tags: tags.into_iter().map(|(id, n, s)| (id, (n, s))).collect(),
                    islands: islands.into_iter().collect(),
                };
                // The buyer's earlier orders, read only for the orders whose match turns on them.
                let asking: Vec<OrderPk> = targets
                    .iter()
                    .filter(|t| {
                        let facts = RuleFacts { store: t.store, detail: t.detail, repeat_buyer: false };
                        needs_repeat_buyer(&rules, &facts, &cx)
                    })
                    .map(|t| t.pk)
                    .collect();
                let repeat = self.repeat_buyers(account, &asking).await?;
                // What already ran for these triggers. An order that arrives in this transaction
                // has no runs yet, and a run by hand is a trigger of its own: only a change at
                // Yahoo can have been ruled before (a rerun of the same change).
                let changed: Vec<i64> =
                    targets.iter().filter(|t| t.trigger.starts_with("change:")).map(|t| t.pk.0).collect();
                let mut ran: HashSet<(OrderPk, String)> = HashSet::new();
                if !changed.is_empty() {
                    let sql = format!(
                        "select order_pk, rule_trigger from order_history
                         where account_id = $1 and rule_trigger is not null and {}",
                        super::in_ids($postgres, "order_pk", 2)
                    );
                    ran = sqlx::query_as(&sql)
                        .bind(account)
                        .bind(super::ids_value($postgres, changed))
                        .fetch_all(&mut *self)
                        .await?
                        .into_iter()
                        .collect();
                }
                let mut hits: Vec<(&RuleTarget, Hit)> = Vec::new();
                for t in targets.iter().filter(|t| !ran.contains(&(t.pk, t.trigger.clone()))) {
                    let facts = RuleFacts { store: t.store, detail: t.detail, repeat_buyer: repeat.contains(&t.pk) };
                    hits.extend(evaluate(&rules, &facts, &cx).into_iter().map(|hit| (t, hit)));
                }
                if hits.is_empty() {
                    return Ok(outcome);
                }
                // Statuses first, through the plan, in the rules' order (an order set twice
                // is planned again after the first).
                let scope = OrderScope::account(account);
                let asks: Vec<(usize, OrderPk, ChangeRequest)> = hits
                    .iter()
                    .enumerate()
                    .flat_map(|(i, (t, hit))| {
                        hit.rule.spec.actions.iter().filter_map(move |a| match a {
                            Action::SetStatus(s) => InternalStatus::parse(s).map(|to| (i, t.pk, ChangeRequest::to(to))),
                            _ => None,
                        })
                    })
                    .collect();
                let mut status_words: HashMap<usize, Vec<String>> = HashMap::new();
                if !asks.is_empty() {
                    let changes: Vec<(OrderPk, &ChangeRequest)> = asks.iter().map(|(_, pk, r)| (*pk, r)).collect();
                    let results = self.change_orders(&scope, &changes, actor, now).await?;
                    for ((i, _, req), result) in asks.iter().zip(results) {
                        let words = match result {
                            Ok(_) => format!("ステータスを「{}」にしました", req.target.label()),
                            Err(Refusal::FraudHold) => AUTO_CHANGE_REFUSED.to_owned(),
                            Err(e) => format!("ステータスは変更しませんでした（{e}）"),
                        };
                        status_words.entry(*i).or_default().push(words);
                    }
                }
                // Tags, memos and labels, per order, in the rules' order, then written a few
                // statements for the whole batch (not one per order).
                let mut per_order: Vec<(OrderPk, Vec<&Action>)> = Vec::new();
                for (t, hit) in &hits {
                    match per_order.iter_mut().find(|(pk, _)| *pk == t.pk) {
                        Some((_, acts)) => acts.extend(hit.rule.spec.actions.iter()),
                        None => per_order.push((t.pk, hit.rule.spec.actions.iter().collect())),
                    }
                }
                let (actor_type, actor_name) = actor.parts();
                let added_by = if actor_name.is_empty() { "ルール" } else { actor_name };
                let (mut adds, mut removes) = (Vec::new(), Vec::new());
                let mut memos: Vec<(OrderPk, String)> = Vec::new();
                let mut labels: Vec<(OrderPk, Option<String>, Option<String>, bool)> = Vec::new();
                for (pk, acts) in &per_order {
                    let (add, remove) = tag_effect(acts.iter().copied());
                    adds.extend(add.into_iter().map(|tag| (*pk, tag)));
                    removes.extend(remove.into_iter().map(|tag| (*pk, tag)));
                    let mut effect = OrderEffect::default();
                    for a in acts {
                        match a {
                            Action::Memo(m) => effect.memo.push(m.clone()),
                            Action::Label { format, service } => {
                                effect.label = Some((Some(format.clone()), service.clone()))
                            }
                            Action::ClearDeliveryDate => effect.clear_date = true,
                            _ => {}
                        }
                    }
                    if !effect.memo.is_empty() {
                        memos.push((*pk, effect.memo.join("\n")));
                    }
                    if effect.label.is_some() || effect.clear_date {
                        let (format, service) = effect.label.unwrap_or((None, None));
                        let format = format.filter(|f| LabelFormat::parse(f).is_some());
                        labels.push((*pk, format, service, effect.clear_date));
                    }
                }
                // Each kind of write is one statement for the whole batch, its rows bound as one
                // JSON value (`json_rows`): the statement's text does not change with the
                // number of rows.
                use serde_json::json;
                let rows = |n: usize, columns: &[(&str, &str)]| super::json_rows($postgres, n, columns);
                if !adds.is_empty() {
                    // The tags are the account's (read above; a rule naming another is broken
                    // and skipped).
                    let sql = format!(
                        "insert into order_tag (order_pk, tag_id, account_id, added_by, added_at)
                         select v.order_pk, v.tag_id, $1, $2, $3 from {} where true
                         on conflict (order_pk, tag_id) do nothing",
                        rows(4, &[("order_pk", "bigint"), ("tag_id", "bigint")])
                    );
                    let value = super::json_rows_value(adds.iter().map(|(pk, tag)| json!([pk.0, tag])));
                    sqlx::query(&sql).bind(account).bind(added_by).bind(now).bind(value).execute(&mut *self).await?;
                }
                if !removes.is_empty() {
                    let sql = format!(
                        "delete from order_tag where account_id = $1
                           and exists (select 1 from {} where v.order_pk = order_tag.order_pk and v.tag_id = order_tag.tag_id)",
                        rows(2, &[("order_pk", "bigint"), ("tag_id", "bigint")])
                    );
                    let value = super::json_rows_value(removes.iter().map(|(pk, tag)| json!([pk.0, tag])));
                    sqlx::query(&sql).bind(account).bind(value).execute(&mut *self).await?;
                }
                if !memos.is_empty() {
                    let sql = format!(
                        "update yahoo_order set note = case when note = '' then v.memo else note || $3 || v.memo end,
                             updated_at = $2
                         from {} where yahoo_order.account_id = $1 and yahoo_order.id = v.id",
                        rows(4, &[("id", "bigint"), ("memo", "text")])
                    );
                    let value = super::json_rows_value(memos.iter().map(|(pk, memo)| json!([pk.0, memo])));
                    sqlx::query(&sql).bind(account).bind(now).bind("\n").bind(value).execute(&mut *self).await?;
                }
                if !labels.is_empty() {
                    let sql = format!(
                        "insert into order_label (order_pk, account_id, format, service, clear_delivery_date, updated_at)
                         select v.order_pk, $1, v.format, v.service, v.clear, $2 from {} where true
                         on conflict (order_pk) do update set
                             format = coalesce(excluded.format, order_label.format),
                             service = coalesce(excluded.service, order_label.service),
                             clear_delivery_date = order_label.clear_delivery_date or excluded.clear_delivery_date,
                             updated_at = excluded.updated_at",
                        rows(3, &[("order_pk", "bigint"), ("format", "text"), ("service", "text"), ("clear", "boolean")])
                    );
                    let value =
                        super::json_rows_value(labels.iter().map(|(pk, f, sv, clear)| json!([pk.0, f, sv, clear])));
                    sqlx::query(&sql).bind(account).bind(now).bind(value).execute(&mut *self).await?;
                }
                // One 履歴 line per rule applied.
                // One 履歴 entry and one run record per order and trigger, naming each rule
                // applied on a line of its own.
                let mut runs: Vec<(&RuleTarget, Vec<String>)> = Vec::new();
                for (i, (t, hit)) in hits.iter().enumerate() {
                    let mut statuses = status_words.remove(&i).unwrap_or_default().into_iter();
                    let done: Vec<String> = hit
                        .rule
                        .spec
                        .actions
                        .iter()
                        .map(|a| match a {
                            Action::SetStatus(_) => statuses.next().unwrap_or_default(),
                            Action::AddTag(id) => format!(
                                "タグ「{}」を付けました{}",
                                cx.tags.get(id).map_or("", |(n, _)| n.as_str()),
                                if cx.tags.get(id).is_some_and(|(_, s)| *s) { "（出荷止め）" } else { "" }
                            ),
                            Action::RemoveTag(id) => {
                                format!("タグ「{}」を外しました", cx.tags.get(id).map_or("", |(n, _)| n.as_str()))
                            }
                            Action::Memo(m) => format!("社内メモに「{m}」を追記しました"),
                            Action::Label { format, service } => {
                                let f = LabelFormat::parse(format).map_or(format.as_str(), |f| f.label());
                                match service.as_deref().filter(|s| !s.is_empty()) {
                                    Some(s) => format!("送り状を {f}（サービス {s}）にしました"),
                                    None => format!("送り状を {f} にしました"),
                                }
                            }
                            Action::ClearDeliveryDate => "送り状のお届け希望日を空にしました".to_owned(),
                        })
                        .collect();
                    let line = history_line(hit, &done);
                    match runs.last_mut().filter(|(last, _)| last.pk == t.pk) {
                        Some((_, lines)) => lines.push(line),
                        None => runs.push((t, vec![line])),
                    }
                }
                let sql = format!(
                    "insert into order_history (account_id, order_pk, actor_type, actor, kind, message, created_at,
                         rule_trigger)
                     select $1, v.order_pk, $2, $3, 'rule', v.message, $4, v.rule_trigger from {} where true
                     on conflict (order_pk, rule_trigger) where rule_trigger is not null do nothing",
                    rows(5, &[("order_pk", "bigint"), ("message", "text"), ("rule_trigger", "text")])
                );
                let value = super::json_rows_value(
                    runs.iter().map(|(t, lines)| json!([t.pk.0, lines.join("\n"), t.trigger])),
                );
                sqlx::query(&sql)
                    .bind(account)
                    .bind(actor_type)
                    .bind(actor_name)
                    .bind(now)
                    .bind(value)
                    .execute(&mut *self)
                    .await?;
                outcome.applied = hits.len();
                outcome.orders = per_order.len();
                Ok(outcome)
            }

            async fn repeat_buyers(&mut self, account: AccountId, pks: &[OrderPk]) -> sqlx::Result<HashSet<OrderPk>> {
                if pks.is_empty() {
                    return Ok(HashSet::new());
                }
                let sql = format!(
                    "select o.id from yahoo_order o where o.account_id = $1 and {}
                       and (exists (select 1 from yahoo_order p where p.account_id = o.account_id
                                      and o.bill_mail <> '' and p.bill_mail = o.bill_mail and p.id <> o.id
                                      and (p.order_time < o.order_time or (p.order_time = o.order_time and p.id < o.id)))
                         or exists (select 1 from yahoo_order p where p.account_id = o.account_id
                                      and o.bill_phone <> '' and o.bill_phone not like '%*%' and p.bill_phone = o.bill_phone and p.id <> o.id
                                      and (p.order_time < o.order_time or (p.order_time = o.order_time and p.id < o.id))))",
                    super::in_ids($postgres, "o.id", 2)
                );
                let found: Vec<OrderPk> = sqlx::query_scalar(&sql)
                    .bind(account)
                    .bind(super::ids_value($postgres, pks.iter().map(|p| p.0)))
                    .fetch_all(&mut *self)
                    .await?;
                Ok(found.into_iter().collect())
            }
        }
    };
}

rule_tx!(sqlx::SqliteConnection, false);
rule_tx!(sqlx::PgConnection, true);

/// Runs the account's rules (`only`: one of them) by hand on chosen orders in the reader's
/// scope, as one trigger (`manual:<run>`), in one transaction.
pub async fn run_on_orders(
    db: &Db,
    scope: &OrderScope,
    pks: &[OrderPk],
    only: Option<i64>,
    actor: &HistoryActor,
    now: DateTime<Utc>,
) -> sqlx::Result<RuleRunOutcome> {
    let rows: Vec<_> =
        super::orders::rows(db, scope.account, pks).await?.into_iter().filter(|r| scope.allows(r.store_id)).collect();
    let ids: Vec<OrderPk> = rows.iter().map(|r| r.id).collect();
    let mut items = super::orders::items_of(db, &ids).await?;
    let details: Vec<(OrderPk, StoreId, OrderDetail)> =
        rows.iter().map(|r| (r.id, r.store_id, r.to_detail(items.remove(&r.id).unwrap_or_default(), ""))).collect();
    let trigger = format!("manual:{}", now.timestamp_micros());
    let targets: Vec<RuleTarget> = details
        .iter()
        .map(|(pk, store, d)| RuleTarget { pk: *pk, store: *store, detail: d, trigger: trigger.clone() })
        .collect();
    with_pool!(db, |p| {
        let mut tx = p.begin().await?;
        let out = tx.apply_rules(scope.account, &targets, only, actor, now).await?;
        tx.commit().await?;
        Ok(out)
    })
}

/// One order of a preview: what would match and what would change.
#[derive(Clone, Debug)]
pub struct PreviewRow {
    pub pk: OrderPk,
    pub order_id: String,
    pub store_id: StoreId,
    pub reasons: Vec<String>,
    /// What the rule would do to it (a held order's status says it stays).
    pub changes: Vec<String>,
}

/// A rule (not yet saved) run against the newest `n` orders of the reader's scope: the orders
/// it would match, of how many looked at. Nothing is written.
pub async fn preview(db: &Db, scope: &OrderScope, rule: &Rule, n: i64) -> sqlx::Result<(Vec<PreviewRow>, usize)> {
    let scoped = scope.stores.as_ref().map_or(0, Vec::len);
    let sql = format!(
        "select o.id from yahoo_order o where o.account_id = $1{} order by o.order_time desc, o.id desc limit ${}",
        super::scope_condition(scope, "o.store_id", 2),
        2 + scoped
    );
    let ids: Vec<i64> = with_pool!(db, |p| {
        let mut q = sqlx::query_scalar::<_, i64>(&sql).bind(scope.account);
        for s in scope.stores.iter().flatten() {
            q = q.bind(*s);
        }
        q.bind(n).fetch_all(p).await
    })?;
    let pks: Vec<OrderPk> = ids.into_iter().map(OrderPk).collect();
    let mut rows = super::orders::rows(db, scope.account, &pks).await?;
    rows.sort_by_key(|r| std::cmp::Reverse((r.order_time, r.id)));
    let mut items = super::orders::items_of(db, &pks).await?;
    let cx = context(db, scope.account).await?;
    let repeat =
        if rule.spec.uses_repeat_buyer() { repeat_buyers(db, scope.account, &pks).await? } else { HashSet::new() };
    let rules = [Rule { enabled: true, stop_after: false, ..rule.clone() }];
    let mut out = Vec::new();
    for r in &rows {
        let d = r.to_detail(items.remove(&r.id).unwrap_or_default(), "");
        let facts = RuleFacts { store: r.store_id, detail: &d, repeat_buyer: repeat.contains(&r.id) };
        let Some(hit) = evaluate(&rules, &facts, &cx).into_iter().next() else { continue };
        let changes = hit
            .rule
            .spec
            .actions
            .iter()
            .map(|a| match a {
                Action::SetStatus(_) if r.fraud_hold().is_held() => AUTO_CHANGE_REFUSED.to_owned(),
                _ => a.describe(&cx),
            })
            .collect();
        out.push(PreviewRow {
            pk: r.id,
            order_id: r.order_id.clone(),
            store_id: r.store_id,
            reasons: hit.reasons,
            changes,
        });
    }
    Ok((out, rows.len()))
}

/// Rules that name a deleted tag (broken: skipped until mended), with the dashboard's words.
pub async fn broken(db: &Db, account: AccountId) -> sqlx::Result<Vec<Rule>> {
    let cx = context(db, account).await?;
    Ok(list(db, account).await?.into_iter().filter(|r| r.enabled && r.is_broken(&cx)).collect())
}
