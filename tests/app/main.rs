//! The integration suite: the real router over real HTTP, a fresh database per test, every
//! story run on SQLite and on PostgreSQL (see `helpers::Backend`).

mod helpers;
mod sim;

mod answers;
mod auth;
mod browser;
mod connect;
mod contract;
mod dashboard;
mod desk;
mod documents;
mod first_day;
mod hardening;
mod hardening_b;
mod import;
mod mail;
mod notify;
mod pages;
mod privacy;
mod public_client;
mod push;
mod reliability;
mod reset_link;
mod rules;
mod scope;
mod security;
mod shipping;
mod simulator;
mod stock;
mod stores;
mod support;
mod tenancy;
