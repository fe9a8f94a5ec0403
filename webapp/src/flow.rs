//! The check values of a sign-in in progress (state, nonce, PKCE verifier, where to go after),
//! kept in a short-lived encrypted cookie bound to the provider that started it, and a record
//! of used `state` values so a callback cannot be replayed even with a copied cookie.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, CookieJar, Key, SameSite};
use oidc_core::pkce::CodeVerifier;
use oidc_core::types::{Nonce, State};
use serde::{Deserialize, Serialize};

/// How long a started sign-in may take before its callback is refused.
pub const FLOW_TTL: Duration = Duration::from_secs(10 * 60);
/// Only the callback route needs the cookie.
const COOKIE_PATH: &str = "/api/auth/callback";
/// Upper bound on remembered flows, so the record cannot grow without limit (about 10 MB).
const MAX_REMEMBERED_STATES: usize = 100_000;

/// A sign-in in progress. `Debug` shows no PKCE verifier.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingSignIn {
    /// The provider id the flow was started for.
    pub provider_id: String,
    /// The `state` sent to the provider.
    pub state: State,
    /// The `nonce` sent to the provider.
    pub nonce: Nonce,
    /// The PKCE verifier whose S256 challenge was sent.
    pub pkce_verifier: CodeVerifier,
    /// Where to go after sign-in (already checked to be local).
    pub after_signin: String,
    /// When the flow started (unix seconds).
    pub created_at: i64,
}

/// The flow cookie's name and attributes.
#[derive(Clone)]
pub struct FlowCookie {
    key: Key,
    name: &'static str,
    secure: bool,
}

impl std::fmt::Debug for FlowCookie {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key stays out of logs.
        f.debug_struct("FlowCookie")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl FlowCookie {
    /// `secure` when the web app is served over https (the name then gets the `__Secure-` prefix).
    pub fn new(key: Key, secure: bool) -> Self {
        let name = if secure {
            "__Secure-webapp.flow"
        } else {
            "webapp.flow"
        };
        Self { key, name, secure }
    }

    /// The encrypted cookie carrying `pending`.
    pub fn seal(&self, pending: &PendingSignIn) -> Cookie<'static> {
        let value = serde_json::to_string(pending).unwrap_or_default();
        let cookie = Cookie::build(self.name, value)
            .path(COOKIE_PATH)
            .http_only(true)
            .secure(self.secure)
            // Lax: the provider's redirect back is a top-level GET navigation, which Lax allows.
            .same_site(SameSite::Lax)
            .max_age(actix_web::cookie::time::Duration::seconds(
                i64::try_from(FLOW_TTL.as_secs()).unwrap_or(600),
            ))
            .finish();
        let mut jar = CookieJar::new();
        jar.private_mut(&self.key).add(cookie);
        jar.get(self.name)
            .cloned()
            .unwrap_or_else(|| Cookie::new(self.name, ""))
    }

    /// The pending sign-in in the request's cookie, if it decrypts, parses and is not too old.
    pub fn open(&self, request: &HttpRequest, now: i64) -> Option<PendingSignIn> {
        let cookie = request.cookie(self.name)?;
        self.open_cookie(cookie, now)
    }

    fn open_cookie(&self, cookie: Cookie<'static>, now: i64) -> Option<PendingSignIn> {
        let mut jar = CookieJar::new();
        jar.add_original(cookie);
        let decrypted = jar.private(&self.key).get(self.name)?;
        let pending: PendingSignIn = serde_json::from_str(decrypted.value()).ok()?;
        let age = now - pending.created_at;
        let ttl = i64::try_from(FLOW_TTL.as_secs()).unwrap_or(600);
        (0..=ttl).contains(&age).then_some(pending)
    }

    /// A cookie that deletes the flow cookie: a callback uses it once.
    pub fn removal(&self) -> Cookie<'static> {
        let mut cookie = Cookie::build(self.name, "")
            .path(COOKIE_PATH)
            .http_only(true)
            .secure(self.secure)
            .same_site(SameSite::Lax)
            .finish();
        cookie.make_removal();
        cookie
    }
}

/// Flows already redeemed, by their `state`, each until its flow cookie would have expired.
///
/// A full record forgets its oldest entry instead of refusing: a refusal there would lock every
/// user out once someone filled it (a callback with a fresh flow cookie and a bad `iss` is
/// enough, no provider round trip). Forgetting is safe: a copy of a forgotten flow cookie with
/// its callback URL still needs the authorization code, which the provider redeems once (and a
/// second try revokes what the first one got). Capacity bounds the memory.
#[derive(Debug)]
pub struct UsedStates {
    record: Mutex<Record>,
    capacity: usize,
}

#[derive(Debug, Default)]
struct Record {
    /// `state` to the unix second its flow cookie expires.
    expiry: HashMap<String, i64>,
    /// The same entries, oldest first.
    order: VecDeque<String>,
}

impl Default for UsedStates {
    fn default() -> Self {
        Self::with_capacity(MAX_REMEMBERED_STATES)
    }
}

