//! The state shared by all requests, and the cookie keys derived from the session secret.

use std::sync::Arc;

use actix_web::cookie::Key;
use hkdf::Hkdf;
use sha2::Sha512;

use crate::config::{SessionSecret, Settings};
use crate::flow::{FlowCookie, UsedStates};
use crate::metrics::Metrics;
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
    /// What `/metrics` reports (counted whether or not it is served).
    pub metrics: Metrics,
}

/// What a derived key is for: each cookie gets its own key, so one cannot be replayed as another.
#[derive(Debug, Clone, Copy)]
pub enum KeyPurpose {
    /// The session cookie.
    Session,
    /// The sign-in-in-progress cookie.
    Flow,
}

/// A 64-byte cookie key (signing and encryption halves) for `purpose`, derived from the secret
/// with HKDF-SHA-512 (RFC 5869), the purpose as its `info`.
pub fn derive_key(secret: &SessionSecret, purpose: KeyPurpose) -> anyhow::Result<Key> {
    let info: &[u8] = match purpose {
        KeyPurpose::Session => b"webapp session cookie",
        KeyPurpose::Flow => b"webapp sign-in flow cookie",
    };
    let mut key = [0u8; 64];
    Hkdf::<Sha512>::new(None, secret.secret().as_bytes())
        .expand(info, &mut key)
        .map_err(|e| anyhow::anyhow!("cookie key derivation: {e}"))?;
    Ok(Key::from(&key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_differ_by_purpose_and_secret() {
        let a = SessionSecret::parse("a-session-secret-of-at-least-32-bytes").unwrap();
        let b = SessionSecret::parse("another-session-secret-of-32-bytes!!").unwrap();
        let key = |secret, purpose| derive_key(secret, purpose).unwrap();
        let session = key(&a, KeyPurpose::Session);
        assert_eq!(session.master(), key(&a, KeyPurpose::Session).master());
        assert_ne!(session.master(), key(&a, KeyPurpose::Flow).master());
        assert_ne!(session.master(), key(&b, KeyPurpose::Session).master());
    }

    #[test]
    fn keys_are_hkdf_sha512_of_the_secret() {
        // RFC 5869 with SHA-512, no salt, the purpose as info: computed here from the
        // definition (HMAC-SHA-512 extract, then one 64-byte expand block).
        use hmac::{Hmac, Mac as _};
        let secret = SessionSecret::parse("a-session-secret-of-at-least-32-bytes").unwrap();
        let hmac = |key: &[u8], parts: &[&[u8]]| {
            let mut mac = Hmac::<Sha512>::new_from_slice(key).unwrap();
            for part in parts {
                mac.update(part);
            }
            mac.finalize().into_bytes().to_vec()
        };
        let prk = hmac(&[0u8; 64], &[secret.secret().as_bytes()]);
        let okm = hmac(&prk, &[b"webapp session cookie", &[1]]);
        assert_eq!(
            derive_key(&secret, KeyPurpose::Session).unwrap().master(),
            okm.as_slice()
        );
    }
}
