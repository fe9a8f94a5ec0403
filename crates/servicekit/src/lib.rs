//! What both services need around actix-web and that is not about OpenID Connect: a deadline on
//! reading request bodies, logging that keeps `ERROR` for faults of the server (as text or
//! JSON), and typed settings that report every bad variable at once.

pub mod body;
pub mod logging;
pub mod settings;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;
