//! Sends back-channel logout tokens (OpenID Connect Back-Channel Logout 1.0) off the request
//! path: the deliveries recorded with the end of a session are posted by this worker, each with
//! a timeout, retried with exponential backoff and given up after the configured attempts.

use oidc_core::unix_now;
use std::time::Duration;

use oidc_core::claims::{Audience, LogoutTokenClaims};
use oidc_core::types::{ClientId, IssuerUrl, Subject};

use crate::metrics::DeliveryOutcome;
use crate::state::AppState;
use crate::storage::logout_deliveries::{self, Delivery};
use crate::storage::{StorageError, clients};

/// How long one post may take.
const TIMEOUT: Duration = Duration::from_secs(5);
/// How often the worker looks for due deliveries.
const POLL: Duration = Duration::from_secs(1);
/// Deliveries taken per round.
const BATCH: i64 = 32;
/// The wait before the second attempt; each further one waits twice as long.
const FIRST_BACKOFF_SECS: i64 = 2;
/// Lifetime of a logout token (`exp` - `iat`).
const TOKEN_TTL_SECS: i64 = 120;
/// How long a delivery taken for an attempt is left to its taker before another may try.
const LEASE_SECS: i64 = 30;

/// Starts the worker. Abort the handle to stop it.
pub fn spawn(state: AppState) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let http = match reqwest::Client::builder()
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
        {
            Ok(http) => http,
            Err(error) => {
                tracing::error!(%error, "cannot build the back-channel logout client");
                return;
            }
        };
        let mut interval = tokio::time::interval(POLL);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            if let Err(error) = round(&state, &http).await {
                tracing::warn!(%error, "back-channel logout round failed");
            }
        }
    })
}

/// Sends what is due now.
pub async fn round(state: &AppState, http: &reqwest::Client) -> Result<usize, StorageError> {
    let at = unix_now();
    let due = state
        .db
        .run(move |conn| logout_deliveries::due(conn, at, BATCH).map_err(StorageError::from))
        .await?;
    let mut sent = 0;
    for delivery in due {
        let claimed = delivery.clone();
        let mine = state
            .db
            .write(move |conn| {
                logout_deliveries::claim(conn, &claimed, at + LEASE_SECS)
                    .map_err(StorageError::from)
            })
            .await?;
        if mine {
            attempt(state, http, delivery).await?;
            sent += 1;
        }
    }
    Ok(sent)
}

async fn attempt(
    state: &AppState,
    http: &reqwest::Client,
    delivery: Delivery,
) -> Result<(), StorageError> {
    let client_id = delivery.client_id.clone();
    let client = state
        .db
        .run(move |conn| clients::find(conn, &client_id))
        .await?;
    let outcome = match client {
        None => Err(("the application is gone".to_owned(), String::new())),
        Some(client) => match sign(state, &client, &delivery) {
            Err(error) => Err((error, String::new())),
            Ok(token) => post(http, &delivery.uri, &token)
                .await
                .map_err(|error| (error, token)),
        },
    };
    let at = unix_now();
    let id = delivery.id.clone();
    match outcome {
        Ok(()) => {
            state
                .metrics
                .backchannel_delivery(DeliveryOutcome::Delivered);
            state
                .db
                .write(move |conn| {
                    logout_deliveries::delivered(conn, &id).map_err(StorageError::from)
                })
                .await
        }
        Err((error, token)) => {
            let attempts = i64::from(delivery.attempts) + 1;
            let max = i64::from(state.settings.backchannel_max_attempts);
            let retry_at = (attempts < max).then(|| {
                at + FIRST_BACKOFF_SECS.saturating_mul(1_i64 << (attempts - 1).clamp(0, 20))
            });
            tracing::warn!(
                client_id = %delivery.client_id,
                uri = %delivery.uri,
                attempts,
                given_up = retry_at.is_none(),
                %error,
                "back-channel logout delivery failed"
            );
            state.metrics.backchannel_delivery(match retry_at {
                Some(_) => DeliveryOutcome::Failed,
                None => DeliveryOutcome::GivenUp,
            });
            state
                .db
                .write(move |conn| {
                    logout_deliveries::failed(conn, &id, &token, &error, retry_at, at)
                        .map_err(StorageError::from)
                })
                .await
        }
    }
}

/// The logout token of `delivery`, signed now with the application's ID-token algorithm.
fn sign(state: &AppState, client: &clients::Client, delivery: &Delivery) -> Result<String, String> {
    let issuer = IssuerUrl::parse(&state.settings.issuer).map_err(|e| e.to_string())?;
    let alg = client.id_token_signed_response_alg;
    let key = state
        .keys
        .active(alg)
        .ok_or_else(|| format!("no active {alg} signing key"))?;
    let iat = unix_now();
    let claims = LogoutTokenClaims::new(
        issuer,
        Audience::Single(ClientId::new(client.id.clone())),
        Some(Subject::new(delivery.subject.clone())),
        delivery.sid.clone(),
        iat,
        iat + TOKEN_TTL_SECS,
    );
    key.sign_logout_token(&claims)
        .map_err(|e| format!("signing the logout token: {e}"))
}

/// Posts the token; any 2xx answer is a delivery (OpenID Connect Back-Channel Logout 1.0 §2.8).
async fn post(http: &reqwest::Client, uri: &str, token: &str) -> Result<(), String> {
    let response = http
        .post(uri)
        .header(reqwest::header::CACHE_CONTROL, "no-store")
        .form(&[("logout_token", token)])
        .send()
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    if response.status().is_success() {
        Ok(())
    } else {
        Err(format!("answered {}", response.status()))
    }
}
