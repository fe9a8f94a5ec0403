//! Key rotation at the provider needs no restart of the web app: an unknown `kid` makes it
//! fetch the JWKS again.

use testkit::{Browser, Stack, TestProvider, TestWebapp, login_form};
use webapp::config::BackchannelUrl;

use crate::helpers::{BackchannelProxy, assert_signed_out, run_until_callback};

async fn jwks_kids(browser: &Browser, stack: &Stack) -> Vec<String> {
    let jwks: serde_json::Value = browser
        .get(stack.provider.url("/oauth/jwks"))
        .await
        .unwrap()
        .json()
        .unwrap();
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn key_rotation_at_the_provider_without_a_web_app_restart() {
    let stack = Stack::start().await.unwrap();
    // The web app discovers the provider and caches its keys.
    let first = Browser::new();
    stack.sign_in(&first).await.unwrap();

    // An administrator rotates the RS256 key in the provider's admin site.
    let admin = Browser::new();
    let before = jwks_kids(&admin, &stack).await;
    let login = admin
        .visit(stack.provider.url("/admin/keys"))
        .await
        .unwrap();
    let mut form = login_form(&login).unwrap();
    form.set("username", &stack.provider.admin.username)
        .set("password", &stack.provider.admin.password);
    let keys_page = admin.submit(&form).await.unwrap();
    let rotate = keys_page
        .form_with_button("Rotate RS256")
        .unwrap()
        .click("Rotate RS256")
        .unwrap();
    let rotated = admin.submit(&rotate).await.unwrap();
    assert!(rotated.status.is_success(), "{}", rotated.text());
    let after = jwks_kids(&admin, &stack).await;
    assert_eq!(
        after.len(),
        before.len() + 1,
        "{before:?} -> {after:?}; after rotating: {} {}",
        rotated.url,
        rotated.text()
    );

    // New ID tokens are signed with a key the web app has not seen: sign-in still works.
    let second = Browser::new();
    let home = stack.sign_in(&second).await.unwrap();
    assert_eq!(home.status, 200, "{}", home.text());
    assert!(home.contains(&stack.provider.user.email));
    // The first session is unaffected.
    let home = first.get(stack.webapp.url("/")).await.unwrap();
    assert_eq!(home.status, 200);
}

/// A stack whose web app reaches the provider through a [`BackchannelProxy`].
async fn stack_behind_proxy() -> (Stack, BackchannelProxy) {
    let provider = TestProvider::start().await.unwrap();
    let proxy = BackchannelProxy::start(provider.port).await;
    let backchannel = BackchannelUrl::parse(&proxy.url()).unwrap();
    let webapp = TestWebapp::start_with(&provider, |settings| {
        settings.backchannel_url = Some(backchannel);
    })
    .await
    .unwrap();
    (Stack { webapp, provider }, proxy)
}

#[tokio::test]
async fn unknown_kid_fetches_the_jwks_again_once_then_refuses_the_sign_in() {
    let (stack, proxy) = stack_behind_proxy().await;
    let first = Browser::new();
    let home = stack.sign_in(&first).await.unwrap();
    assert_eq!(home.status, 200, "{}", home.text());
    let fetched = proxy.jwks_fetches();
    assert!(fetched >= 1, "keys fetched at discovery");

    // The web app keeps seeing the old key set while the provider signs with a new key.
    let old_jwks = reqwest::get(stack.provider.url("/oauth/jwks"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    proxy.freeze_jwks(Some(old_jwks));
    stack
        .provider
        .state()
        .keys
        .rotate(oidc_core::jose::Algorithm::RS256)
        .await
        .unwrap();

    let second = Browser::new();
    let callback = run_until_callback(&second, &stack).await.unwrap();
    let page = second.get(callback.as_str()).await.unwrap();
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(
        page.contains("Sign-in could not be completed"),
        "{}",
        page.body
    );
    assert_eq!(
        proxy.jwks_fetches(),
        fetched + 1,
        "the key set is fetched again exactly once"
    );
    assert_signed_out(&second, &stack.webapp).await;

    // Once the provider's real key set comes through, the same kind of sign-in works.
    proxy.freeze_jwks(None);
    let third = Browser::new();
    let home = stack.sign_in(&third).await.unwrap();
    assert_eq!(home.status, 200, "{}", home.text());
    assert!(home.contains(&stack.provider.user.email));
    assert_eq!(proxy.jwks_fetches(), fetched + 2);
}

#[tokio::test]
async fn id_token_of_another_sign_in_is_refused_without_a_session() {
    let (stack, proxy) = stack_behind_proxy().await;
    let first = Browser::new();
    let home = stack.sign_in(&first).await.unwrap();
    assert_eq!(home.status, 200, "{}", home.text());
    // Genuinely signed by the provider, for this client and this user, but issued for another
    // sign-in: its nonce and at_hash do not match this one.
    let stolen = proxy.seen_id_token().expect("an ID token went through");
    proxy.replace_id_token(Some(stolen));

    let second = Browser::new();
    let callback = run_until_callback(&second, &stack).await.unwrap();
    let page = second.get(callback.as_str()).await.unwrap();
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(
        page.contains("Sign-in could not be completed"),
        "{}",
        page.body
    );
    assert_signed_out(&second, &stack.webapp).await;
}

#[tokio::test]
async fn logout_tokens_with_unknown_keys_cannot_make_the_web_app_fetch_the_jwks_again_and_again() {
    use crate::logout_tokens::{claims, endpoint, post};
    use oidc_core::jose::{Algorithm, SigningKey};
    let (stack, proxy) = stack_behind_proxy().await;
    let browser = Browser::new();
    let home = stack.sign_in(&browser).await.unwrap();
    assert_eq!(home.status, 200, "{}", home.text());
    let fetched = proxy.jwks_fetches();

    // Anyone can post to the back-channel endpoint; each token names a key nobody published.
    // Every one is refused, and the key set is fetched again at most once in the refetch
    // interval, however many arrive (at once or one after the other).
    let tokens: Vec<String> = (0..16)
        .map(|_| {
            let key = SigningKey::generate(Algorithm::RS256).unwrap();
            key.sign_logout_token(&claims(&stack, Some("someone"), None))
                .unwrap()
        })
        .collect();
    let (together, one_by_one) = tokens.split_at(8);
    let mut at_once = tokio::task::JoinSet::new();
    for token in together.iter().cloned() {
        let endpoint = endpoint(&stack);
        at_once.spawn(async move {
            let answer = reqwest::Client::new()
                .post(endpoint)
                .form(&[("logout_token", token)])
                .send()
                .await
                .unwrap();
            (answer.status().as_u16(), answer.text().await.unwrap())
        });
    }
    while let Some(answer) = at_once.join_next().await {
        let (status, body) = answer.unwrap();
        assert_eq!(status, 400, "{body}");
    }
    for token in one_by_one {
        let (status, body, _) = post(&stack, token).await;
        assert_eq!(status, 400, "{body}");
    }
    assert!(
        proxy.jwks_fetches() <= fetched + 1,
        "{} fetches after {fetched}",
        proxy.jwks_fetches()
    );
    // The signed-in user was not signed out by any of them.
    let home = browser.get(stack.webapp.url("/")).await.unwrap();
    assert_eq!(home.status, 200);
}
