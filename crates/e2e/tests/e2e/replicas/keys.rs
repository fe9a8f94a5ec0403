//! A signing key rotated with the command line is used by every replica within
//! `PROVIDER_KEYS_RELOAD_SECS`.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use testkit::Browser;
use testkit::replicas::Backend;

use super::{field, id_token_kid, on_each_backend, refresh_at, tokens_via, two_replicas};

/// How often the replicas look for changed keys in these tests.
const RELOAD_SECS: u64 = 1;

/// The kids of the JWKS at `base`.
async fn published_kids(base: &str) -> Vec<String> {
    let jwks: serde_json::Value = reqwest::get(format!("{base}/oauth/jwks"))
        .await
        .expect("jwks")
        .json()
        .await
        .expect("jwks JSON");
    jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|key| key["kid"].as_str().expect("kid").to_owned())
        .collect()
}

on_each_backend!(
    a_key_rotated_by_the_cli_signs_id_tokens_at_both_replicas_within_the_reload_interval
);
async fn a_key_rotated_by_the_cli_signs_id_tokens_at_both_replicas_within_the_reload_interval(
    backend: Backend,
) {
    let reload = RELOAD_SECS.to_string();
    let replicas = two_replicas(backend, &[("PROVIDER_KEYS_RELOAD_SECS", &reload)]).await;
    let (a, b) = (&replicas.processes[0].url, &replicas.processes[1].url);
    let browser = Browser::new();
    let tokens = tokens_via(&browser, &replicas, a, b).await;
    let old_kid = id_token_kid(&tokens);
    let mut refresh = field(&tokens, "refresh_token").to_owned();

    let printed = replicas
        .cli(&["keys", "rotate"])
        .await
        .expect("provider keys rotate");
    let rotated = Instant::now();
    let new_kid = printed
        .lines()
        .find_map(|line| line.strip_prefix("New active RS256 key: "))
        .unwrap_or_else(|| panic!("the new kid is printed: {printed}"))
        .trim()
        .to_owned();
    assert_ne!(new_kid, old_kid);

    // Each replica in turn refreshes (rotating the refresh token) until both sign with the new
    // key; a reload interval and a margin for a loaded machine is all they may take.
    let deadline = Duration::from_secs(RELOAD_SECS + 4);
    let mut switched = [None, None];
    while switched.iter().any(Option::is_none) {
        for (i, base) in [a, b].into_iter().enumerate() {
            let (status, body) = refresh_at(&replicas, base, &refresh).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            refresh = field(&body, "refresh_token").to_owned();
            let kid = id_token_kid(&body);
            match &switched[i] {
                None if kid == new_kid => switched[i] = Some(rotated.elapsed()),
                None => assert_eq!(kid, old_kid, "replica{i} signs with a known key"),
                Some(_) => assert_eq!(kid, new_kid, "replica{i} went back to the old key"),
            }
        }
        assert!(
            rotated.elapsed() < deadline,
            "both replicas sign with {new_kid} within {deadline:?}: {switched:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Both publish the new key and still the old one, whose tokens stay verifiable.
    for base in [a, b, &replicas.issuer] {
        let kids = published_kids(base).await;
        assert!(
            kids.contains(&new_kid) && kids.contains(&old_kid),
            "{base}: {kids:?}"
        );
    }
    // A code flow through the balancer gets an ID token of the new key as well.
    let tokens = tokens_via(&browser, &replicas, &replicas.issuer, &replicas.issuer).await;
    assert_eq!(id_token_kid(&tokens), new_kid);
}
