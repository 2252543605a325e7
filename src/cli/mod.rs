//! Subcommands other than `serve`.

pub mod admin;
