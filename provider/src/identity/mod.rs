//! Who is signed in: password hashing, passkeys, the browser session, login and logout pages,
//! and login throttling.

pub mod factor;
pub mod login;
pub mod passkeys;
pub mod password;
pub mod security;
pub mod session;
pub mod throttle;
pub mod totp;
