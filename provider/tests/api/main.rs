//! Integration tests of the provider over HTTP against the real server.

mod account;
mod account_applications;
mod account_password;
mod account_sessions;
mod admin;
mod admin_audit;
mod audit;
mod backchannel;
mod cascades;
mod cli;
mod cli_audit;
mod health;
mod helpers;
mod http_limits;
mod login;
mod login_throttle;
mod metrics;
mod passkeys;
mod storage;
mod sweep;
mod templates;
mod totp;

mod oauth_authorize;
mod oauth_discovery;
mod oauth_flows;
mod oauth_parsers;
mod oauth_resources;
mod oauth_token;
mod offline_access;
mod pg_connections;
mod races;
mod sessions;
mod step_up;
