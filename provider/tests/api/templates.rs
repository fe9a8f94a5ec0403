//! Every template renders (tera checks nothing at compile time).

use provider::pages::Templates;
use serde_json::json;

fn frame() -> serde_json::Value {
    json!({"csrf_token": "tok", "admin": "admin", "flash": "Saved.", "section": "home"})
}

fn sample(name: &str) -> Option<serde_json::Value> {
    let user_form = json!({
        "username": "alice", "email": "a@example.com", "email_verified": "on",
        "given_name": "Alice", "family_name": "Example", "is_admin": null
    });
    let app_form = json!({
        "client_id": "webapp", "name": "Web app", "client_type": "confidential",
        "redirect_uris": "https://app.example/cb", "post_logout_redirect_uris": "",
        "refresh_tokens": "on", "skip_authorization": null, "algorithm": "RS256",
        "backchannel_logout_uri": "https://app.example/bc", "backchannel_logout_session_required": "on"
    });
    Some(match name {
        "base.html" => json!({}),
        "error.html" => json!({"status": 404, "title": "Not found", "message": "No such page."}),
        "login.html" => {
            json!({"csrf_token": "tok", "next": "/", "username": "alice", "error": "Incorrect username or password."})
        }
        "logout.html" => json!({"csrf_token": "tok", "signed_in": true}),
        "index.html" => {
            json!({"issuer": "http://localhost:8000", "user": {"username": "alice", "display_name": "Alice", "is_admin": true}})
        }
        "admin/layout.html" => json!({"frame": frame()}),
        "admin/index.html" => {
            json!({"frame": frame(), "applications": 1, "users": 2, "keys": 2, "issuer": "http://localhost:8000"})
        }
        "admin/applications.html" => json!({"frame": frame(), "applications": [
            {"id": "webapp", "name": "Web app", "client_type": "confidential", "redirect_uris": ["https://app.example/cb"], "created": "2026-11-27 10:00 UTC"}
        ]}),
        "admin/application_form.html" => {
            json!({"frame": frame(), "id": "webapp", "form": app_form, "error": "bad"})
        }
        "admin/application_secret.html" => {
            json!({"frame": frame(), "client_id": "webapp", "name": "Web app", "confidential": true, "client_secret": "s3cret", "created": true})
        }
        "admin/users.html" => json!({"frame": frame(), "users": [
            {"id": "1", "username": "alice", "name": "Alice", "email": "a@example.com", "is_admin": true, "is_active": false, "last_login": null}
        ]}),
        "admin/user_new.html" => json!({"frame": frame(), "form": user_form, "error": "bad"}),
        "admin/user_fields.html" => json!({"form": user_form}),
        "admin/user.html" => {
            json!({"frame": frame(), "id": "1", "form": user_form, "is_active": true, "is_self": false,
            "created": "2026-11-27 10:00 UTC", "last_login": null, "error": null,
            "grants": [{"id": "g", "client_id": "webapp", "client_name": "Web app", "scope": "openid", "created": "x", "revoked": null}],
            "consents": [{"client_id": "webapp", "client_name": "Web app", "scope": "openid", "updated": "x"}],
            "sessions": [{"id": "s", "user_agent": "Firefox", "address": "127.0.0.1", "created": "x", "last_seen": "y"}]})
        }
        "admin/logout_deliveries.html" => json!({"frame": frame(), "deliveries": [
            {"client_id": "webapp", "uri": "https://a.example/bc", "attempts": 5, "last_error": "answered 500", "created": "x", "last_tried": "y"}
        ]}),
        "admin/user_delete.html" => json!({"frame": frame(), "id": "1", "username": "alice"}),
        "admin/keys.html" => json!({"frame": frame(), "keys": [
            {"kid": "k1", "alg": "RS256", "status": "active", "created": "x", "rotated": null, "retired": null},
            {"kid": "k2", "alg": "RS256", "status": "published", "created": "x", "rotated": "y", "retired": null},
            {"kid": "k3", "alg": "ES256", "status": "retired", "created": "x", "rotated": "y", "retired": "z"}
        ]}),
        "account/passkeys.html" => {
            json!({"csrf_token": "tok", "username": "alice", "can_add": true,
                "message": "Your passkey was added.", "passkeys": [
                {"id": "cred", "name": "Laptop", "created_at": "x", "last_used_at": null},
                {"id": "cred2", "name": "Key", "created_at": "x", "last_used_at": "y"}
            ]})
        }
        "passkey_sign_in.html" => json!({"csrf_token": "tok", "next": "/"}),
        _ => return None,
    })
}

#[test]
fn every_template_renders() {
    let templates = Templates::load().expect("templates parse");
    let mut rendered = 0;
    for name in templates.names() {
        let Some(context) = sample(name) else {
            // The OAuth pages are rendered by their own endpoint tests.
            assert!(
                name.starts_with("oauth/"),
                "add a sample context for {name}"
            );
            continue;
        };
        let html = templates
            .render_to_string(name, &context)
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert!(!html.trim().is_empty(), "{name}");
        rendered += 1;
    }
    assert!(rendered >= 15, "rendered {rendered}");
}
