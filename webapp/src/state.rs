//! The state shared by all requests, and the cookie keys derived from the session secret.

use std::sync::Arc;

use actix_web::cookie::Key;
use sha2::{Digest as _, Sha512};

use crate::config::{SessionSecret, Settings};
use crate::flow::{FlowCookie, UsedStates};
use crate::oidc::Oidc;
use crate::refresh::RefreshCoordinator;
use crate::store::Store;

/// Everything a handler needs, shared as `web::Data<AppState>`.
#[derive(Debug)]
pub struct AppState {
    /// The configuration.
    pub settings: Settings,
    /// Discovery and the protocol operations.
    pub oidc: Arc<Oidc>,
    /// The sign-in-in-progress cookie.
    pub flow: FlowCookie,
    /// `state` values already redeemed.
    pub used_states: UsedStates,
    /// Single-flight access-token refresh.
    pub refresh: RefreshCoordinator,
    /// The sessions that can be ended, and the logout tokens already used.
    pub store: Store,
}

/// What a derived key is for: each cookie gets its own key, so one cannot be replayed as another.
#[derive(Debug, Clone, Copy)]
pub enum KeyPurpose {
    /// The session cookie.
    Session,
    /// The sign-in-in-progress cookie.
    Flow,
}

/// A 64-byte cookie key (signing and encryption halves) for `purpose`, derived from the secret.
pub fn derive_key(secret: &SessionSecret, purpose: KeyPurpose) -> Key {
    let label: &[u8] = match purpose {
        KeyPurpose::Session => b"webapp session cookie",
        KeyPurpose::Flow => b"webapp sign-in flow cookie",
    };
    let mut hasher = Sha512::new();
    hasher.update(label);
    hasher.update([0]);
    hasher.update(secret.secret().as_bytes());
    // SHA-512 output is exactly the 64 bytes `Key::from` needs.
    Key::from(hasher.finalize().as_slice())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_differ_by_purpose_and_secret() {
        let a = SessionSecret::parse("a-session-secret-of-at-least-32-bytes").unwrap();
        let b = SessionSecret::parse("another-session-secret-of-32-bytes!!").unwrap();
        let session = derive_key(&a, KeyPurpose::Session);
        assert_eq!(
            session.master(),
            derive_key(&a, KeyPurpose::Session).master()
        );
        assert_ne!(session.master(), derive_key(&a, KeyPurpose::Flow).master());
        assert_ne!(
            session.master(),
            derive_key(&b, KeyPurpose::Session).master()
        );
    }
}
