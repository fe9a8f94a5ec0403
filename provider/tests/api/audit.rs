//! The audit log: the admin page's filters and paging, bad filters, who may read it, and its
//! retention.

use std::time::Duration;

use oidc_core::unix_now as now;
use provider::storage::audit::{self, Event, Kind, Outcome};
use provider::storage::audit_query::{self, Filter};
use provider::storage::sweep;
use reqwest::StatusCode;

use crate::helpers::{TestApp, location, spawn_app};

const DAY: i64 = 86_400;

/// Records `event` at `at` directly in the database.
pub fn seed(app: &TestApp, event: &Event, at: i64) {
    let conn = &mut *app.state.db.conn().expect("connection");
    audit::record_at(conn, event, at).expect("record");
}

/// Every stored event matching `filter` (one page of at most 500).
pub fn stored(app: &TestApp, filter: Filter) -> Vec<audit::EventRow> {
    let conn = &mut *app.state.db.conn().expect("connection");
    audit_query::list(conn, &filter).expect("list").events
}

/// The ids of the events listed on an audit page, in page order.
fn ids_on(html: &str) -> Vec<i64> {
    html.split("data-id=\"")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap().parse().unwrap())
        .collect()
}

/// The href of the "older events" link, entities decoded.
fn older_link(html: &str) -> Option<String> {
    let start = html.find("id=\"older\" href=\"")? + "id=\"older\" href=\"".len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].replace("&amp;", "&"))
}

/// Six events: (id order) alice signs in at webapp, fails, bob throttled, a client created by
/// the admin, alice's password reset, and an old sign-in of alice from ten days ago.
fn seed_six(app: &TestApp) -> i64 {
    let t = now();
    seed(
        app,
        &Event::new(Kind::SignIn, Outcome::Succeeded)
            .with_user("alice-id", "alice")
            .with_client("webapp"),
        t - 10 * DAY,
    );
    seed(
        app,
        &Event::new(Kind::SignIn, Outcome::Succeeded)
            .with_user("alice-id", "alice")
            .with_client("webapp")
            .with_address("10.0.0.1"),
        t - 50,
    );
    seed(
        app,
        &Event::new(Kind::SignIn, Outcome::Failed).with_user("alice-id", "alice"),
        t - 40,
    );
    seed(
        app,
        &Event::new(Kind::SignIn, Outcome::Throttled).with_username("bob"),
        t - 30,
    );
    seed(
        app,
        &Event::new(Kind::ClientCreated, Outcome::Succeeded)
            .with_client("other")
            .with_actor("admin"),
        t - 20,
    );
    seed(
        app,
        &Event::new(Kind::PasswordReset, Outcome::Succeeded)
            .with_user("alice-id", "alice")
            .with_actor("admin"),
        t - 10,
    );
    t
}

/// The `kind`s of the events on the page at `path`, in order.
async fn kinds_at(app: &TestApp, admin: &crate::helpers::Browser, path: &str) -> Vec<String> {
    let (status, html) = admin.get_html(path).await;
    assert_eq!(status, StatusCode::OK, "{path}: {html}");
    let ids = ids_on(&html);
    let all = stored(app, Filter::default());
    ids.iter()
        .map(|id| {
            all.iter()
                .find(|e| e.id == *id)
                .expect("listed event")
                .kind
                .clone()
        })
        .collect()
}

#[tokio::test]
async fn the_audit_page_filters_by_user_kind_outcome_client_and_time_newest_first() {
    let app = spawn_app().await;
    let t = seed_six(&app);
    let admin = app.admin_browser().await;
    // The admin's own sign-in may be recorded too: filter it out by looking at seeded kinds.
    let (_, html) = admin.get_html("/admin/audit?user=alice").await;
    let ids = ids_on(&html);
    assert_eq!(ids.len(), 4, "{html}");
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");

    let kinds = kinds_at(&app, &admin, "/admin/audit?user=alice-id&kind=sign_in").await;
    assert_eq!(kinds, ["sign_in"; 3]);
    let by_outcome = kinds_at(&app, &admin, "/admin/audit?user=alice&outcome=failed").await;
    assert_eq!(by_outcome, ["sign_in"]);
    let by_client = kinds_at(&app, &admin, "/admin/audit?client=other").await;
    assert_eq!(by_client, ["client_created"]);
    let throttled = kinds_at(&app, &admin, "/admin/audit?user=bob&outcome=throttled").await;
    assert_eq!(throttled, ["sign_in"]);
    // Time range: the old sign-in only, by day and by unix seconds.
    let old_day = chrono::DateTime::from_timestamp(t - 10 * DAY, 0)
        .unwrap()
        .format("%Y-%m-%d")
        .to_string();
    let (_, html) = admin
        .get_html(&format!(
            "/admin/audit?user=alice&since={old_day}&until={old_day}"
        ))
        .await;
    assert_eq!(ids_on(&html).len(), 1, "{html}");
    let (_, html) = admin
        .get_html(&format!("/admin/audit?user=alice&since={}", t - 45))
        .await;
    assert_eq!(ids_on(&html).len(), 2, "{html}");
    // Empty fields, as the form sends them, filter nothing; the form shows what was asked.
    let (status, html) = admin
        .get_html("/admin/audit?user=&kind=&outcome=&client=other&since=&until=")
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids_on(&html).len(), 1);
    assert!(html.contains(r#"value="other""#));
}

#[tokio::test]
async fn the_audit_page_pages_by_id_with_a_cursor_keeping_the_filter() {
    let app = spawn_app().await;
    seed_six(&app);
    let admin = app.admin_browser().await;
    let mut path = "/admin/audit?user=alice&limit=3".to_owned();
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let (status, html) = admin.get_html(&path).await;
        assert_eq!(status, StatusCode::OK);
        let ids = ids_on(&html);
        assert!(ids.len() <= 3);
        seen.extend(ids);
        pages += 1;
        match older_link(&html) {
            Some(next) => {
                assert!(next.contains("user=alice"), "{next}");
                path = next;
            }
            None => break,
        }
    }
    assert_eq!(pages, 2);
    let expected: Vec<i64> = stored(
        &app,
        Filter {
            user: Some("alice".into()),
            ..Filter::default()
        },
    )
    .iter()
    .map(|e| e.id)
    .collect();
    assert_eq!(seen, expected);
    assert_eq!(seen.len(), 4);
}

