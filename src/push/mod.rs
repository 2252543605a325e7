//! The drainer of the outbox (product.md §6): every `serve` process with the scheduler runs one
//! beside the import scheduler. It claims due pushes under a lease (`db::outbox::claim`), sends
//! each through the Yahoo client and settles it:
//!
//! - Yahoo says OK: done, with a history line naming what Yahoo was told and its warnings;
//! - Yahoo refuses (Status NG, an error code): failed, Yahoo's message in the history and on the
//!   push, never dropped; the rest of its change (a ship status after its status) fails with it;
//! - a temporary failure (network, 5xx, throttled): tried again with exponential backoff;
//! - authentication fails: waits (the store page diagnoses it) and goes on once it works;
//! - 緊急停止 of the store or account: nothing is claimed until it is resumed.
//!
//! A push tried before (its answer lost, or its lease run out mid-call because its process
//! died) may have reached Yahoo: before sending it again the drainer reads the order
//! (orderInfo) and, when Yahoo already shows exactly what the push says, records it as done
//! without a second call, so a change is made at Yahoo once. (The client does not retry a lost
//! answer of a change call itself; see `yahoo::client::changes_an_order`.) A refusal is also
//! checked against orderInfo: a cancel answered `Cannot Be Operated` because the order is
//! cancelled counts as done.

use std::{sync::Arc, time::Duration};

use crate::{
    config::Config,
    db::{
        self, Db, imports,
        lease::Leased,
        outbox::{self, Outcome, PushRow},
    },
    domain::order::FraudHoldStatus,
    domain::{jst, status::Push},
    jobs::{Lease, LeaseLost, ProcessId},
    yahoo::{
        YahooClient,
        api::{self, Warning},
        client::Body,
        error::YahooError,
    },
};

#[derive(Clone, Debug)]
pub struct PushSettings {
    /// A claim lasts this long without renewal; a dead process's pushes are retried after it.
    pub lease_ttl: Duration,
    /// First pause after a temporary failure; doubles with each attempt up to `retry_max`.
    pub retry_base: Duration,
    pub retry_max: Duration,
    /// Pause after an authentication failure before trying again.
    pub auth_wait: Duration,
    /// Pushes claimed (and sent at once, one per order) per round.
    pub batch: i64,
}

impl PushSettings {
    pub fn from_config(config: &Config) -> PushSettings {
        PushSettings {
            lease_ttl: Duration::from_secs(config.import_lease_secs.max(1)),
            // The client already retried a few times within the call; the outbox waits longer.
            retry_base: Duration::from_millis(config.yahoo_backoff_ms.max(1) * 20),
            retry_max: Duration::from_secs(1800),
            auth_wait: Duration::from_secs(60),
            batch: 8,
        }
    }
}

pub struct Pusher {
    db: Db,
    yahoo: Arc<YahooClient>,
    owner: ProcessId,
    settings: PushSettings,
}

/// Where the order is sent: the store's seller ID and Yahoo's order ID.
#[derive(sqlx::FromRow)]
struct Target {
    seller_id: String,
    order_id: String,
    /// The order's fraud-hold status and 出荷止め tag as they stand now: a ship push queued
    /// before the order was held or tagged does not go.
    fraud_hold_status: i64,
    stop_tag: Option<String>,
}

impl Pusher {
    pub fn new(db: Db, yahoo: Arc<YahooClient>, owner: ProcessId, settings: PushSettings) -> Pusher {
        Pusher { db, yahoo, owner, settings }
    }

    pub fn owner(&self) -> &str {
        self.owner.as_str()
    }

