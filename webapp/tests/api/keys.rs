//! Key rotation at the provider needs no restart of the web app: an unknown `kid` makes it
//! fetch the JWKS again.

use testkit::{Browser, Stack, login_form};

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
