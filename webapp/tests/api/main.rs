//! The web app against the real provider, both on random loopback ports.

mod amr_acr;
mod availability;
mod backchannel;
mod callback;
mod cli;
mod cookies;
mod flow;
mod helpers;
mod http_limits;
mod keys;
mod logout_tokens;
mod metrics;
mod parsers;
mod redirects;
mod refresh;
mod server_sessions;
mod signout;
