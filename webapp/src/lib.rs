//! The relying-party web app: signs users in with an OpenID Connect provider, NextAuth-style.
//!
//! Built on the `openidconnect` crate. [`startup::Application`] serves NextAuth's routes under
//! `/api/auth`, gates every other page, keeps the session in an encrypted cookie, refreshes
//! access tokens and calls the provider's protected API.

pub mod after_signin;
pub mod backchannel_logout;
pub mod cli;
pub mod config;
pub mod flow;
pub mod gate;
pub mod metrics;
pub mod oidc;
pub mod pages;
pub mod protected_api;
pub mod refresh;
pub mod routes;
pub mod session;
pub mod session_check;
pub mod startup;
pub mod state;
pub mod store;
