//! Everything that talks to Yahoo!ショッピング goes through this module.

pub mod signature;
