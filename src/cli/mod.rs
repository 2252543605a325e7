//! Subcommands other than `serve`.

pub mod admin;
pub mod bench;
pub mod bench_admin;
pub mod bench_documents;
pub mod bench_fleet;
pub mod bench_mail;
pub mod bench_orders;
pub mod bench_shipping;
pub mod bench_stock;
pub mod simulator;
