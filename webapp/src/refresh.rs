//! Refreshing access tokens so that concurrent requests never spend one refresh token twice
//! (the provider rotates refresh tokens and revokes the whole grant when one is reused).

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::HttpMessage as _;
use oidc_core::types::RefreshToken;
use tokio::sync::watch;

use crate::oidc::Tokens;

/// The outcome shared by the requests that waited for one refresh.
#[derive(Debug, Clone)]
pub enum RefreshOutcome {
    /// New tokens.
    Refreshed(Box<Tokens>),
    /// The provider refused the refresh token: the user must sign in again.
    Refused,
}

/// When a request arrived at the web app: stamped by [`stamp_arrival`], the outermost
/// middleware, before the request waits for anything.
#[derive(Debug, Clone, Copy)]
pub struct Arrival(pub Instant);

impl Arrival {
    /// The arrival of `req`, or now for a request that was not stamped.
    pub fn of(req: &actix_web::HttpRequest) -> Instant {
        req.extensions()
            .get::<Arrival>()
            .map_or_else(Instant::now, |a| a.0)
    }
}

/// Middleware: stamps every request with its [`Arrival`].
pub async fn stamp_arrival(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    req.extensions_mut().insert(Arrival(Instant::now()));
    next.call(req).await
}

/// How long a finished refresh is remembered for requests that arrived before it finished but
/// reached the coordinator later (they waited for the session check or a worker).
const FINISHED_KEPT: Duration = Duration::from_secs(60);
/// Finished refreshes remembered at most; the oldest is forgotten first (a forgotten one only
/// sends a late request to the provider, it never hands tokens to anyone).
const MAX_FINISHED: usize = 10_000;

/// The refreshes in flight and those just finished, by the hash of the refresh token they spend.
///
/// A refresh's outcome is shared with the requests that *arrived at the web app* before it
/// finished: they were sent by the same browser before it could have the new cookie (a page
/// loading several resources at once), however late their handler reached this point. A
/// request that arrived after the refresh finished carries an older copy of the cookie (a
/// stolen one, or a stale tab): it is never handed the new tokens; its refresh token goes to
/// the provider, which sees the reuse and revokes the grant.
#[derive(Debug, Default)]
pub struct RefreshCoordinator {
    state: Mutex<Refreshes>,
}

#[derive(Debug, Default)]
struct Refreshes {
    in_flight: HashMap<String, watch::Receiver<Option<RefreshOutcome>>>,
    finished: HashMap<String, Finished>,
    /// Keys of `finished` in the order they finished, for expiry and eviction.
    order: VecDeque<(Instant, String)>,
}

#[derive(Debug)]
struct Finished {
    at: Instant,
    outcome: RefreshOutcome,
}

impl Refreshes {
    fn remember(&mut self, key: String, outcome: RefreshOutcome, now: Instant) {
        while let Some((at, _)) = self.order.front() {
            if now.duration_since(*at) < FINISHED_KEPT && self.order.len() < MAX_FINISHED {
                break;
            }
            if let Some((at, old)) = self.order.pop_front() {
                if self.finished.get(&old).is_some_and(|f| f.at == at) {
                    self.finished.remove(&old);
                }
            }
        }
        self.order.push_back((now, key.clone()));
        self.finished.insert(key, Finished { at: now, outcome });
    }
}

