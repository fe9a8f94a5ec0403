//! The settings as read from an environment.

use std::collections::HashMap;
use std::path::PathBuf;

use super::*;

fn settings(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Settings::from_lookup(|name| map.get(name).cloned())
}

#[test]
fn defaults_are_usable() {
    let s = settings(&[]).expect("defaults");
    assert_eq!(s.issuer, "http://localhost:8000");
    assert_eq!(s.addr, "127.0.0.1:8000");
    assert_eq!(s.bcrypt_cost, 12);
    assert_eq!(s.code_ttl_secs, 60);
    assert_eq!(s.refresh_token_ttl_secs, 30 * 24 * 3600);
    assert!(s.secret_key.is_none());
    assert_eq!(s.metrics_addr, None, "no metrics listener unless asked for");
    assert_eq!(s.bootstrap, Bootstrap::default());
}

#[test]
fn errors_name_the_setting() {
    for (name, value) in [
        ("PROVIDER_BCRYPT_COST", "twelve"),
        ("PROVIDER_BCRYPT_COST", "3"),
        ("PROVIDER_ISSUER", "not a url"),
        ("PROVIDER_ISSUER", "http://localhost:8000/"),
        ("PROVIDER_SECRET_KEY", "too-short"),
        ("PROVIDER_CODE_TTL_SECS", "0"),
        ("PROVIDER_ACCESS_TOKEN_TTL_SECS", "-5"),
        ("PROVIDER_DATABASE_URL", ":memory:"),
        ("PROVIDER_TRUST_FORWARDED_FOR", "maybe"),
        ("PROVIDER_OFFLINE_ACCESS", "sometimes"),
        ("PROVIDER_REQUIRE_MFA_FOR_ADMINS", "maybe"),
        ("PROVIDER_METRICS_ADDR", "9100"),
        ("PROVIDER_METRICS_ADDR", "metrics.example:9100"),
        ("PROVIDER_SWEEP_INTERVAL_SECS", "0"),
        ("PROVIDER_SWEEP_INTERVAL_SECS", "86401"),
        ("PROVIDER_AUDIT_RETENTION_DAYS", "-1"),
        ("PROVIDER_AUDIT_RETENTION_DAYS", "36501"),
        ("PROVIDER_AUDIT_RETENTION_DAYS", "half a year"),
        ("PROVIDER_SESSION_IDLE_SECS", "59"),
        ("PROVIDER_SESSION_IDLE_SECS", "2592001"),
        ("PROVIDER_SESSION_MAX_SECS", "-1"),
        ("PROVIDER_BACKCHANNEL_MAX_ATTEMPTS", "0"),
        ("PROVIDER_SESSION_MAX_SECS", "34560001"),
    ] {
        let err = settings(&[(name, value)]).expect_err(name);
        assert_eq!(err.settings(), [name], "{err}");
        assert!(err.to_string().contains(name), "{err}");
    }
}

#[test]
fn database_url_schemes() {
    let key = CookieSecret::generate().to_base64();
    for url in [
        "postgres://user:hunter2@127.0.0.1:5432/provider",
        "postgresql://user@127.0.0.1:5432/provider",
        "POSTGRES://user@127.0.0.1/provider",
    ] {
        // PostgreSQL needs the shared cookie key: replicas have no common folder to keep one in.
        let err = settings(&[("PROVIDER_DATABASE_URL", url)]).expect_err(url);
        assert_eq!(err.settings(), ["PROVIDER_SECRET_KEY"], "{err}");
        assert!(err.to_string().contains("PostgreSQL"), "{err}");
        assert!(!err.to_string().contains("hunter2"), "{err}");

        let s = settings(&[
            ("PROVIDER_DATABASE_URL", url),
            ("PROVIDER_SECRET_KEY", &key),
        ])
        .expect(url);
        assert_eq!(s.database_target(), Target::Postgres(url.to_owned()));
    }
    assert_eq!(
        Target::parse("postgres://user:hunter2@db.internal:5432/provider")
            .unwrap()
            .redacted(),
        "postgres://user:***@db.internal:5432/provider"
    );
    for url in ["mysql://h/db", "file:provider.db", "https://example.com/db"] {
        let err = settings(&[("PROVIDER_DATABASE_URL", url)]).expect_err(url);
        assert_eq!(err.settings(), ["PROVIDER_DATABASE_URL"]);
        assert!(err.0[0].reason.contains("not supported"), "{err}");
    }
    for (url, path) in [
        ("provider.db", "provider.db"),
        ("./data/provider.db", "./data/provider.db"),
        (
            "/var/lib/provider/provider.db",
            "/var/lib/provider/provider.db",
        ),
        ("sqlite://data/provider.db", "data/provider.db"),
        ("sqlite:provider.db", "provider.db"),
        ("sqlite:///var/lib/p.db", "/var/lib/p.db"),
        ("C:\\data\\provider.db", "C:\\data\\provider.db"),
    ] {
        let s = settings(&[("PROVIDER_DATABASE_URL", url)]).expect(url);
        assert_eq!(s.database_path(), PathBuf::from(path));
        assert_eq!(s.database_target(), Target::Sqlite(PathBuf::from(path)));
    }
}

#[test]
fn secret_key_accepts_hex_and_base64() {
    let hex = "ab".repeat(64);
    assert_eq!(CookieSecret::parse(&hex).expect("hex").as_bytes().len(), 64);
    let b64 = CookieSecret::generate().to_base64();
    assert_eq!(CookieSecret::parse(&b64).expect("b64").as_bytes().len(), 64);
}

