//! The provider's Prometheus metrics, all named `provider_*`: requests and their latency, logins,
//! tokens issued, back-channel logout deliveries, and the database pool and writer. They are
//! served on `PROVIDER_METRICS_ADDR` only (see `servicekit::metrics`).

use std::sync::Arc;

use servicekit::metrics::{HttpMetrics, OutcomeCounter, Registry};

use crate::storage::Db;

/// How a login attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoginOutcome {
    /// Right password: a session was started.
    Succeeded,
    /// Unknown user, inactive account or wrong password.
    Failed,
    /// Refused by the throttle before the password was checked.
    Throttled,
}

impl LoginOutcome {
    fn label(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Throttled => "throttled",
        }
    }
}

/// What one attempt at posting a back-channel logout token came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The application answered 2xx.
    Delivered,
    /// It failed and will be tried again.
    Failed,
    /// It failed for the last time.
    GivenUp,
}

impl DeliveryOutcome {
    fn label(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::GivenUp => "given_up",
        }
    }
}

/// The grant types tokens are issued for.
pub const GRANT_TYPES: [&str; 2] = ["authorization_code", "refresh_token"];

/// The provider's metrics; cheap to clone.
#[derive(Clone, Debug)]
pub struct Metrics {
    /// Requests by method, route pattern and status, and their latency.
    pub http: HttpMetrics,
    logins: OutcomeCounter,
    tokens_issued: OutcomeCounter,
    backchannel_deliveries: OutcomeCounter,
    registry: Arc<Registry>,
}

impl Metrics {
    /// Every metric of the provider, the database's included, in a registry of their own.
    pub fn new(db: &Db) -> Self {
        let mut registry = Registry::with_prefix("provider");
        let http = HttpMetrics::register(&mut registry);
        let logins = OutcomeCounter::register(
            &mut registry,
            "logins",
            "Login attempts at POST /login, by outcome",
            "outcome",
            &["succeeded", "failed", "throttled"],
        );
        let tokens_issued = OutcomeCounter::register(
            &mut registry,
            "tokens_issued",
            "Token responses issued by the token endpoint, by grant type",
            "grant_type",
            &GRANT_TYPES,
        );
        let backchannel_deliveries = OutcomeCounter::register(
            &mut registry,
            "backchannel_logout_deliveries",
            "Attempts at posting a back-channel logout token, by outcome",
            "outcome",
            &["delivered", "failed", "given_up"],
        );
        db.metrics().register(&mut registry);
        Self {
            http,
            logins,
            tokens_issued,
            backchannel_deliveries,
            registry: Arc::new(registry),
        }
    }

    /// The registry the metrics listener serves.
    pub fn registry(&self) -> Arc<Registry> {
        self.registry.clone()
    }

    /// Counts a login attempt.
    pub fn login(&self, outcome: LoginOutcome) {
        self.logins.inc(outcome.label());
    }

    /// Counts a token response for `grant_type` (one of [`GRANT_TYPES`]).
    pub fn token_issued(&self, grant_type: &'static str) {
        self.tokens_issued.inc(grant_type);
    }

    /// Counts an attempt at a back-channel logout delivery.
    pub fn backchannel_delivery(&self, outcome: DeliveryOutcome) {
        self.backchannel_deliveries.inc(outcome.label());
    }
}
