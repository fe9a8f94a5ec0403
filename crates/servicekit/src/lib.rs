//! What both services need around actix-web and that is not about OpenID Connect: a deadline on
//! reading request bodies, and logging that keeps `ERROR` for faults of the server.

pub mod body;
pub mod logging;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;
