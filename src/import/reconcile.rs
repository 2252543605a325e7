//! Reconciliation (照合): for a period, what Yahoo's orderList reports by PublicationTime beside
//! what we hold, the order IDs that differ, and an import of exactly the missing ones (run as a
//! queued job of its own, so several processes never import a store twice at once).

use std::collections::BTreeSet;

use super::{Importer, Window};
use crate::{
    db::orders,
    domain::{AccountId, StoreId},
    yahoo::{
        api::{self, OrderListQuery, SearchBy},
        client::Body,
        error::YahooError,
    },
};

/// The longest period one comparison covers (it runs while a person waits).
pub const MAX_DAYS: i64 = 31;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Comparison {
    /// orderList's TotalCount for the period.
    pub yahoo_total: u64,
    pub ours_total: usize,
    /// At Yahoo, not here.
    pub missing: Vec<String>,
    /// Here with a publication time in the period, not in Yahoo's answer (held in strict
    /// mode, or published again later).
    pub extra: Vec<String>,
}

impl Importer {
    /// Every order ID Yahoo lists for the period (held ones included where Yahoo shows them).
    pub async fn yahoo_ids(
        &self,
        account: AccountId,
        store: StoreId,
        seller_id: &str,
        window: Window,
    ) -> Result<(u64, BTreeSet<String>), YahooError> {
        let mut ids = BTreeSet::new();
        let mut start = 1u32;
        loop {
            let query = OrderListQuery {
                by: SearchBy::Publication,
                from: window.0,
                to: window.1,
                start,
                result: self.settings.page_size,
                include_held: true,
            };
            let root = self.yahoo.call(account, store, "orderList", Body::Xml(query.to_xml(seller_id))).await?;
            let page = api::parse_order_list(&root)?;
            let n = page.orders.len() as u32;
            ids.extend(page.orders.into_iter().map(|o| o.order_id));
            if n == 0 || u64::from(start) + u64::from(n) > page.total {
                return Ok((page.total, ids));
            }
            start += n;
        }
    }

    /// Yahoo's orders of the period beside ours.
    pub async fn compare(
        &self,
        account: AccountId,
        store: StoreId,
        seller_id: &str,
        window: Window,
    ) -> Result<Comparison, CompareError> {
        let (yahoo_total, theirs) = self.yahoo_ids(account, store, seller_id, window).await?;
        let ours: BTreeSet<String> =
            orders::ids_published_between(&self.db, account, store, window.0, window.1).await?.into_iter().collect();
        Ok(Comparison {
            yahoo_total,
            ours_total: ours.len(),
            missing: theirs.difference(&ours).cloned().collect(),
            extra: ours.difference(&theirs).cloned().collect(),
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    #[error(transparent)]
    Yahoo(#[from] YahooError),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}
