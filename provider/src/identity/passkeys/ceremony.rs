//! A WebAuthn ceremony between its options and its finish: the webauthn-rs state, what it is
//! for and when it was issued, kept in the encrypted session cookie (one at a time; a new one
//! replaces the last). A finish takes it out, and it is good for five minutes.
//!
//! The cookie alone cannot make it single-use (an old copy of the cookie still holds it): a
//! sign-in also records the use on the passkey's row with a write conditional on the passkey not
//! having been used since the ceremony was issued (`storage::passkeys::record_use`), and a
//! registration cannot store one credential twice.

use actix_session::Session;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// How long a ceremony may take, from its options to its finish.
pub const LIFETIME_SECS: i64 = 300;

const KEY: &str = "passkey_ceremony";

/// What a ceremony is for. A finish names the purpose it expects; any other is refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Purpose {
    /// Registering a passkey for the signed-in user.
    Register { user_id: String },
    /// Signing in with a discoverable passkey, no password.
    SignIn,
    /// The second factor of the user who entered a password.
    SecondFactor { user_id: String },
}

#[derive(Serialize, Deserialize)]
struct Stored {
    purpose: Purpose,
    issued_at: i64,
    state: serde_json::Value,
}

/// Why a ceremony cannot be finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CeremonyError {
    #[error("no passkey request is in progress; please start again")]
    Missing,
    #[error("the passkey request expired; please start again")]
    Expired,
    #[error("the passkey request was for something else; please start again")]
    WrongPurpose,
}

/// Remembers the state of a ceremony for `purpose` issued at `now`.
pub fn begin<S: Serialize>(
    session: &Session,
    purpose: Purpose,
    state: &S,
    now: i64,
) -> anyhow::Result<()> {
    let stored = Stored {
        purpose,
        issued_at: now,
        state: serde_json::to_value(state)?,
    };
    session.insert(KEY, stored)?;
    Ok(())
}

/// Takes the ceremony out of the session (whatever happens next, it cannot be finished again
/// with this cookie) and returns its state and issue time if it is for `purpose` and not
/// older than [`LIFETIME_SECS`] at `now`.
pub fn take<S: DeserializeOwned>(
    session: &Session,
    purpose: &Purpose,
    now: i64,
) -> Result<(S, i64), CeremonyError> {
    let stored = session.remove_as::<Stored>(KEY);
    let Some(Ok(stored)) = stored else {
        return Err(CeremonyError::Missing);
    };
    if stored.purpose != *purpose {
        return Err(CeremonyError::WrongPurpose);
    }
    // Issued in the future means another replica's clock is ahead: fine within the lifetime.
    if now.saturating_sub(stored.issued_at) >= LIFETIME_SECS
        || stored.issued_at.saturating_sub(now) >= LIFETIME_SECS
    {
        return Err(CeremonyError::Expired);
    }
    let state = serde_json::from_value(stored.state).map_err(|_| CeremonyError::Missing)?;
    Ok((state, stored.issued_at))
}

#[cfg(test)]
mod tests {
    use actix_session::SessionExt as _;

    use super::*;
    use crate::config::Settings;
    use crate::identity::passkeys::{relying_party, user_handle};

    fn session() -> Session {
        actix_web::test::TestRequest::default()
            .to_srv_request()
            .get_session()
    }

    #[test]
    fn a_ceremony_is_taken_once() {
        let session = session();
        begin(&session, Purpose::SignIn, &"state", 1_000).expect("begin");
        let (state, issued_at): (String, i64) =
            take(&session, &Purpose::SignIn, 1_010).expect("take");
        assert_eq!((state.as_str(), issued_at), ("state", 1_000));
        assert_eq!(
            take::<String>(&session, &Purpose::SignIn, 1_011),
            Err(CeremonyError::Missing)
        );
    }

    #[test]
    fn a_ceremony_expires_after_five_minutes() {
        let session = session();
        begin(&session, Purpose::SignIn, &"state", 1_000).expect("begin");
        assert_eq!(
            take::<String>(&session, &Purpose::SignIn, 1_000 + LIFETIME_SECS),
            Err(CeremonyError::Expired)
        );
        // Taken even though it failed.
        assert_eq!(
            take::<String>(&session, &Purpose::SignIn, 1_001),
            Err(CeremonyError::Missing)
        );
        begin(&session, Purpose::SignIn, &"state", 1_000).expect("begin");
        assert!(take::<String>(&session, &Purpose::SignIn, 1_000 + LIFETIME_SECS - 1).is_ok());
    }

    #[test]
    fn a_ceremony_for_one_purpose_does_not_finish_another() {
        let session = session();
        let alice = Purpose::Register {
            user_id: "alice".into(),
        };
        begin(&session, alice, &"state", 1_000).expect("begin");
        let bob = Purpose::Register {
            user_id: "bob".into(),
        };
        assert_eq!(
            take::<String>(&session, &bob, 1_001),
            Err(CeremonyError::WrongPurpose)
        );
        begin(&session, Purpose::SignIn, &"state", 1_000).expect("begin");
        let factor = Purpose::SecondFactor {
            user_id: "alice".into(),
        };
        assert_eq!(
            take::<String>(&session, &factor, 1_001),
            Err(CeremonyError::WrongPurpose)
        );
    }

    #[test]
    fn webauthn_states_survive_the_cookie() {
        let settings = Settings {
            issuer: "https://id.example.com".to_owned(),
            ..Settings::default()
        };
        let rp = relying_party(&settings).expect("relying party");
        let session = session();
        let (_, registration) = rp
            .start_passkey_registration(user_handle("u"), "alice", "Alice", None)
            .expect("registration");
        let purpose = Purpose::Register {
            user_id: "u".into(),
        };
        begin(&session, purpose.clone(), &registration, 1_000).expect("begin");
        let taken: Result<(webauthn_rs::prelude::PasskeyRegistration, i64), _> =
            take(&session, &purpose, 1_001);
        assert!(taken.is_ok());

        let (_, discoverable) = rp
            .start_discoverable_authentication()
            .expect("authentication");
        begin(&session, Purpose::SignIn, &discoverable, 1_000).expect("begin");
        let taken: Result<(webauthn_rs::prelude::DiscoverableAuthentication, i64), _> =
            take(&session, &Purpose::SignIn, 1_001);
        assert!(taken.is_ok());
    }
}