#[tokio::test]
async fn bad_audit_filters_are_answered_with_a_400_page() {
    let app = spawn_app().await;
    let admin = app.admin_browser().await;
    let long = "x".repeat(300);
    for query in [
        "kind=nope".to_owned(),
        "outcome=maybe".to_owned(),
        "limit=0".to_owned(),
        "limit=100000".to_owned(),
        "limit=-1".to_owned(),
        "before_id=abc".to_owned(),
        "before_id=0".to_owned(),
        "before_id=99999999999999999999999".to_owned(),
        "since=yesterday".to_owned(),
        "until=2026-13-45".to_owned(),
        "since=-5".to_owned(),
        "until=99999999-01-01".to_owned(),
        format!("user={long}"),
        "kind=sign_in&kind=user_created".to_owned(),
    ] {
        let (status, html) = admin.get_html(&format!("/admin/audit?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert!(html.contains("Bad filter"), "{query}: {html}");
    }
}

#[tokio::test]
async fn only_administrators_see_the_audit_log_and_the_admin_nav_links_it() {
    let app = spawn_app().await;
    seed_six(&app);
    let user = app.user_browser().await;
    let (status, html) = user.get_html("/admin/audit").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(ids_on(&html).is_empty());
    let anonymous = app.new_browser().get("/admin/audit?user=alice").await;
    assert_eq!(anonymous.status(), StatusCode::SEE_OTHER);
    assert!(location(&anonymous).starts_with("/login?next="));

    let admin = app.admin_browser().await;
    let (status, html) = admin.get_html("/admin").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(r#"href="/admin/audit""#), "{html}");
}

#[tokio::test]
async fn the_sweep_removes_audit_events_past_their_retention_only() {
    let app = spawn_app().await;
    let t = now();
    for age_days in [400, 181, 179, 1] {
        seed(
            &app,
            &Event::new(Kind::KeyRotated, Outcome::Succeeded).with_detail(&age_days.to_string()),
            t - age_days * DAY,
        );
    }
    let kept = |app: &TestApp| -> Vec<String> {
        stored(
            app,
            Filter {
                kind: Some(Kind::KeyRotated),
                ..Filter::default()
            },
        )
        .into_iter()
        .map(|e| e.detail)
        .collect()
    };
    // 0 keeps everything.
    let swept = sweep::sweep(&app.state.db, t, 0, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(swept.audit_events, 0);
    assert_eq!(kept(&app), ["1", "179", "181", "400"]);
    // The default of 180 days: the two older ones go.
    assert_eq!(app.state.settings.audit_retention_days, 180);
    let swept = sweep::sweep(&app.state.db, t, 180, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(swept.audit_events, 2);
    assert_eq!(kept(&app), ["1", "179"]);
}

#[tokio::test]
async fn the_retention_sweep_deletes_in_bounded_batches() {
    let app = spawn_app().await;
    let t = now();
    {
        let conn = &mut *app.state.db.conn().expect("connection");
        provider::storage::write_transaction(conn, |conn| {
            for i in 0..(sweep::BATCH_ROWS * 2 + 3) {
                let event = Event::new(Kind::SignIn, Outcome::Failed).with_username("x");
                audit::record_at(conn, &event, t - 30 * DAY - i as i64)?;
            }
            audit::record_at(conn, &Event::new(Kind::SignIn, Outcome::Failed), t)
        })
        .expect("seed");
    }
    let swept = sweep::sweep(&app.state.db, t, 7, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(swept.audit_events, (sweep::BATCH_ROWS * 2 + 3) as u64);
    let left = stored(&app, Filter::default());
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].at, t);
}
