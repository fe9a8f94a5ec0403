//! Every template renders (tera checks nothing at compile time).

use provider::pages::Templates;
use serde_json::json;

fn frame() -> serde_json::Value {
    json!({"csrf_token": "tok", "admin": "admin", "flash": "Saved.", "section": "home"})
}

fn account_frame() -> serde_json::Value {
    json!({"csrf_token": "tok", "username": "alice", "is_admin": true, "signed_in": true, "flash": "Saved.", "section": "profile"})
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
        "login_factor.html" => {
            json!({"csrf_token": "tok", "username": "alice", "totp": true, "passkey": true, "error": "Wrong code."})
        }
        "account/security.html" => {
            json!({"csrf_token": "tok", "username": "alice", "totp_enabled": true, "recovery_codes_left": 8, "passkey": false, "notice": "Note.", "error": null})
        }
        "account/totp_setup.html" => {
            json!({"csrf_token": "tok", "qr_svg": "<svg></svg>", "secret": "JBSWY3DPEHPK3PXP", "otpauth_uri": "otpauth://totp/x:alice?secret=JBSWY3DPEHPK3PXP", "error": null})
        }
        "account/recovery_codes.html" => {
            json!({"codes": ["abcde-fghjk", "mnpqr-stuvw"], "enrolled": true})
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
            "sessions": [{"id": "s", "user_agent": "Firefox", "address": "127.0.0.1", "created": "x", "last_seen": "y"}],
            "factors": {"any": true, "totp": true, "totp_since": "x", "recovery_codes": 9,
                "passkeys": [{"name": "YubiKey", "created": "x", "last_used": null}]}})
        }
        "admin/logout_deliveries.html" => json!({"frame": frame(), "deliveries": [
            {"client_id": "webapp", "uri": "https://a.example/bc", "attempts": 5, "last_error": "answered 500", "created": "x", "last_tried": "y"}
        ]}),
        "admin/audit.html" => json!({"frame": frame(),
            "query": {"user": "alice", "kind": "sign_in", "outcome": "", "client": "", "since": "", "until": "", "before_id": "", "limit": ""},
            "kinds": ["sign_in", "user_created"], "outcomes": ["succeeded", "failed"],
            "events": [{"id": 7, "at": "x", "kind": "sign_in", "outcome": "failed", "user_id": "u1", "username": "alice",
                "client_id": "webapp", "address": "127.0.0.1", "actor": "", "detail": "password"}],
            "older": "before_id=7"}),
        "admin/user_delete.html" => json!({"frame": frame(), "id": "1", "username": "alice"}),
        "admin/keys.html" => json!({"frame": frame(), "keys": [
            {"kid": "k1", "alg": "RS256", "status": "active", "created": "x", "rotated": null, "retired": null},
            {"kid": "k2", "alg": "RS256", "status": "published", "created": "x", "rotated": "y", "retired": null},
            {"kid": "k3", "alg": "ES256", "status": "retired", "created": "x", "rotated": "y", "retired": "z"}
        ]}),
        "account/passkeys.html" => {
            json!({"frame": account_frame(), "can_add": true,
                "message": "Your passkey was added.", "passkeys": [
                {"id": "cred", "name": "Laptop", "created_at": "x", "last_used_at": null},
                {"id": "cred2", "name": "Key", "created_at": "x", "last_used_at": "y"}
            ]})
        }
        "passkey_sign_in.html" => json!({"csrf_token": "tok", "next": "/"}),
        "passkey_factor.html" => json!({"csrf_token": "tok", "username": "alice"}),
        "account/layout.html" => json!({"frame": account_frame()}),
        "account/profile.html" => {
            json!({"frame": account_frame(), "username": "alice", "email_verified": false,
            "form": {"given_name": "Alice", "family_name": "Example", "email": "a@example.com"}, "error": "bad"})
        }
        "account/password.html" => {
            json!({"frame": account_frame(), "error": "wrong", "rule": "the password must be 8 to 256 characters"})
        }
        "account/applications.html" => json!({"frame": account_frame(), "applications": [
            {"client_id": "webapp", "name": "Web app", "revoke_path": "/account/applications/webapp/revoke",
             "consent": [{"name": "openid", "description": "Know who you are"}], "consent_updated": "x",
             "active_grants": 2, "last_issued": "y"},
            {"client_id": "other", "name": "Other", "revoke_path": "/account/applications/other/revoke",
             "consent": [], "consent_updated": null, "active_grants": 1, "last_issued": null}
        ]}),
        "account/sessions.html" => json!({"frame": account_frame(), "others": 1, "sessions": [
            {"id": "s1", "user_agent": "Firefox", "address": "127.0.0.1", "started": "x", "last_seen": "y", "current": true},
            {"id": "s2", "user_agent": "", "address": "::1", "started": "x", "last_seen": "y", "current": false}
        ]}),
        "account/events.html" => json!({"frame": account_frame(), "events": [
            {"at": "x", "what": "Sign-in", "outcome": "failed", "failed": true, "application": "webapp",
             "address": "127.0.0.1", "detail": "", "by_admin": false},
            {"at": "y", "what": "Password reset by an administrator", "outcome": "succeeded", "failed": false,
             "application": null, "address": "", "detail": "d", "by_admin": true}
        ]}),
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
