//! 在庫連動 (product.md §8, yahoo-store-api.md §5): the background work of every `serve`
//! process. Each tick it
//! 1. takes the order events the database triggers recorded (an order takes its items' stock,
//!    a cancellation gives it back), each exactly once, in its own transaction;
//! 2. pushes the pending values to each store with 在庫連動 on: setStock with up to 1,000 codes a
//!    call, absolute quantities (a repeated push is harmless), under a lease per store so that
//!    several processes never push one store at once, skipping stores under 緊急停止.
//!
//! A process killed anywhere leaves either an untaken event (taken next time) or a pending push
//! (sent next time, the same value): nothing is counted twice.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};

use crate::{
    db::{self, Db, lease::Leased, stock},
    domain::{AccountId, StoreId, stock::CODES_PER_CALL},
    jobs::{Lease, LeaseLost, ProcessId},
    yahoo::{
        YahooClient,
        api::{StockLine, parse_stock},
        client::Body,
        error::YahooError,
    },
};

/// How the stock job behaves (from the configuration; tests shorten the backoff).
#[derive(Clone, Debug)]
pub struct StockSettings {
    pub lease_ttl: Duration,
    /// First retry after this; doubles per attempt up to an hour.
    pub backoff: Duration,
}

impl StockSettings {
    /// The import's lease time; the first retry after 100 × the Yahoo client's backoff
    /// (10 s by default, a second in tests).
    pub fn from_config(config: &crate::config::Config) -> StockSettings {
        StockSettings {
            lease_ttl: Duration::from_secs(config.import_lease_secs.max(3)),
            backoff: Duration::from_millis(config.yahoo_backoff_ms.max(1) * 100),
        }
    }
}

pub struct StockSync {
    db: Db,
    yahoo: Arc<YahooClient>,
    owner: ProcessId,
    pub settings: StockSettings,
}

/// What one tick did (for tests and logs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tick {
    pub events: usize,
    pub calls: usize,
    pub pushed: usize,
    pub failed: usize,
}

impl StockSync {
    pub fn new(db: Db, yahoo: Arc<YahooClient>, owner: ProcessId, settings: StockSettings) -> StockSync {
        StockSync { db, yahoo, owner, settings }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// One pass: events first (so a push carries the newest value), then pushes.
    pub async fn tick(&self) -> sqlx::Result<Tick> {
        let mut done = Tick { events: self.apply_events().await?, ..Tick::default() };
        let now = db::now();
        // Stores concurrently: each has its own app and so its own rate limit at Yahoo.
        let due = stock::due_stores(&self.db, now, 20).await?;
        let results =
            futures_util::future::join_all(due.iter().map(|d| self.push_store(d.account_id, d.store_id))).await;
        for t in results {
            let t = t?;
            done.calls += t.calls;
            done.pushed += t.pushed;
            done.failed += t.failed;
        }
        Ok(done)
    }

    /// Takes every pending order event (in batches), each in its own transaction.
    pub async fn apply_events(&self) -> sqlx::Result<usize> {
        let mut taken = 0;
        loop {
            let events = stock::pending_events(&self.db, 500).await?;
            let mut progressed = false;
            for e in &events {
                if stock::apply_event(&self.db, e, db::now()).await? {
                    taken += 1;
                    progressed = true;
                }
            }
            if events.len() < 500 || !progressed {
                return Ok(taken);
            }
        }
    }

    fn retry_at(&self, attempts: i64, now: DateTime<Utc>) -> DateTime<Utc> {
        let factor = 2u32.saturating_pow(u32::try_from(attempts.clamp(0, 16)).unwrap_or(16));
        let wait = (self.settings.backoff * factor).min(Duration::from_secs(3600));
        now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::seconds(3600))
    }

    /// Pushes one store's due values under its lease (renewed while the calls go on; they stop
    /// if another process takes the store over), 1,000 codes a call.
    pub async fn push_store(&self, account: AccountId, store: StoreId) -> sqlx::Result<Tick> {
        let lease = Lease::new(&self.db, Leased::StoreStock, store.0, &self.owner, self.settings.lease_ttl);
        if !lease.acquire().await? {
            return Ok(Tick::default());
        }
        let done = lease.hold(self.push_held(account, store)).await;
        lease.release().await?;
        done.unwrap_or_else(|LeaseLost| Ok(Tick::default()))
    }

