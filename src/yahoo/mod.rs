//! Everything that talks to Yahoo!ショッピング goes through this module: [`client`] (tokens,
//! signatures, pacing, retries), [`api`] (the XML of each API), [`error`] (typed answers) and
//! [`signature`] (`X-sws-signature`).

pub mod api;
pub mod client;
pub mod error;
pub mod signature;

pub use client::{Body, Endpoints, YahooClient};
pub use error::YahooError;
