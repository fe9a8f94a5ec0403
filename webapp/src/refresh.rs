//! Refreshing access tokens so that concurrent requests never spend one refresh token twice
//! (the provider rotates refresh tokens and revokes the whole grant when one is reused).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use sha2::{Digest as _, Sha256};

use crate::oidc::Tokens;

/// How long the outcome of a refresh is handed to other requests that carried the same
/// refresh token (requests that started with the old cookie).
const RESULT_TTL: Duration = Duration::from_secs(60);

/// The outcome shared by all requests that held the same refresh token.
#[derive(Debug, Clone)]
pub enum RefreshOutcome {
    /// New tokens.
    Refreshed(Tokens),
    /// The provider refused the refresh token: the user must sign in again.
    Refused,
}

type Slot = Arc<tokio::sync::Mutex<Option<(Instant, RefreshOutcome)>>>;

/// One lock per refresh token (keyed by its hash) and the latest outcome for each.
#[derive(Debug, Default)]
pub struct RefreshCoordinator {
    slots: Mutex<HashMap<String, Slot>>,
}

impl RefreshCoordinator {
    /// Runs `refresh` for `refresh_token` unless another request just did (then returns its
    /// outcome) or is doing it (then waits for it). Errors (provider unreachable) are not cached.
    pub async fn refresh<F, Fut, E>(
        &self,
        refresh_token: &str,
        refresh: F,
    ) -> Result<RefreshOutcome, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<RefreshOutcome, E>>,
    {
        let slot = self.slot(&fingerprint(refresh_token));
        let mut guard = slot.lock().await;
        if let Some((at, outcome)) = guard.as_ref() {
            if at.elapsed() < RESULT_TTL {
                return Ok(outcome.clone());
            }
        }
        let outcome = refresh().await?;
        *guard = Some((Instant::now(), outcome.clone()));
        Ok(outcome)
    }

    fn slot(&self, key: &str) -> Slot {
        let mut slots = match self.slots.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        // Drop slots nobody is using whose outcome is stale, so the map stays small.
        slots.retain(|_, slot| {
            Arc::strong_count(slot) > 1
                || slot
                    .try_lock()
                    .map(|s| s.as_ref().is_some_and(|(at, _)| at.elapsed() < RESULT_TTL))
                    .unwrap_or(true)
        });
        slots.entry(key.to_owned()).or_default().clone()
    }
}

/// The map never holds refresh tokens themselves, only their hashes.
fn fingerprint(token: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn tokens(access: &str) -> Tokens {
        Tokens {
            sub: "u".into(),
            name: None,
            email: None,
            access_token: access.into(),
            access_token_expires_at: None,
            refresh_token: Some("rt2".into()),
            id_token: None,
        }
    }

    #[tokio::test]
    async fn concurrent_refreshes_of_one_token_call_the_provider_once() {
        let coordinator = Arc::new(RefreshCoordinator::default());
        let calls = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let coordinator = coordinator.clone();
            let calls = calls.clone();
            tasks.push(tokio::spawn(async move {
                coordinator
                    .refresh("rt1", || async {
                        calls.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok::<_, ()>(RefreshOutcome::Refreshed(tokens("at2")))
                    })
                    .await
            }));
        }
        for task in tasks {
            match task.await.unwrap().unwrap() {
                RefreshOutcome::Refreshed(t) => assert_eq!(t.access_token, "at2"),
                RefreshOutcome::Refused => panic!("unexpected refusal"),
            }
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn errors_are_not_cached() {
        let coordinator = RefreshCoordinator::default();
        let first: Result<RefreshOutcome, &str> =
            coordinator.refresh("rt", || async { Err("down") }).await;
        assert!(first.is_err());
        let second = coordinator
            .refresh("rt", || async {
                Ok::<_, &str>(RefreshOutcome::Refreshed(tokens("at3")))
            })
            .await
            .unwrap();
        assert!(matches!(second, RefreshOutcome::Refreshed(t) if t.access_token == "at3"));
    }

    #[tokio::test]
    async fn different_tokens_refresh_independently() {
        let coordinator = RefreshCoordinator::default();
        for (rt, at) in [("a", "at-a"), ("b", "at-b")] {
            let outcome = coordinator
                .refresh(rt, || async move {
                    Ok::<_, ()>(RefreshOutcome::Refreshed(tokens(at)))
                })
                .await
                .unwrap();
            assert!(matches!(outcome, RefreshOutcome::Refreshed(t) if t.access_token == at));
        }
    }
}