impl UsedStates {
    /// A record that remembers at most `capacity` flows (at least one).
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            record: Mutex::default(),
            capacity: capacity.max(1),
        }
    }

    /// Records `pending`'s flow as used at `now` (unix seconds); false if it was used before.
    /// Never false for a flow not seen before, however full the record is.
    pub fn first_use(&self, pending: &PendingSignIn, now: i64) -> bool {
        let mut record = match self.record.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let Record { expiry, order } = &mut *record;
        // Oldest first: drop what expired, then make room. An entry whose flow cookie has
        // expired is useless anyway: the cookie no longer opens.
        while let Some(oldest) = order.front() {
            let expired = expiry.get(oldest).is_none_or(|at| *at < now);
            if !expired && order.len() < self.capacity {
                break;
            }
            if let Some(oldest) = order.pop_front() {
                expiry.remove(&oldest);
            }
        }
        let state = pending.state.as_str();
        if expiry.contains_key(state) {
            return false;
        }
        let ttl = i64::try_from(FLOW_TTL.as_secs()).unwrap_or(600);
        expiry.insert(state.to_owned(), pending.created_at.saturating_add(ttl));
        order.push_back(state.to_owned());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(now: i64) -> PendingSignIn {
        PendingSignIn {
            provider_id: "provider".into(),
            state: State::new("state-1"),
            nonce: Nonce::new("nonce-1"),
            pkce_verifier: CodeVerifier::generate(),
            after_signin: "/".into(),
            created_at: now,
        }
    }

    fn flow() -> FlowCookie {
        FlowCookie::new(Key::generate(), false)
    }

    #[test]
    fn sealed_cookie_round_trips_and_hides_its_content() {
        let flow = flow();
        let pending = pending(1000);
        let cookie = flow.seal(&pending);
        assert!(!cookie.value().contains(pending.pkce_verifier.secret()));
        assert!(!cookie.value().contains("state-1"));
        assert_eq!(cookie.http_only(), Some(true));
        assert_eq!(cookie.same_site(), Some(SameSite::Lax));
        assert_eq!(flow.open_cookie(cookie, 1001), Some(pending));
    }

    #[test]
    fn tampered_or_foreign_cookies_do_not_open() {
        let flow = flow();
        let mut cookie = flow.seal(&pending(1000));
        let mut value = cookie.value().to_owned();
        let last = value.pop().unwrap();
        value.push(if last == 'A' { 'B' } else { 'A' });
        cookie.set_value(value);
        assert_eq!(flow.open_cookie(cookie, 1001), None);

        let other = FlowCookie::new(Key::generate(), false);
        let foreign = other.seal(&pending(1000));
        assert_eq!(flow.open_cookie(foreign, 1001), None);
    }

    #[test]
    fn expired_cookies_do_not_open() {
        let flow = flow();
        let ttl = i64::try_from(FLOW_TTL.as_secs()).unwrap();
        assert_eq!(
            flow.open_cookie(flow.seal(&pending(1000)), 1000 + ttl + 1),
            None
        );
        assert_eq!(flow.open_cookie(flow.seal(&pending(1000)), 999), None);
    }

    fn flow_with_state(state: &str, created_at: i64) -> PendingSignIn {
        PendingSignIn {
            state: State::new(state),
            ..pending(created_at)
        }
    }

    #[test]
    fn a_state_is_used_once() {
        let used = UsedStates::default();
        assert!(used.first_use(&flow_with_state("a", 1000), 1001));
        assert!(!used.first_use(&flow_with_state("a", 1000), 1002));
        assert!(used.first_use(&flow_with_state("b", 1000), 1002));
    }

    #[test]
    fn a_full_record_never_refuses_a_fresh_state() {
        let used = UsedStates::with_capacity(3);
        for i in 0..10 {
            assert!(used.first_use(&flow_with_state(&format!("filler-{i}"), 1000), 1000));
        }
        // Everyone else's sign-in must still work, and replays of recent flows are refused.
        assert!(used.first_use(&flow_with_state("fresh", 1000), 1001));
        assert!(!used.first_use(&flow_with_state("fresh", 1000), 1002));
        assert!(!used.first_use(&flow_with_state("filler-9", 1000), 1002));
        // The oldest was forgotten; its replay is left to the provider's single-use code.
        assert!(used.first_use(&flow_with_state("filler-0", 1000), 1002));
    }

    #[test]
    fn the_default_record_filled_past_capacity_still_accepts_fresh_states() {
        let used = UsedStates::default();
        for i in 0..MAX_REMEMBERED_STATES + 10 {
            assert!(used.first_use(&flow_with_state(&format!("filler-{i}"), 1000), 1000));
        }
        assert!(used.first_use(&flow_with_state("fresh", 1000), 1000));
    }

    #[test]
    fn expired_flows_are_forgotten() {
        let used = UsedStates::with_capacity(100);
        let ttl = i64::try_from(FLOW_TTL.as_secs()).unwrap();
        assert!(used.first_use(&flow_with_state("old", 1000), 1000));
        assert!(used.first_use(&flow_with_state("new", 1000 + ttl), 1000 + ttl + 1));
        let record = used.record.lock().unwrap();
        assert_eq!(record.order, ["new"]);
        assert_eq!(record.expiry.len(), 1);
    }

    #[test]
    fn secure_cookies_get_a_prefixed_name() {
        let flow = FlowCookie::new(Key::generate(), true);
        let cookie = flow.seal(&pending(1000));
        assert!(cookie.name().starts_with("__Secure-"));
        assert_eq!(cookie.secure(), Some(true));
    }
}