    /// Sends every push due now, round after round (an order's next push becomes due when its
    /// previous one is done). Returns how many pushes were settled or rescheduled.
    pub async fn drain(&self) -> sqlx::Result<usize> {
        let mut handled = 0;
        loop {
            let now = db::now();
            let until = now + chrono::Duration::from_std(self.settings.lease_ttl).unwrap_or_default();
            let claimed = outbox::claim(&self.db, self.owner(), now, until, self.settings.batch).await?;
            if claimed.is_empty() {
                return Ok(handled);
            }
            handled += claimed.len();
            // Each push's log lines carry the request that asked for it (its 受付番号).
            let results = futures_util::future::join_all(claimed.into_iter().map(|row| {
                let span =
                    tracing::info_span!("push", push = row.id.0, request = row.request_id.as_deref().unwrap_or(""));
                tracing::Instrument::instrument(self.send(row), span)
            }))
            .await;
            for r in results {
                r?;
            }
        }
    }

    /// Sends one claimed push and settles it.
    async fn send(&self, row: PushRow) -> sqlx::Result<()> {
        let Some(push) = row.push() else {
            let outcome = Outcome::Failed { message: "この送信内容を読み取れません".into() };
            outbox::finish(
                &self.db,
                &row,
                self.owner(),
                &outcome,
                "Yahoo!への送信を中止しました（内容を読み取れません）",
                db::now(),
            )
            .await?;
            return Ok(());
        };
        let target: Option<Target> = crate::with_pool!(&self.db, |p| {
            sqlx::query_as(concat!(
                "select s.seller_id, o.order_id, o.fraud_hold_status, ",
                crate::db::tags::stop_tag_of_o!(),
                " as stop_tag from yahoo_order o
                 join store s on s.id = o.store_id and s.account_id = o.account_id
                 where o.account_id = $1 and o.id = $2"
            ))
            .bind(row.account_id)
            .bind(row.order_pk)
            .fetch_optional(p)
            .await
        })?;
        let Some(target) = target else {
            let outcome = Outcome::Failed { message: "注文が見つかりません".into() };
            outbox::finish(
                &self.db,
                &row,
                self.owner(),
                &outcome,
                "Yahoo!への送信を中止しました（注文が見つかりません）",
                db::now(),
            )
            .await?;
            return Ok(());
        };
        // The gate once more, at the last moment: an order held or tagged 出荷止め since its
        // number was set keeps its ship push here (a person may send it again later).
        if let Push::Ship { .. } = &push {
            // An unknown code is treated as held: the safe side of the rule.
            let hold = FraudHoldStatus::from_code(Some(u8::try_from(target.fraud_hold_status).unwrap_or(u8::MAX)));
            let why = if hold.is_none_or(FraudHoldStatus::is_held) {
                Some(crate::domain::shipping::Exclusion::FraudHold.to_string())
            } else {
                target.stop_tag.clone().map(|tag| crate::domain::shipping::Exclusion::StopTag(tag).to_string())
            };
            if let Some(why) = why {
                let history = format!("Yahoo!への出荷連絡を送りませんでした: {why}");
                outbox::finish(&self.db, &row, self.owner(), &Outcome::Failed { message: why }, &history, db::now())
                    .await?;
                return Ok(());
            }
        }
        let (api, xml) = match &push {
            Push::Status { status, cancel_reason } => (
                "orderStatusChange",
                api::status_change_xml(
                    &target.seller_id,
                    &target.order_id,
                    status.code(),
                    *cancel_reason,
                    &row.operator,
                ),
            ),
            Push::Ship { ship_status, company_code, invoice_number, ship_date, ship_url } => (
                "orderShipStatusChange",
                api::ship_change_xml(
                    &target.seller_id,
                    &target.order_id,
                    *ship_status,
                    company_code,
                    invoice_number,
                    Some(*ship_date),
                    ship_url,
                ),
            ),
        };
        let label = push.label();
        // An earlier attempt may have reached Yahoo (its answer lost, or its process killed
        // while it waited): read the order first, and do not send what Yahoo has already.
        if row.attempts > 1 {
            let Ok(applied) = self.with_lease(&row, self.already_applied(&row, &target, &push)).await else {
                return Ok(());
            };
            match applied {
                Ok(true) => {
                    let history = format!("Yahoo!ではすでに反映済みでした（前回の送信が届いていました）: {label}");
                    let outcome = Outcome::Done {
                        message: "前回の送信が届いていたため、再送しませんでした".into()
                    };
                    outbox::finish(&self.db, &row, self.owner(), &outcome, &history, db::now()).await?;
                    self.yahoo.flush_calls().await;
                    return Ok(());
                }
                Ok(false) => {}
                // Not known yet whether the earlier try arrived: ask again later (an
                // authentication problem waits for people, as a send does).
                Err(e) if e.is_temporary() || waits_for_people(&e) => {
                    let now = db::now();
                    if e.is_auth_problem() {
                        imports::set_blocked(&self.db, row.account_id, row.store_id, e.auth_code(), now).await?;
                    }
                    let wait = if waits_for_people(&e) {
                        chrono::Duration::from_std(self.settings.auth_wait).unwrap_or_default()
                    } else {
                        self.backoff(row.attempts)
                    };
                    let at = now + wait;
                    let message = format!(
                        "前回の送信がYahoo!に届いたか確認できませんでした: {}（{}に確認します）",
                        e.message_ja(),
                        jst::format_response(at)
                    );
                    outbox::reschedule(&self.db, row.id, self.owner(), at, &message, now).await?;
                    self.yahoo.flush_calls().await;
                    return Ok(());
                }
                // orderInfo refused for good (the order is gone, the answer unreadable): the
                // change itself is sent, and Yahoo's answer to it settles the push.
                Err(e) => {
                    tracing::info!(push = row.id.0, error = %e, "reading the order before a re-send failed; sending")
                }
            }
        }
        let answer = self
            .with_lease(&row, async { self.yahoo.call(row.account_id, row.store_id, api, Body::Xml(xml)).await })
            .await;
        let Ok(answer) = answer else { return Ok(()) };
        let answer = answer.and_then(|root| api::parse_change(&root));
        let now = db::now();
        match answer {
            Ok(warnings) => {
                let message = warnings_text(&warnings);
                let history = with_note(format!("Yahoo!に送信しました: {label}"), &message);
                outbox::finish(&self.db, &row, self.owner(), &Outcome::Done { message }, &history, now).await?;
            }
            Err(e) if e.is_temporary() => {
                let at = now + self.backoff(row.attempts);
                let message =
                    format!("{}（{}回目、{}に再送します）", e.message_ja(), row.attempts, jst::format_response(at));
                outbox::reschedule(&self.db, row.id, self.owner(), at, &message, now).await?;
            }
            Err(e) if waits_for_people(&e) => {
                // As an import does: the store waits (imports and pushes) until someone acts.
                if e.is_auth_problem() {
                    imports::set_blocked(&self.db, row.account_id, row.store_id, e.auth_code(), now).await?;
                }
                let at = now + chrono::Duration::from_std(self.settings.auth_wait).unwrap_or_default();
                let message = format!("{}（認証が直るまで送信を待っています）", e.message_ja());
                outbox::reschedule(&self.db, row.id, self.owner(), at, &message, now).await?;
            }
            Err(refusal) => {
                // Yahoo may refuse because it has this already (a retry after a lost answer).
                let Ok(check) = self.with_lease(&row, self.already_there(&row, &target, &push)).await else {
                    return Ok(());
                };
                match check {
                    Ok(true) => {
                        let history = format!("Yahoo!ではすでに反映済みでした: {label}");
                        let outcome = Outcome::Done { message: String::new() };
                        outbox::finish(&self.db, &row, self.owner(), &outcome, &history, now).await?;
                    }
                    Ok(false) => {
                        let message = refusal.message_ja();
                        let history = format!("Yahoo!が送信を受け付けませんでした: {label}。{message}");
                        outbox::finish(&self.db, &row, self.owner(), &Outcome::Failed { message }, &history, now)
                            .await?;
                    }
                    // Not known whether Yahoo has it: ask again later.
                    Err(e) => {
                        let at = now + self.backoff(row.attempts);
                        let message = format!("{}（確認できなかったため再送します）", refusal.message_ja());
                        tracing::info!(push = row.id.0, error = %e, "checking a refused push failed");
                        outbox::reschedule(&self.db, row.id, self.owner(), at, &message, now).await?;
                    }
                }
            }
        }
        // Today's calls: the client counted each one it sent (retries included).
        self.yahoo.flush_calls().await;
        Ok(())
    }

