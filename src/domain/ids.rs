//! Typed identifiers. Account-scoped data access takes an [`AccountId`] as a required argument,
//! so a query that forgets the tenant does not compile.

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, sqlx::Type)]
        #[sqlx(transparent)]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }
    };
}

id_type!(
    /// The tenant: one merchant business.
    AccountId
);
id_type!(
    /// A merchant user (owner or staff) of one account.
    UserId
);
id_type!(
    /// A Yahoo!ショッピング store connected to one account.
    StoreId
);
id_type!(
    /// An operator of the service (not a member of any account).
    SupportStaffId
);
