//! A replica killed mid-session: haproxy's health checks take it out, and everything it issued
//! keeps working at the survivor.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use testkit::Browser;
use testkit::haproxy::SERVED_BY;
use testkit::replicas::{Backend, Replicas, ReplicasOptions};

use super::{Pkce, code_at, field, on_each_backend, redeem_at, refresh_at, tokens_via};

on_each_backend!(tokens_issued_by_a_killed_replica_keep_working_through_haproxy_at_the_survivor);
async fn tokens_issued_by_a_killed_replica_keep_working_through_haproxy_at_the_survivor(
    backend: Backend,
) {
    let mut options = ReplicasOptions::new(backend, 2);
    options.health_checks = true;
    let mut replicas = Replicas::start_with(options)
        .await
        .expect("two replicas behind haproxy start");
    let first = replicas.processes[0].url.clone();
    let browser = Browser::new();
    let tokens = tokens_via(&browser, &replicas, &first, &first).await;

    // SIGKILL: no graceful shutdown.
    drop(replicas.processes.remove(0));
    let client = reqwest::Client::new();
    let access = field(&tokens, "access_token");
    let killed = Instant::now();
    let mut answered = Vec::new();
    // Two failed checks half a second apart mark it down; then every request reaches replica1.
    while answered.len() < 6 {
        let response = client
            .get(replicas.url("/oauth/userinfo"))
            .bearer_auth(access)
            .send()
            .await
            .expect("haproxy answers");
        if response.status() == StatusCode::OK {
            let server = response.headers()[SERVED_BY].to_str().expect("ASCII");
            answered.push(server.to_owned());
        } else {
            answered.clear();
            assert!(
                killed.elapsed() < Duration::from_secs(5),
                "haproxy still sends requests to the killed replica: {}",
                response.status()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert!(answered.iter().all(|s| s == "replica1"), "{answered:?}");

    // The refresh token and the browser session from the dead replica work at the survivor.
    let (status, body) =
        refresh_at(&replicas, &replicas.issuer, field(&tokens, "refresh_token")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let pkce = Pkce::new();
    let code = code_at(&browser, &replicas, &replicas.issuer, &pkce)
        .await
        .expect("a code through haproxy");
    assert!(!code.saw_login, "the session survived its replica");
    let (status, body) = redeem_at(&replicas, &replicas.issuer, &code.code, &pkce).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
