//! The OpenID Connect provider: configuration, storage, accounts, applications, keys, pages and endpoints.

pub mod account;
pub mod admin;
pub mod backchannel;
pub mod bootstrap;
pub mod cli;
pub mod config;
pub mod health;
pub mod identity;
pub mod key_ring;
pub mod metrics;
pub mod oauth;
pub mod pages;
pub mod startup;
pub mod state;
pub mod storage;
pub mod telemetry;
pub mod unavailable;
