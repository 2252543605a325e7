//! 注文再取込: fetch one order again, show what differs field by field, and apply it on
//! confirmation, keeping the merchant's own fields (internal status, notes). Works for an order
//! ID typed by hand that was never imported. Each apply is recorded as a run.

use super::{Importer, rules};
use crate::{
    db::{
        self,
        imports::{self, Progress, Trigger},
        orders::{self, HistoryActor, HistoryLine, OrderRow, OrderWrite},
    },
    domain::{AccountId, StoreId},
    yahoo::{
        api::{self, OrderDetail, OrderItem},
        client::Body,
        error::YahooError,
    },
};

/// What Yahoo has now beside what we hold.
#[derive(Clone, Debug)]
pub struct Preview {
    pub detail: OrderDetail,
    pub stored: Option<(OrderRow, Vec<OrderItem>)>,
    pub changes: Vec<rules::FieldChange>,
}

impl Preview {
    pub fn is_new(&self) -> bool {
        self.stored.is_none()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReimportError {
    #[error(transparent)]
    Yahoo(#[from] YahooError),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    /// Yahoo changed the order again after the preview; show the new preview.
    #[error("the order changed since the preview")]
    Changed,
}

impl From<orders::BatchError> for ReimportError {
    fn from(e: orders::BatchError) -> ReimportError {
        match e {
            orders::BatchError::Db(e) => ReimportError::Db(e),
            orders::BatchError::LeaseLost => ReimportError::Changed,
        }
    }
}

impl Importer {
    /// Fetches the order from Yahoo and compares it with what is stored.
    pub async fn preview(
        &self,
        account: AccountId,
        store: StoreId,
        seller_id: &str,
        order_id: &str,
    ) -> Result<Preview, ReimportError> {
        let root =
            self.yahoo.call(account, store, "orderInfo", Body::Xml(api::order_info_xml(seller_id, order_id))).await?;
        let detail = api::parse_order_info(&root)?;
        let mut stored = orders::by_order_ids(&self.db, account, store, &[order_id]).await?;
        let stored = stored.remove(order_id);
        let changes = match &stored {
            Some((row, items)) => rules::diff(&row.to_detail(items.clone(), &detail.seller_id), &detail),
            None => Vec::new(),
        };
        Ok(Preview { detail, stored, changes })
    }

    /// Fetches again and applies, if Yahoo's Version is still the one the person saw.
    pub async fn apply_reimport(
        &self,
        account: AccountId,
        store: StoreId,
        seller_id: &str,
        order_id: &str,
        seen_version: i64,
        user: &str,
    ) -> Result<Preview, ReimportError> {
        let preview = self.preview(account, store, seller_id, order_id).await?;
        if preview.detail.version != seen_version {
            return Err(ReimportError::Changed);
        }
        let now = db::now();
        let run = imports::create_run(&self.db, account, store, Trigger::Reimport, "running", (None, None), user, now)
            .await?;
        let mut progress = Progress { calls: 1, orders_seen: 1, orders_total: 1, ..Progress::default() };
        let mut moves_on = None;
        let (status, history, flag_cancel) = match &preview.stored {
            None => {
                progress.orders_new = 1;
                let (status, mut history, flag) = rules::new_order(&preview.detail, rules::Arrival::New, true, None);
                history[0] =
                    HistoryLine { kind: "reimport", message: "注文再取込で取り込みました".into() };
                (status, history, flag)
            }
            Some((row, items)) => {
                let before = row.to_detail(items.clone(), &preview.detail.seller_id);
                let (mut history, flag) = rules::change_history(&before, &preview.detail);
                if !history.is_empty() {
                    progress.orders_changed = 1;
                }
                history.insert(0, HistoryLine { kind: "reimport", message: "注文再取込を実行しました".into() });
                let paid = rules::paid_now(&before, &preview.detail, row.internal_status());
                if paid.is_some() {
                    use crate::domain::store::InternalStatus;
                    moves_on = Some((InternalStatus::AwaitingPayment, InternalStatus::AwaitingShipment));
                }
                history.extend(paid);
                (row.internal_status(), history, flag)
            }
        };
        // A person re-importing sees the change on the page: no notification is queued.
        let write = OrderWrite {
            detail: preview.detail.clone(),
            new_status: status,
            flag_cancel,
            history,
            moves_on,
            notify: None,
        };
        let batch = orders::Batch {
            writes: vec![write],
            unchanged: Vec::new(),
            cursor_to: None,
            retry: None,
            lease_owner: None,
            notify_base: None,
            actor: HistoryActor::User(user.to_owned()),
            now,
        };
        let written = orders::write_batch(&self.db, account, store, batch).await;
        let (state, message) = match &written {
            Ok(_) => ("done", None),
            Err(e) => ("failed", Some(e.to_string())),
        };
        imports::finish_run(&self.db, run, &progress, state, message.as_deref(), (None, None), db::now()).await?;
        written?;
        Ok(preview)
    }
}