    /// Whether Yahoo already shows what the push says (orderInfo).
    async fn already_there(&self, row: &PushRow, target: &Target, push: &Push) -> Result<bool, YahooError> {
        let xml = api::order_info_xml(&target.seller_id, &target.order_id);
        let root = self.yahoo.call(row.account_id, row.store_id, "orderInfo", Body::Xml(xml)).await?;
        let detail = api::parse_order_info(&root)?;
        Ok(match push {
            Push::Status { status, .. } => detail.order_status == status.code(),
            Push::Ship { ship_status, .. } => detail.ship_status.is_some_and(|s| s >= *ship_status),
        })
    }

    /// Whether Yahoo shows exactly what the push says: its status, or its ship status with
    /// the same company and invoice number (orderInfo).
    async fn already_applied(&self, row: &PushRow, target: &Target, push: &Push) -> Result<bool, YahooError> {
        let xml = api::order_info_xml(&target.seller_id, &target.order_id);
        let root = self.yahoo.call(row.account_id, row.store_id, "orderInfo", Body::Xml(xml)).await?;
        let detail = api::parse_order_info(&root)?;
        Ok(match push {
            // 処理中 also marks Yahoo's 新規受付 as seen: until it is, the push is not there.
            Push::Status { status, .. } => detail.order_status == status.code() && detail.is_seen != Some(false),
            Push::Ship { ship_status, company_code, invoice_number, ship_date, .. } => {
                detail.ship_status == Some(*ship_status)
                    && (company_code.is_empty() || detail.ship_company_code == *company_code)
                    && (invoice_number.is_empty() || detail.ship_invoice_number1 == *invoice_number)
                    && detail.ship_date.is_none_or(|d| d == *ship_date)
            }
        })
    }

