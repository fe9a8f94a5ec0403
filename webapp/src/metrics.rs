//! The web app's Prometheus metrics, all named `webapp_*`: requests and their latency, sign-ins,
//! token refreshes, back-channel logouts and the session database's pool. They are served on
//! `WEBAPP_METRICS_ADDR` only (see `servicekit::metrics`).

use std::sync::Arc;

use actix_web::http::StatusCode;
use servicekit::metrics::{HttpMetrics, OutcomeCounter, Registry};

use crate::refresh::RefreshOutcome;
use crate::store::Store;

/// How a sign-in callback ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignInOutcome {
    /// A session was created.
    Completed,
    /// The user (or the provider) refused: `error=access_denied`.
    Denied,
    /// Any other error: bad state, replay, a failed code exchange or ID-token check.
    Failed,
}

/// The web app's metrics; cheap to clone.
#[derive(Clone, Debug)]
pub struct Metrics {
    /// Requests by method, route pattern and status, and their latency.
    pub http: HttpMetrics,
    sign_ins: OutcomeCounter,
    token_refreshes: OutcomeCounter,
    backchannel_logouts: OutcomeCounter,
    registry: Arc<Registry>,
}

impl Metrics {
    /// Every metric of the web app, the session database's included.
    pub fn new(store: &Store) -> Self {
        let mut registry = Registry::with_prefix("webapp");
        let http = HttpMetrics::register(&mut registry);
        let sign_ins = OutcomeCounter::register(
            &mut registry,
            "sign_ins",
            "Sign-in callbacks, by outcome",
            "outcome",
            &["completed", "denied", "failed"],
        );
        let token_refreshes = OutcomeCounter::register(
            &mut registry,
            "token_refreshes",
            "Access-token refreshes sent to the provider, by outcome",
            "outcome",
            &["succeeded", "refused", "failed"],
        );
        let backchannel_logouts = OutcomeCounter::register(
            &mut registry,
            "backchannel_logouts",
            "Back-channel logout requests received, by outcome",
            "outcome",
            &["accepted", "rejected", "unavailable"],
        );
        store.metrics().register(
            &mut registry,
            "Time a database call waited for a pooled connection",
        );
        Self {
            http,
            sign_ins,
            token_refreshes,
            backchannel_logouts,
            registry: Arc::new(registry),
        }
    }

    /// The registry the metrics listener serves.
    pub fn registry(&self) -> Arc<Registry> {
        self.registry.clone()
    }

    /// Counts a sign-in callback.
    pub fn sign_in(&self, outcome: SignInOutcome) {
        self.sign_ins.inc(match outcome {
            SignInOutcome::Completed => "completed",
            SignInOutcome::Denied => "denied",
            SignInOutcome::Failed => "failed",
        });
    }

    /// Counts a refresh at the provider: new tokens, refused (sign in again), or failed (the
    /// provider could not be reached or failed itself).
    pub fn token_refresh<E>(&self, outcome: &Result<RefreshOutcome, E>) {
        self.token_refreshes.inc(match outcome {
            Ok(RefreshOutcome::Refreshed(_)) => "succeeded",
            Ok(RefreshOutcome::Refused) => "refused",
            Err(_) => "failed",
        });
    }

    /// Counts a back-channel logout request by the status it was answered with: 200 accepted,
    /// 503 unavailable (the provider may retry), anything else rejected.
    pub fn backchannel_logout(&self, status: StatusCode) {
        self.backchannel_logouts.inc(match status {
            StatusCode::OK => "accepted",
            StatusCode::SERVICE_UNAVAILABLE => "unavailable",
            _ => "rejected",
        });
    }
}
