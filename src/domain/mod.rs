//! Pure rules over plain data: identifiers, validated inputs and the vocabulary of the product.
//! Nothing here touches the network or the database, so every rule is unit-tested directly.

pub mod authorize;
pub mod buyer_mail;
pub mod checklist;
pub mod diagnosis;
pub mod health;
pub mod ids;
pub mod invoice;
pub mod jst;
pub mod mail;
pub mod notify;
pub mod order;
pub mod public_key;
pub mod rules;
pub mod scope;
pub mod shipping;
pub mod status;
pub mod stock;
pub mod store;
pub mod user;

pub use ids::{AccountId, StoreId, SupportStaffId, UserId};