    /// Runs `call` while renewing the push's lease, so a slow Yahoo does not hand it to
    /// another process mid-call.
    /// Runs `call` while renewing the push's lease; `Err` when another process took the push
    /// over meanwhile (its lease ran out): then this one settles nothing.
    async fn with_lease<T>(&self, row: &PushRow, call: impl std::future::Future<Output = T>) -> Result<T, LeaseLost> {
        Lease::new(&self.db, Leased::Push, row.id.0, &self.owner, self.settings.lease_ttl).hold(call).await
    }

    fn backoff(&self, attempts: i64) -> chrono::Duration {
        let exp = u32::try_from(attempts.saturating_sub(1)).unwrap_or(u32::MAX).min(16);
        let wait = self.settings.retry_base.saturating_mul(2u32.saturating_pow(exp)).min(self.settings.retry_max);
        chrono::Duration::from_std(wait).unwrap_or_default()
    }
}

/// The drainer runs wherever imports are scheduled, on the same tick.
impl crate::jobs::Job for Arc<Pusher> {
    const NAME: &'static str = "push drainer";

    async fn tick(&mut self) -> Result<(), String> {
        self.drain().await.map(|_| ()).map_err(|e| e.to_string())
    }
}

/// Failures a person must fix (authentication, connection, settings): the push waits for them.
fn waits_for_people(e: &YahooError) -> bool {
    e.is_auth_problem()
        || matches!(e, YahooError::NotConnected | YahooError::NotConfigured(_) | YahooError::TokenExpired)
}

/// Yahoo's warnings as the merchant reads them: 「警告 W001: …」.
fn warnings_text(warnings: &[Warning]) -> String {
    warnings
        .iter()
        .map(|w| {
            if w.code.is_empty() {
                format!("警告: {}", w.message)
            } else {
                format!("警告 {}: {}", w.code, w.message)
            }
        })
        .collect::<Vec<_>>()
        .join(" / ")
}

fn with_note(line: String, note: &str) -> String {
    if note.is_empty() { line } else { format!("{line}（{note}）") }
}