    async fn push_held(&self, account: AccountId, store: StoreId) -> sqlx::Result<Tick> {
        let mut done = Tick::default();
        let Some(seller) = crate::db::stores::get(&self.db, account, store).await?.map(|s| s.seller_id) else {
            return Ok(done);
        };
        loop {
            let now = db::now();
            let batch = stock::due_pushes(&self.db, store, now, CODES_PER_CALL as i64).await?;
            if batch.is_empty() {
                break;
            }
            let codes: Vec<&str> = batch.iter().map(|p| p.code.as_str()).collect();
            let quantities: Vec<String> = batch.iter().map(|p| p.quantity.max(0).to_string()).collect();
            let form = vec![
                ("seller_id".to_owned(), seller.clone()),
                ("item_code".to_owned(), codes.join(",")),
                ("quantity".to_owned(), quantities.join(",")),
            ];
            done.calls += 1;
            let versions = |pred: &dyn Fn(&str) -> bool| -> Vec<(String, i64)> {
                batch.iter().filter(|p| pred(&p.code)).map(|p| (p.code.clone(), p.version)).collect()
            };
            let attempts = batch.iter().map(|p| p.attempts).max().unwrap_or(0);
            match self
                .yahoo
                .call(account, store, "setStock", Body::Form(form))
                .await
                .and_then(|root| parse_stock(&root))
            {
                Ok(lines) => {
                    let refused: Vec<&StockLine> = lines.iter().filter(|l| l.error_code.is_some()).collect();
                    let is_refused = |code: &str| {
                        refused.iter().any(|l| {
                            let c = if l.sub_code.is_empty() {
                                l.item_code.clone()
                            } else {
                                format!("{}:{}", l.item_code, l.sub_code)
                            };
                            c == code
                        })
                    };
                    let ok = versions(&|c| !is_refused(c));
                    done.pushed += ok.len();
                    stock::pushed(&self.db, store, &ok).await?;
                    for line in refused {
                        let code = if line.sub_code.is_empty() {
                            line.item_code.clone()
                        } else {
                            format!("{}:{}", line.item_code, line.sub_code)
                        };
                        let item = versions(&|c| c == code);
                        let error = line.error_code.clone().unwrap_or_default();
                        let message = format!("Yahoo!が在庫数を受け付けませんでした（{error}）");
                        done.failed += item.len();
                        stock::push_failed(
                            &self.db,
                            store,
                            &item,
                            true,
                            Some(&error),
                            &message,
                            self.retry_at(attempts, now),
                            now,
                        )
                        .await?;
                    }
                }
                Err(e) => {
                    let all = versions(&|_| true);
                    let (failed, message) = describe(&e);
                    tracing::warn!(store = store.0, error = %e, "setStock failed");
                    done.failed += all.len();
                    stock::push_failed(
                        &self.db,
                        store,
                        &all,
                        failed,
                        error_code(&e).as_deref(),
                        &message,
                        self.retry_at(attempts, now),
                        now,
                    )
                    .await?;
                    break;
                }
            }
        }
        Ok(done)
    }

    /// Reads the quantities of `store` with getStock (1,000 codes a call) for the codes the
    /// account knows (its stock and the store's orders) and sets the account's stock to them.
    /// Returns (codes asked, codes found and set).
    pub async fn pull(&self, account: AccountId, store: StoreId, actor: &str) -> Result<(usize, usize), PullError> {
        let seller = crate::db::stores::get(&self.db, account, store).await?.ok_or(PullError::NotFound)?.seller_id;
        let codes = stock::codes_for_pull(&self.db, account, store).await?;
        let mut found = Vec::new();
        for chunk in codes.chunks(CODES_PER_CALL) {
            let form = vec![("seller_id".to_owned(), seller.clone()), ("item_code".to_owned(), chunk.join(","))];
            let root = self.yahoo.call(account, store, "getStock", Body::Form(form)).await?;
            for line in parse_stock(&root)? {
                if let (true, Some(q)) = (line.found, line.quantity) {
                    let code = if line.sub_code.is_empty() {
                        line.item_code
                    } else {
                        format!("{}:{}", line.item_code, line.sub_code)
                    };
                    found.push((code, q));
                }
            }
        }
        stock::set_many(&self.db, account, &found, stock::Cause::Pull, Some(store), actor, db::now()).await?;
        Ok((codes.len(), found.len()))
    }
}

/// Whether a failed call marks its items as refused (shown as 失敗) or only waiting, and the
/// message the stock page shows.
fn describe(e: &YahooError) -> (bool, String) {
    if e.is_temporary() || matches!(e, YahooError::Throttled) {
        (false, "Yahoo!に接続できませんでした。自動で再送します".into())
    } else if e.is_auth_problem() {
        (true, "Yahoo!の認証に問題があります。ストアのページで連携を確認してください（直ると自動で再送します）".into())
    } else {
        (true, format!("Yahoo!が在庫の更新を受け付けませんでした: {e}"))
    }
}

/// Yahoo's code for a refusal, when it gave one.
fn error_code(e: &YahooError) -> Option<String> {
    match e {
        YahooError::Api { code, .. } => code.clone(),
        other => other.auth_code().map(str::to_owned),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error("store not found")]
    NotFound,
    #[error(transparent)]
    Yahoo(#[from] YahooError),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

impl crate::jobs::Job for Arc<StockSync> {
    const NAME: &'static str = "stock job";

    async fn tick(&mut self) -> Result<(), String> {
        StockSync::tick(self).await.map(|_| ()).map_err(|e| e.to_string())
    }
}
