//! Refreshing access tokens so that concurrent requests never spend one refresh token twice
//! (the provider rotates refresh tokens and revokes the whole grant when one is reused).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

use base64::Engine as _;
use sha2::{Digest as _, Sha256};
use tokio::sync::watch;

use crate::oidc::Tokens;

/// The outcome shared by the requests that waited for one refresh.
#[derive(Debug, Clone)]
pub enum RefreshOutcome {
    /// New tokens.
    Refreshed(Tokens),
    /// The provider refused the refresh token: the user must sign in again.
    Refused,
}

/// The refreshes in flight, by the hash of the refresh token they spend.
///
/// Only requests that arrive while a refresh is in flight share its outcome; once it is done
/// the entry is gone, and the same refresh token goes to the provider again. A finished result
/// is never kept for later requests: those carry an older copy of the cookie (a stolen one, or
/// a stale tab), and the provider must see that reuse and revoke the grant rather than the web
/// app handing the new tokens to whoever presents the old ones.
#[derive(Debug, Default)]
pub struct RefreshCoordinator {
    in_flight: Mutex<HashMap<String, watch::Receiver<Option<RefreshOutcome>>>>,
}

impl RefreshCoordinator {
    /// Runs `refresh` for `refresh_token`, or waits for the same refresh already in flight and
    /// returns its outcome. Errors (provider unreachable) are not shared: waiting requests then
    /// try themselves.
    pub async fn refresh<F, Fut, E>(
        &self,
        refresh_token: &str,
        refresh: F,
    ) -> Result<RefreshOutcome, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<RefreshOutcome, E>>,
    {
        let key = fingerprint(refresh_token);
        let publish = loop {
            let mut waiting = {
                let mut in_flight = self.lock();
                match in_flight.get(&key) {
                    Some(waiting) => waiting.clone(),
                    None => {
                        let (publish, waiting) = watch::channel(None);
                        in_flight.insert(key.clone(), waiting);
                        break publish;
                    }
                }
            };
            // Err: the refresh in flight failed or its request went away; try again.
            if let Ok(outcome) = waiting.wait_for(Option::is_some).await {
                if let Some(outcome) = outcome.clone() {
                    return Ok(outcome);
                }
            }
        };
        // Removes the entry however this ends, also when this request is dropped midway.
        let entry = InFlight {
            coordinator: self,
            key,
        };
        let outcome = refresh().await;
        // Gone from the map before the outcome is published: a request that comes after this
        // point goes to the provider itself.
        drop(entry);
        if let Ok(outcome) = &outcome {
            publish.send_replace(Some(outcome.clone()));
        }
        outcome
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, watch::Receiver<Option<RefreshOutcome>>>> {
        match self.in_flight.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

/// The entry of a refresh in flight, removed when the refresh ends or is abandoned.
struct InFlight<'a> {
    coordinator: &'a RefreshCoordinator,
    key: String,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.coordinator.lock().remove(&self.key);
    }
}

/// The map never holds refresh tokens themselves, only their hashes.
fn fingerprint(token: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    fn tokens(access: &str) -> Tokens {
        Tokens {
            sub: "u".into(),
            name: None,
            email: None,
            access_token: access.into(),
            access_token_expires_at: None,
            refresh_token: Some("rt2".into()),
            id_token: None,
            sid: None,
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
    async fn a_finished_refresh_is_not_handed_to_a_later_request() {
        // A later request with the same (old) refresh token is an older copy of the cookie:
        // it must go to the provider, which sees the reuse, instead of getting the new tokens.
        let coordinator = RefreshCoordinator::default();
        let calls = AtomicUsize::new(0);
        for expected in ["at2", "refused"] {
            let outcome = coordinator
                .refresh("rt1", || async {
                    if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                        Ok::<_, ()>(RefreshOutcome::Refreshed(tokens("at2")))
                    } else {
                        Ok(RefreshOutcome::Refused)
                    }
                })
                .await
                .unwrap();
            match (expected, outcome) {
                ("at2", RefreshOutcome::Refreshed(t)) => assert_eq!(t.access_token, "at2"),
                ("refused", RefreshOutcome::Refused) => {}
                (expected, outcome) => panic!("expected {expected}, got {outcome:?}"),
            }
        }
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn an_abandoned_refresh_leaves_no_entry_and_waiters_take_over() {
        let coordinator = Arc::new(RefreshCoordinator::default());
        let leader = {
            let coordinator = coordinator.clone();
            tokio::spawn(async move {
                coordinator
                    .refresh("rt1", || async {
                        tokio::time::sleep(Duration::from_secs(60)).await;
                        Ok::<_, ()>(RefreshOutcome::Refused)
                    })
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        let follower = {
            let coordinator = coordinator.clone();
            tokio::spawn(async move {
                coordinator
                    .refresh("rt1", || async {
                        Ok::<_, ()>(RefreshOutcome::Refreshed(tokens("at2")))
                    })
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        leader.abort();
        let outcome = follower.await.unwrap().unwrap();
        assert!(matches!(outcome, RefreshOutcome::Refreshed(t) if t.access_token == "at2"));
        assert!(coordinator.lock().is_empty());
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
