//! The integration suite: the real router over real HTTP, a fresh database per test, every
//! story run on SQLite and on PostgreSQL (see `helpers::Backend`).

mod helpers;

mod auth;
mod contract;
mod security;
mod stores;
mod tenancy;
