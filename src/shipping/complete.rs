//! 出荷後の自動完了 (issue 33): a store may have its shipped, paid orders completed at Yahoo
//! (OrderStatus 5 with IsPointFix, which fixes the buyer's points and bills card orders) some
//! days after their first tracking number. Off by default: Yahoo then leaves them at
//! 注文完了待ち, and the merchant completes them in Store Creator Pro.
//!
//! Each due order goes through the one status plan (`db::changes`), so a held order is never
//! completed and two `serve` processes never queue the same completion twice: the second reads
//! 完了 and is refused as unchanged.

use chrono::{DateTime, Utc};

use crate::{
    db::{Db, changes, orders::HistoryActor, shipping as store},
    domain::{scope::OrderScope, status::ChangeRequest, store::InternalStatus},
};

/// Orders completed per store per pass; the rest wait for the next pass.
const PER_PASS: i64 = 500;

/// Completes the orders that are due in every store that asks for it; how many were completed.
pub async fn complete_due(db: &Db, now: DateTime<Utc>) -> sqlx::Result<usize> {
    let mut completed = 0;
    for (account, store_id, days) in store::completing_stores(db).await? {
        let shipped_by = now - chrono::Duration::days(days);
        let due = store::due_to_complete(db, account, store_id, shipped_by, PER_PASS).await?;
        if due.is_empty() {
            continue;
        }
        let req = ChangeRequest::to(InternalStatus::Completed);
        let changes: Vec<_> = due.into_iter().map(|pk| (pk, req.clone())).collect();
        let scope = OrderScope::account(account);
        let outcomes = changes::change_statuses(db, &scope, &changes, &HistoryActor::Job, now).await?;
        completed += outcomes.iter().filter(|o| o.is_ok()).count();
    }
    Ok(completed)
}

/// The background job: a pass every interval.
#[derive(Clone)]
pub struct CompleteJob {
    pub db: Db,
}

impl crate::jobs::Job for CompleteJob {
    const NAME: &'static str = "complete job";

    async fn tick(&mut self) -> Result<(), String> {
        complete_due(&self.db, crate::db::now()).await.map(drop).map_err(|e| e.to_string())
    }
}
