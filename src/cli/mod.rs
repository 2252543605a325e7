//! Subcommands other than `serve`.

pub mod admin;
pub mod bench;
pub mod simulator;
