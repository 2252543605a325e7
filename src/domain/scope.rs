//! Which orders a signed-in person may see and change: their account's, limited to the stores
//! an owner chose for a staff member, with buyers' personal data masked when their switch says
//! so (product.md §1, §6). Every order query and export takes an [`OrderScope`].

use super::{AccountId, StoreId};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderScope {
    pub account: AccountId,
    /// `None`: every store of the account. `Some`: only these (possibly none).
    pub stores: Option<Vec<StoreId>>,
    /// Buyers' names, addresses, phone numbers and emails are shown as 「***」.
    pub mask_personal: bool,
}

impl OrderScope {
    /// The whole account, unmasked (owners, jobs).
    pub fn account(account: AccountId) -> OrderScope {
        OrderScope { account, stores: None, mask_personal: false }
    }

    pub fn allows(&self, store: StoreId) -> bool {
        self.stores.as_ref().is_none_or(|s| s.contains(&store))
    }

    /// What a masked field shows.
    pub fn mask<'a>(&self, value: &'a str) -> &'a str {
        if self.mask_personal && !value.is_empty() { MASK } else { value }
    }
}

pub const MASK: &str = "＊＊＊";
