//! What both services need around actix-web and that is not about OpenID Connect: a deadline on
//! reading request bodies, logging that keeps `ERROR` for faults of the server (as text or
//! JSON), typed settings that report every bad variable at once, and Prometheus metrics on a
//! listener of their own.

pub mod body;
pub mod logging;
pub mod metrics;
pub mod settings;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;