#[test]
fn bootstrap_is_read_and_checked() {
    let s = settings(&[
        ("PROVIDER_BOOTSTRAP_ADMIN_USERNAME", "admin"),
        ("PROVIDER_BOOTSTRAP_ADMIN_PASSWORD", "admin-password-123"),
        ("PROVIDER_BOOTSTRAP_CLIENT_ID", "webapp"),
        ("PROVIDER_BOOTSTRAP_CLIENT_SECRET", &"s".repeat(40)),
        (
            "PROVIDER_BOOTSTRAP_CLIENT_REDIRECT_URIS",
            "http://localhost:3000/cb https://app.example/cb",
        ),
    ])
    .expect("bootstrap");
    assert_eq!(s.bootstrap.admin.expect("admin").username, "admin");
    let client = s.bootstrap.client.expect("client");
    assert_eq!(client.redirect_uris.len(), 2);
    assert_eq!(client.name, "webapp");
    assert_eq!(client.can_introspect, None);
    let client_vars = [
        ("PROVIDER_BOOTSTRAP_CLIENT_ID", "api"),
        ("PROVIDER_BOOTSTRAP_CLIENT_SECRET", &"s".repeat(40)),
        (
            "PROVIDER_BOOTSTRAP_CLIENT_REDIRECT_URIS",
            "https://api.example/cb",
        ),
    ];
    let with = |value| {
        let mut vars = client_vars.to_vec();
        vars.push(("PROVIDER_BOOTSTRAP_CLIENT_INTROSPECT", value));
        settings(&vars)
    };
    let client = with("true").expect("introspect").bootstrap.client;
    assert_eq!(client.expect("client").can_introspect, Some(true));
    let err = with("sometimes").expect_err("bad flag");
    assert_eq!(err.settings(), ["PROVIDER_BOOTSTRAP_CLIENT_INTROSPECT"]);

    let err = settings(&[("PROVIDER_BOOTSTRAP_ADMIN_USERNAME", "admin")]).expect_err("pw");
    assert_eq!(err.settings(), ["PROVIDER_BOOTSTRAP_ADMIN_PASSWORD"]);
    let err = settings(&[
        ("PROVIDER_BOOTSTRAP_CLIENT_ID", "webapp"),
        ("PROVIDER_BOOTSTRAP_CLIENT_SECRET", "short"),
    ])
    .expect_err("secret");
    // The secret is too short, and no redirect URI is listed either: both are named.
    assert_eq!(
        err.settings(),
        [
            "PROVIDER_BOOTSTRAP_CLIENT_SECRET",
            "PROVIDER_BOOTSTRAP_CLIENT_REDIRECT_URIS"
        ]
    );
    let err = settings(&[
        ("PROVIDER_BOOTSTRAP_CLIENT_ID", "webapp"),
        ("PROVIDER_BOOTSTRAP_CLIENT_SECRET", &"s".repeat(40)),
        (
            "PROVIDER_BOOTSTRAP_CLIENT_REDIRECT_URIS",
            "http://evil.example/cb",
        ),
    ])
    .expect_err("http redirect");
    assert_eq!(err.settings(), ["PROVIDER_BOOTSTRAP_CLIENT_REDIRECT_URIS"]);
}

#[test]
fn every_bad_setting_is_reported_at_once_naming_each() {
    let err = settings(&[
        ("PROVIDER_BCRYPT_COST", "twelve"),
        ("PROVIDER_CODE_TTL_SECS", "0"),
        ("PROVIDER_ISSUER", "not a url"),
        ("PROVIDER_TRUST_FORWARDED_FOR", "maybe"),
        ("PROVIDER_LOG_FORMAT", "xml"),
        ("PROVIDER_BOOTSTRAP_USER_USERNAME", "alice"),
    ])
    .expect_err("bad settings");
    let mut named = err.settings();
    named.sort_unstable();
    assert_eq!(
        named,
        [
            "PROVIDER_BCRYPT_COST",
            "PROVIDER_BOOTSTRAP_USER_PASSWORD",
            "PROVIDER_CODE_TTL_SECS",
            "PROVIDER_ISSUER",
            "PROVIDER_LOG_FORMAT",
            "PROVIDER_TRUST_FORWARDED_FOR",
        ]
    );
    for name in named {
        assert!(err.to_string().contains(name), "{err}");
    }
}

#[test]
fn the_log_format_is_text_or_json() {
    assert_eq!(settings(&[]).unwrap().log_format, LogFormat::Text);
    let json = settings(&[("PROVIDER_LOG_FORMAT", "json")]).unwrap();
    assert_eq!(json.log_format, LogFormat::Json);
}

#[test]
fn admin_mfa_policy_values() {
    use super::AdminMfa;
    assert_eq!(
        settings(&[]).unwrap().require_mfa_for_admins,
        AdminMfa::Auto
    );
    for (value, expected) in [
        ("auto", AdminMfa::Auto),
        ("true", AdminMfa::Required),
        ("TRUE", AdminMfa::Required),
        ("false", AdminMfa::Off),
    ] {
        let read = settings(&[("PROVIDER_REQUIRE_MFA_FOR_ADMINS", value)]).expect(value);
        assert_eq!(read.require_mfa_for_admins, expected, "{value}");
    }
}
