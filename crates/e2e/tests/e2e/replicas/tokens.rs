//! Codes and refresh tokens across replicas: single use and reuse detection hold for the pair.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use testkit::Browser;
use testkit::replicas::Backend;

use super::{
    Pkce, at, code_at, field, jwt_part, on_each_backend, redeem_at, refresh_at, tokens_via,
    two_replicas, userinfo_at,
};

on_each_backend!(
    a_code_from_one_replica_is_redeemed_once_at_the_other_and_flows_run_through_haproxy
);
async fn a_code_from_one_replica_is_redeemed_once_at_the_other_and_flows_run_through_haproxy(
    backend: Backend,
) {
    let replicas = std::sync::Arc::new(two_replicas(backend, &[]).await);
    let (a, b) = (&replicas.processes[0].url, &replicas.processes[1].url);

    // Both replicas publish the same keys.
    let jwks = |base: String| async move {
        reqwest::get(format!("{base}/oauth/jwks"))
            .await
            .expect("jwks")
            .text()
            .await
            .expect("jwks body")
    };
    assert_eq!(jwks(a.clone()).await, jwks(b.clone()).await);

    // Issued by A (every step there), redeemed at B.
    let browser = Browser::new();
    let pkce = Pkce::new();
    let code = code_at(&browser, &replicas, a, &pkce).await.expect("code");
    assert!(at(&code.issued_by, a), "issued by {}", code.issued_by);
    let (status, tokens) = redeem_at(&replicas, b, &code.code, &pkce).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let claims = jwt_part(field(&tokens, "id_token"), 1);
    assert_eq!(claims["iss"], replicas.issuer.as_str(), "{claims}");
    let access = field(&tokens, "access_token");
    assert_eq!(userinfo_at(a, access).await, StatusCode::OK);
    assert_eq!(userinfo_at(&replicas.issuer, access).await, StatusCode::OK);
    // Spent for both.
    for base in [a, b] {
        let (status, body) = redeem_at(&replicas, base, &code.code, &pkce).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["error"], "invalid_grant");
    }

    // The whole flow through the balancer, its steps served by both replicas in turn.
    let discovery: serde_json::Value =
        reqwest::get(replicas.url("/.well-known/openid-configuration"))
            .await
            .expect("discovery")
            .json()
            .await
            .expect("discovery JSON");
    assert_eq!(discovery["issuer"], replicas.issuer.as_str());
    assert_eq!(
        discovery["token_endpoint"],
        replicas.url("/oauth/token").as_str()
    );
    let fresh = Browser::new();
    let pkce = Pkce::new();
    let code = code_at(&fresh, &replicas, &replicas.issuer, &pkce)
        .await
        .expect("code through haproxy");
    let servers: BTreeSet<&str> = code.served_by.iter().map(String::as_str).collect();
    assert_eq!(
        servers,
        BTreeSet::from(["replica0", "replica1"]),
        "login and consent alternated between the replicas: {:?}",
        code.served_by
    );
    let (status, tokens) = redeem_at(&replicas, &replicas.issuer, &code.code, &pkce).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    for base in [a, b] {
        assert_eq!(
            userinfo_at(base, field(&tokens, "access_token")).await,
            StatusCode::OK
        );
    }

    // One code sent to both replicas at once, four times each: exactly one redemption.
    let pkce = Pkce::new();
    let code = code_at(&fresh, &replicas, a, &pkce).await.expect("code");
    let mut attempts = tokio::task::JoinSet::new();
    for i in 0..8 {
        let (replicas, code, pkce) = (replicas.clone(), code.code.clone(), pkce.clone());
        attempts.spawn(async move {
            let base = &replicas.processes[i % 2].url;
            redeem_at(&replicas, base, &code, &pkce).await
        });
    }
    let outcomes = attempts.join_all().await;
    let granted = outcomes
        .iter()
        .filter(|(status, _)| *status == StatusCode::OK)
        .count();
    assert_eq!(granted, 1, "{outcomes:?}");
    for (status, body) in &outcomes {
        if *status != StatusCode::OK {
            assert_eq!(*status, StatusCode::BAD_REQUEST, "{body}");
            assert_eq!(body["error"], "invalid_grant", "{body}");
        }
    }
}

on_each_backend!(a_refresh_token_reused_at_the_other_replica_revokes_the_grant);
async fn a_refresh_token_reused_at_the_other_replica_revokes_the_grant(backend: Backend) {
    let replicas = two_replicas(backend, &[]).await;
    let (a, b) = (&replicas.processes[0].url, &replicas.processes[1].url);
    let browser = Browser::new();
    let tokens = tokens_via(&browser, &replicas, a, a).await;
    let old_refresh = field(&tokens, "refresh_token");

    // Rotated at A.
    let (status, rotated) = refresh_at(&replicas, a, old_refresh).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    let new_access = field(&rotated, "access_token");
    let new_refresh = field(&rotated, "refresh_token");
    assert_eq!(userinfo_at(b, new_access).await, StatusCode::OK);

    // The old one replayed at B: refused, and everything of the grant is revoked everywhere.
    let (status, body) = refresh_at(&replicas, b, old_refresh).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_grant", "{body}");
    for base in [a, b, &replicas.issuer] {
        assert_eq!(
            userinfo_at(base, new_access).await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            userinfo_at(base, field(&tokens, "access_token")).await,
            StatusCode::UNAUTHORIZED
        );
        let (status, body) = refresh_at(&replicas, base, new_refresh).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["error"], "invalid_grant", "{body}");
    }

    // One refresh token sent to both replicas at the same moment: one rotation wins, the
    // other is a reuse, so the winner's tokens are revoked as well.
    let tokens = tokens_via(&Browser::new(), &replicas, b, a).await;
    let refresh = field(&tokens, "refresh_token");
    let (first, second) = tokio::join!(
        refresh_at(&replicas, a, refresh),
        refresh_at(&replicas, b, refresh)
    );
    let mut statuses = [first.0, second.0];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::OK, StatusCode::BAD_REQUEST],
        "{first:?} {second:?}"
    );
    let winner = if first.0 == StatusCode::OK {
        &first.1
    } else {
        &second.1
    };
    for base in [a, b] {
        assert_eq!(
            userinfo_at(base, field(winner, "access_token")).await,
            StatusCode::UNAUTHORIZED
        );
    }
}