impl RefreshCoordinator {
    /// Runs `refresh` for `refresh_token`, or shares the outcome of the same refresh in flight,
    /// or of one that finished after this request `arrived`. Errors (provider unreachable) are
    /// not shared: waiting requests then try themselves.
    pub async fn refresh<F, Fut, E>(
        &self,
        refresh_token: &RefreshToken,
        arrived: Instant,
        refresh: F,
    ) -> Result<RefreshOutcome, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<RefreshOutcome, E>>,
    {
        // The map never holds refresh tokens themselves, only their hashes.
        let key = refresh_token.hash().into_string();
        let publish = loop {
            let mut waiting = {
                let mut state = self.lock();
                if let Some(finished) = state.finished.get(&key) {
                    if arrived <= finished.at {
                        return Ok(finished.outcome.clone());
                    }
                }
                match state.in_flight.get(&key) {
                    Some(waiting) => waiting.clone(),
                    None => {
                        let (publish, waiting) = watch::channel(None);
                        state.in_flight.insert(key.clone(), waiting);
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
            key: key.clone(),
        };
        let outcome = refresh().await;
        if let Ok(outcome) = &outcome {
            // Remembered with its finishing time before it leaves the in-flight map, so that no
            // request that arrived earlier falls between the two.
            self.lock().remember(key, outcome.clone(), Instant::now());
        }
        drop(entry);
        if let Ok(outcome) = &outcome {
            publish.send_replace(Some(outcome.clone()));
        }
        outcome
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Refreshes> {
        match self.state.lock() {
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
        self.coordinator.lock().in_flight.remove(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use oidc_core::types::AccessToken;

    fn rt(token: &str) -> RefreshToken {
        RefreshToken::new(token)
    }

    fn tokens(access: &str) -> Tokens {
        Tokens {
            sub: "u".into(),
            name: None,
            email: None,
            access_token: AccessToken::new(access),
            access_token_expires_at: None,
            refresh_token: Some(RefreshToken::new("rt2")),
            id_token: None,
            sid: None,
            amr: Vec::new(),
            acr: None,
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
                    .refresh(&rt("rt1"), Instant::now(), || async {
                        calls.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok::<_, ()>(RefreshOutcome::Refreshed(Box::new(tokens("at2"))))
                    })
                    .await
            }));
        }
        for task in tasks {
            match task.await.unwrap().unwrap() {
                RefreshOutcome::Refreshed(t) => assert_eq!(t.access_token.secret(), "at2"),
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
                .refresh(&rt("rt1"), Instant::now(), || async {
                    if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                        Ok::<_, ()>(RefreshOutcome::Refreshed(Box::new(tokens("at2"))))
                    } else {
                        Ok(RefreshOutcome::Refused)
                    }
                })
                .await
                .unwrap();
            match (expected, outcome) {
                ("at2", RefreshOutcome::Refreshed(t)) => assert_eq!(t.access_token.secret(), "at2"),
                ("refused", RefreshOutcome::Refused) => {}
                (expected, outcome) => panic!("expected {expected}, got {outcome:?}"),
            }
        }
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_request_that_arrived_before_the_refresh_finished_shares_it_however_late() {
        // Sent by the browser together with the refreshing request, it reached this point only
        // after the refresh finished (it waited for a worker or the session check).
        let coordinator = RefreshCoordinator::default();
        let calls = AtomicUsize::new(0);
        let early = Instant::now();
        let refresh = || async {
            calls.fetch_add(1, Ordering::SeqCst);
            Ok::<_, ()>(RefreshOutcome::Refreshed(Box::new(tokens("at2"))))
        };
        coordinator
            .refresh(&rt("rt1"), early, refresh)
            .await
            .unwrap();
        let late_handler = coordinator
            .refresh(&rt("rt1"), early, || async {
                Ok::<_, ()>(RefreshOutcome::Refused)
            })
            .await
            .unwrap();
        assert!(
            matches!(late_handler, RefreshOutcome::Refreshed(t) if t.access_token.secret() == "at2")
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn finished_refreshes_are_bounded_and_forgotten_oldest_first() {
        let mut refreshes = Refreshes::default();
        let start = Instant::now();
        for i in 0..MAX_FINISHED + 5 {
            refreshes.remember(format!("k{i}"), RefreshOutcome::Refused, start);
        }
        assert_eq!(refreshes.finished.len(), MAX_FINISHED);
        assert!(!refreshes.finished.contains_key("k0"));
        assert!(
            refreshes
                .finished
                .contains_key(&format!("k{}", MAX_FINISHED + 4))
        );
        refreshes.remember(
            "late".into(),
            RefreshOutcome::Refused,
            start + FINISHED_KEPT,
        );
        assert_eq!(
            refreshes.finished.len(),
            1,
            "entries older than FINISHED_KEPT are gone"
        );
    }

    #[tokio::test]
    async fn an_abandoned_refresh_leaves_no_entry_and_waiters_take_over() {
        let coordinator = Arc::new(RefreshCoordinator::default());
        let leader = {
            let coordinator = coordinator.clone();
            tokio::spawn(async move {
                coordinator
                    .refresh(&rt("rt1"), Instant::now(), || async {
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
                    .refresh(&rt("rt1"), Instant::now(), || async {
                        Ok::<_, ()>(RefreshOutcome::Refreshed(Box::new(tokens("at2"))))
                    })
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        leader.abort();
        let outcome = follower.await.unwrap().unwrap();
        assert!(
            matches!(outcome, RefreshOutcome::Refreshed(t) if t.access_token.secret() == "at2")
        );
        assert!(coordinator.lock().in_flight.is_empty());
    }

    #[tokio::test]
    async fn errors_are_not_cached() {
        let coordinator = RefreshCoordinator::default();
        let first: Result<RefreshOutcome, &str> = coordinator
            .refresh(&rt("rt"), Instant::now(), || async { Err("down") })
            .await;
        assert!(first.is_err());
        let second = coordinator
            .refresh(&rt("rt"), Instant::now(), || async {
                Ok::<_, &str>(RefreshOutcome::Refreshed(Box::new(tokens("at3"))))
            })
            .await
            .unwrap();
        assert!(matches!(second, RefreshOutcome::Refreshed(t) if t.access_token.secret() == "at3"));
    }

    #[tokio::test]
    async fn different_tokens_refresh_independently() {
        let coordinator = RefreshCoordinator::default();
        for (rt, at) in [("a", "at-a"), ("b", "at-b")] {
            let outcome = coordinator
                .refresh(&RefreshToken::new(rt), Instant::now(), || async move {
                    Ok::<_, ()>(RefreshOutcome::Refreshed(Box::new(tokens(at))))
                })
                .await
                .unwrap();
            assert!(
                matches!(outcome, RefreshOutcome::Refreshed(t) if t.access_token.secret() == at)
            );
        }
    }
}
