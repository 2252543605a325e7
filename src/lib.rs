//! orderdesk: an order desk for Yahoo!ショッピング merchants.
//!
//! A guided tour: `config` (typed settings) → `app` (state, listener, shutdown) → `web` (routes,
//! pages, sessions, CSRF) → `db` (typed queries over SQLite or PostgreSQL) → `domain` (pure rules).
//! `import` brings orders in (runs, the scheduler), `push` tells Yahoo, `stock` syncs stock: each a
//! job on `jobs` (the process identity, leases, the job loop). `yahoo` is the API client,
//! `simulator` the local stand-in for Yahoo, `xml` their shared XML.
//! `crypto` seals secrets at rest and hashes passwords; `cli` holds the non-serve subcommands.

pub mod app;
pub mod carrier;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod db;
pub mod documents;
pub mod domain;
pub mod import;
pub mod jobs;
pub mod mail;
pub mod notify;
pub mod push;
pub mod shipping;
pub mod simulator;
pub mod stock;
pub mod telemetry;
pub mod web;
pub mod xml;
pub mod yahoo;
