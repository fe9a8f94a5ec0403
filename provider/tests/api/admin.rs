//! The admin site: administrators only, CSRF on every form, secrets shown once.

use reqwest::StatusCode;

use crate::helpers::{
    Browser, CLIENT_ID, REDIRECT_URI, USER_PASSWORD, USER_USERNAME, csrf_token, element_text,
    input_value, location, spawn_app,
};

fn secret_on(html: &str) -> Option<String> {
    element_text(html, "#client-secret").map(|secret| secret.trim().to_owned())
}

fn client_id_on(html: &str) -> String {
    element_text(html, ".client-id").expect("client id")
}

#[tokio::test]
async fn admin_creates_an_application_and_sees_the_secret_once() {
    let app = spawn_app().await;
    let admin = app.admin_browser().await;
    let response = admin
        .submit(
            "/admin/applications/new",
            "/admin/applications",
            &[
                ("name", "Tutorial app"),
                ("client_type", "confidential"),
                (
                    "redirect_uris",
                    "http://localhost:3000/api/auth/callback/provider",
                ),
                ("post_logout_redirect_uris", ""),
                ("refresh_tokens", "on"),
                ("algorithm", "RS256"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let credentials = location(&response);
    let (status, html) = admin.get_html(&credentials).await;
    assert_eq!(status, StatusCode::OK);
    let secret = secret_on(&html).expect("the secret is shown after creation");
    assert!(secret.len() >= 43, "256 bits: {secret}");
    let client_id = client_id_on(&html);

    // Only the hash is stored, and it matches the secret shown.
    let id = client_id.clone();
    let client = app
        .state
        .db
        .run(move |conn| provider::storage::clients::find(conn, &id))
        .await
        .expect("query")
        .expect("client stored");
    assert_ne!(client.secret_hash.as_deref(), Some(secret.as_str()));
    assert!(client.verify_secret(&secret));

    // Never again: not on a reload, not in the list, not on the edit page.
    for path in [
        credentials.clone(),
        "/admin/applications".to_owned(),
        format!("/admin/applications/{client_id}"),
    ] {
        let (status, page) = admin.get_html(&path).await;
        assert_eq!(status, 200, "{path}");
        assert!(page.contains("Tutorial app"));
        assert!(!page.contains(&secret), "{path} shows the secret");
        assert!(secret_on(&page).is_none(), "{path}");
    }

    // Regenerating replaces it: the old one stops working.
    let path = format!("/admin/applications/{client_id}");
    let response = admin.submit(&path, &format!("{path}/secret"), &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (_, html) = admin.get_html(&location(&response)).await;
    let new_secret = secret_on(&html).expect("new secret");
    assert_ne!(new_secret, secret);
    let id = client_id.clone();
    let client = app
        .state
        .db
        .run(move |conn| provider::storage::clients::find(conn, &id))
        .await
        .expect("query")
        .expect("client");
    assert!(client.verify_secret(&new_secret));
    assert!(!client.verify_secret(&secret));
}

#[tokio::test]
async fn admin_edits_and_deletes_an_application() {
    let app = spawn_app().await;
    let admin = app.admin_browser().await;
    let path = format!("/admin/applications/{CLIENT_ID}");
    let (_, page) = admin.get_html(&path).await;
    assert_eq!(input_value(&page, "name").as_deref(), Some("Web app"));
    let response = admin
        .submit(
            &path,
            &path,
            &[
                ("name", "Renamed"),
                ("client_type", "confidential"),
                (
                    "redirect_uris",
                    &format!("{REDIRECT_URI}\nhttps://app.example/cb"),
                ),
                ("algorithm", "ES256"),
                ("skip_authorization", "on"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let client = app
        .state
        .db
        .run(|conn| provider::storage::clients::find(conn, CLIENT_ID))
        .await
        .expect("query")
        .expect("client");
    assert_eq!(client.name, "Renamed");
    assert_eq!(client.redirect_uris.len(), 2);
    assert_eq!(client.id_token_signed_response_alg.as_str(), "ES256");
    assert!(client.skip_authorization);
    assert!(!client.can_introspect, "off unless checked");
    assert!(
        client.verify_secret(crate::helpers::CLIENT_SECRET),
        "secret kept"
    );

    // Registered as a resource server: the checkbox sets the flag and shows checked again.
    let response = admin
        .submit(
            &path,
            &path,
            &[
                ("name", "Renamed"),
                ("client_type", "confidential"),
                ("redirect_uris", REDIRECT_URI),
                ("algorithm", "RS256"),
                ("can_introspect", "on"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let client = app
        .state
        .db
        .run(|conn| provider::storage::clients::find(conn, CLIENT_ID))
        .await
        .expect("query")
        .expect("client");
    assert!(client.can_introspect);
    let (_, page) = admin.get_html(&path).await;
    assert!(
        page.contains("name=\"can_introspect\" checked"),
        "checkbox shown checked"
    );

    // An http redirect URI to a remote host is refused with a message, nothing saved.
    let response = admin
        .submit(
            &path,
            &path,
            &[
                ("name", "Broken"),
                ("client_type", "confidential"),
                ("redirect_uris", "http://evil.example/cb"),
                ("algorithm", "RS256"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(
        response
            .text()
            .await
            .expect("body")
            .contains("must use https")
    );

    let response = admin.submit(&path, &format!("{path}/delete"), &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let gone = app
        .state
        .db
        .run(|conn| provider::storage::clients::find(conn, CLIENT_ID))
        .await
        .expect("query");
    assert!(gone.is_none());
}

#[tokio::test]
async fn non_admins_cannot_reach_the_admin_site() {
    let app = spawn_app().await;
    // Signed out: sent to the login page, coming back afterwards.
    let anonymous = app.new_browser();
    let response = anonymous.get("/admin/applications").await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/login?next=%2Fadmin%2Fapplications");
    let response = anonymous
        .post_form("/admin/applications", &[("name", "x")])
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);

    // Signed in without the admin flag: 403 everywhere, and posts change nothing.
    let user = app.user_browser().await;
    for path in [
        "/admin",
        "/admin/applications",
        "/admin/users",
        "/admin/keys",
        "/admin/applications/new",
    ] {
        let response = user.get(path).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
    }
    let token = user.csrf_token("/logout").await;
    let response = user
        .post_form(
            "/admin/applications",
            &[
                ("csrf_token", token.as_str()),
                ("name", "Sneaky"),
                ("client_type", "confidential"),
                ("redirect_uris", "https://app.example/cb"),
                ("algorithm", "RS256"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let count = app
        .state
        .db
        .run(|conn| provider::storage::clients::list(conn).map(|l| l.len()))
        .await
        .expect("query");
    assert_eq!(count, 1);
}

#[tokio::test]
async fn admin_forms_without_or_with_a_wrong_csrf_token_are_refused() {
    let app = spawn_app().await;
    let admin = app.admin_browser().await;
    let fields = [
        ("name", "No token"),
        ("client_type", "confidential"),
        ("redirect_uris", "https://app.example/cb"),
        ("algorithm", "RS256"),
    ];
    let response = admin.post_form("/admin/applications", &fields).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let mut with_wrong = fields.to_vec();
    with_wrong.push(("csrf_token", "wrong"));
    let response = admin.post_form("/admin/applications", &with_wrong).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    for path in [
        format!("/admin/applications/{CLIENT_ID}/delete"),
        format!("/admin/applications/{CLIENT_ID}/secret"),
        "/admin/keys/rotate".to_owned(),
    ] {
        let response = admin.post_form(&path, &[("algorithm", "RS256")]).await;
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
    }
    let (count, keys) = app
        .state
        .db
        .run(|conn| -> Result<_, provider::storage::StorageError> {
            Ok((
                provider::storage::clients::list(conn)?.len(),
                provider::storage::signing_keys::list(conn)?.len(),
            ))
        })
        .await
        .expect("query");
    assert_eq!(count, 1, "nothing created or deleted");
    assert_eq!(keys, 2, "nothing rotated");
    let client = app
        .state
        .db
        .run(|conn| provider::storage::clients::find(conn, CLIENT_ID))
        .await
        .expect("query")
        .expect("client");
    assert!(
        client.verify_secret(crate::helpers::CLIENT_SECRET),
        "secret unchanged"
    );
}

#[tokio::test]
async fn admin_manages_users() {
    let app = spawn_app().await;
    let admin = app.admin_browser().await;
    let response = admin
        .submit(
            "/admin/users/new",
            "/admin/users",
            &[
                ("username", "bob"),
                ("password", "bob-password-123"),
                ("email", "bob@example.com"),
                ("given_name", "Bob"),
                ("family_name", "Builder"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let bob_page = location(&response);
    assert!(bob_page.starts_with("/admin/users/"));
    let bob = app.new_browser();
    assert_eq!(
        bob.login("bob", "bob-password-123").await.status(),
        StatusCode::SEE_OTHER
    );

    // A taken username is refused with a message.
    let response = admin
        .submit(
            "/admin/users/new",
            "/admin/users",
            &[("username", "bob"), ("password", "another-password")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(
        response
            .text()
            .await
            .expect("body")
            .contains("a user with this username already exists")
    );

    // Edit, set a password, deactivate.
    let response = admin
        .submit(
            &bob_page,
            &bob_page,
            &[
                ("email", "robert@example.com"),
                ("given_name", "Robert"),
                ("family_name", "B"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (_, page) = admin.get_html(&bob_page).await;
    assert_eq!(
        input_value(&page, "email").as_deref(),
        Some("robert@example.com")
    );

    let response = admin
        .submit(
            &bob_page,
            &format!("{bob_page}/password"),
            &[("password", "new-password-456")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        app.new_browser()
            .login("bob", "bob-password-123")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.new_browser()
            .login("bob", "new-password-456")
            .await
            .status(),
        StatusCode::SEE_OTHER
    );

    let response = admin
        .submit(
            &bob_page,
            &format!("{bob_page}/active"),
            &[("active", "false")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        app.new_browser()
            .login("bob", "new-password-456")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    // A session from before the deactivation no longer counts either.
    let (_, home) = bob.get_html("/").await;
    assert!(!home.contains("signed in as"));

    let (_, list) = admin.get_html("/admin/users").await;
    assert!(list.contains("bob") && list.contains("deactivated") && list.contains(USER_USERNAME));
    let _ = USER_PASSWORD;
}

#[tokio::test]
async fn admin_sees_and_revokes_grants_and_consents() {
    use provider::storage::grants;
    let app = spawn_app().await;
    let alice = app
        .state
        .db
        .run(|conn| provider::storage::users::find_by_username(conn, USER_USERNAME))
        .await
        .expect("query")
        .expect("alice");
    let user_id = alice.id.clone();
    app.state
        .db
        .run(move |conn| -> Result<(), provider::storage::StorageError> {
            let at = oidc_core::unix_now();
            diesel::RunQueryDsl::execute(
                diesel::insert_into(provider::storage::schema::grants::table).values(
                    grants::Grant {
                        id: "grant-1".into(),
                        user_id: user_id.clone(),
                        client_id: CLIENT_ID.into(),
                        scope: "openid profile".parse().unwrap(),
                        auth_time: at,
                        created_at: at,
                        revoked_at: None,
                        session_id: None,
                        amr: "pwd".into(),
                        acr: "pwd".into(),
                    },
                ),
                conn,
            )?;
            grants::upsert_consent(
                conn,
                &user_id,
                CLIENT_ID,
                &"openid profile".parse().unwrap(),
                at,
            )?;
            Ok(())
        })
        .await
        .expect("seed");
    let admin = app.admin_browser().await;
    let page_path = format!("/admin/users/{}", alice.id);
    let (_, page) = admin.get_html(&page_path).await;
    assert!(page.contains("Web app") && page.contains("openid profile"));
    assert!(csrf_token(&page).is_some());

    let response = admin
        .submit(
            &page_path,
            &format!("{page_path}/grants/grant-1/revoke"),
            &[],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let response = admin
        .submit(
            &page_path,
            &format!("{page_path}/consents/{CLIENT_ID}/delete"),
            &[],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let user_id = alice.id.clone();
    let (grant, consents) = app
        .state
        .db
        .run(move |conn| -> Result<_, provider::storage::StorageError> {
            Ok((
                grants::find_grant(conn, "grant-1")?,
                grants::list_consents_for_user(conn, &user_id)?,
            ))
        })
        .await
        .expect("query");
    assert!(grant.expect("grant").revoked_at.is_some());
    assert!(consents.is_empty());
}

#[tokio::test]
async fn admin_rotates_and_retires_keys() {
    let app = spawn_app().await;
    let admin = app.admin_browser().await;
    let before = app
        .state
        .keys
        .active(oidc_core::jose::Algorithm::RS256)
        .expect("key");
    let response = admin
        .submit(
            "/admin/keys",
            "/admin/keys/rotate",
            &[("algorithm", "RS256")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let after = app
        .state
        .keys
        .active(oidc_core::jose::Algorithm::RS256)
        .expect("key");
    assert_ne!(before.kid(), after.kid());
    let jwks = app.state.keys.jwks();
    assert!(jwks.find(before.kid()).is_some(), "old key still published");
    assert!(jwks.find(after.kid()).is_some());

    // The active key cannot be retired; the old one can, and leaves the JWKS.
    let response = admin
        .submit(
            "/admin/keys",
            &format!("/admin/keys/{}/retire", after.kid()),
            &[],
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let response = admin
        .submit(
            "/admin/keys",
            &format!("/admin/keys/{}/retire", before.kid()),
            &[],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(app.state.keys.jwks().find(before.kid()).is_none());
    let (_, page) = admin.get_html("/admin/keys").await;
    assert!(page.contains("retired"));
}

#[tokio::test]
async fn admin_registers_a_public_application_without_a_secret() {
    let app = spawn_app().await;
    let admin = app.admin_browser().await;
    let response = admin
        .submit(
            "/admin/applications/new",
            "/admin/applications",
            &[
                ("client_id", "spa"),
                ("name", "Single page app"),
                ("client_type", "public"),
                ("redirect_uris", "https://spa.example/cb"),
                ("algorithm", "ES256"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let (_, html) = admin.get_html(&location(&response)).await;
    assert!(secret_on(&html).is_none());
    assert!(html.contains("public application"));
    let client = app
        .state
        .db
        .run(|conn| provider::storage::clients::find(conn, "spa"))
        .await
        .expect("query")
        .expect("client");
    assert!(client.secret_hash.is_none() && !client.is_confidential());
    // Regenerating a secret makes no sense for it.
    let response = admin
        .submit(
            "/admin/applications/spa",
            "/admin/applications/spa/secret",
            &[],
        )
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn an_admin_cannot_lock_themselves_out() {
    let app = spawn_app().await;
    let admin = app.admin_browser().await;
    let me = app
        .state
        .db
        .run(|conn| {
            provider::storage::users::find_by_username(conn, crate::helpers::ADMIN_USERNAME)
        })
        .await
        .expect("query")
        .expect("admin");
    let page = format!("/admin/users/{}", me.id);
    let response = admin
        .submit(&page, &format!("{page}/active"), &[("active", "false")])
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let response = admin
        .submit(&page, &page, &[("email", "admin@example.com")])
        .await;
    assert_eq!(
        response.status(),
        StatusCode::BAD_REQUEST,
        "dropping own admin flag"
    );
    assert_eq!(admin.get("/admin").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn admin_cannot_create_a_user_whose_username_or_email_differs_only_by_case() {
    let app = spawn_app().await;
    let admin = app.admin_browser().await;
    let refused = |fields: Vec<(&'static str, &'static str)>, message: &'static str| {
        let admin = admin.clone();
        async move {
            let response = admin
                .submit("/admin/users/new", "/admin/users", &fields)
                .await;
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{fields:?}");
            let body = crate::helpers::page_text(&response.text().await.expect("body"));
            assert!(body.contains(message), "{fields:?}: {body}");
        }
    };
    let username_taken = "a user with this username already exists";
    for username in ["ALICE", "Alice", "\u{ff41}\u{ff4c}\u{ff49}\u{ff43}\u{ff45}"] {
        refused(
            vec![("username", username), ("password", "another-password")],
            username_taken,
        )
        .await;
    }
    let email_taken = "a user with this e-mail address already exists";
    refused(
        vec![
            ("username", "alice2"),
            ("password", "another-password"),
            ("email", "ALICE@Example.COM"),
        ],
        email_taken,
    )
    .await;
    let count = app
        .state
        .db
        .run(provider::storage::users::count)
        .await
        .expect("count");
    assert_eq!(count, 2, "nothing was created");

    // Changing an e-mail address to another user's (in another case) is refused the same way.
    let response = admin
        .submit(
            "/admin/users/new",
            "/admin/users",
            &[
                ("username", "bob"),
                ("password", "bob-password-123"),
                ("email", "bob@example.com"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let bob_page = location(&response);
    let response = admin
        .submit(&bob_page, &bob_page, &[("email", "Alice@example.com")])
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body = crate::helpers::page_text(&response.text().await.expect("body"));
    assert!(body.contains(email_taken), "{body}");
}

#[tokio::test]
async fn every_admin_route_refuses_anyone_but_an_administrator() {
    let app = spawn_app().await;
    let anonymous = app.new_browser();
    let user = app.user_browser().await;
    let token = user.csrf_token("/logout").await;
    let routes = provider::admin::routes();
    assert!(routes.len() > 20, "{routes:?}");
    for (method, path) in routes {
        // Placeholders get a value that names nothing: the refusal comes before any lookup.
        let path = path
            .split('/')
            .map(|segment| {
                if segment.starts_with('{') {
                    "x"
                } else {
                    segment
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        let send = |browser: &Browser| {
            let request = if method == actix_web::http::Method::GET {
                browser.client.get(app.url(&path))
            } else {
                browser
                    .client
                    .post(app.url(&path))
                    .form(&[("csrf_token", token.as_str())])
            };
            request.send()
        };
        let response = send(&anonymous).await.expect("request");
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{method} {path}");
        assert!(
            location(&response).starts_with("/login?next="),
            "{method} {path}"
        );
        let response = send(&user).await.expect("request");
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{method} {path}");
    }
}
