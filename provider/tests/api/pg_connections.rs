//! The PostgreSQL connection pool, whatever `PROVIDER_TEST_DATABASE` says: connections the
//! server closed are replaced, not handed out broken.

use diesel::prelude::*;
use reqwest::StatusCode;

use crate::helpers::{USER_PASSWORD, USER_USERNAME, postgres, spawn_app_with};

#[derive(QueryableByName)]
struct Ended {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

#[tokio::test]
async fn connections_the_server_closed_are_replaced_and_requests_go_on() {
    let url = postgres::fresh_database()
        .await
        .expect("a PostgreSQL database");
    let app = spawn_app_with({
        let url = url.clone();
        move |s| {
            s.database_url = url;
            s.secret_key = Some(provider::config::CookieSecret::generate());
        }
    })
    .await;
    // Every pooled connection in use once, so the pool holds several.
    for _ in 0..3 {
        let response = app.new_browser().login(USER_USERNAME, USER_PASSWORD).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
    }
    // What a restart of the server (or a failover) does to the open connections.
    let mut admin = diesel::PgConnection::establish(&url).expect("connect");
    let ended = diesel::sql_query(
        "SELECT count(pg_terminate_backend(pid))::bigint AS n FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .get_result::<Ended>(&mut admin)
    .expect("terminate");
    assert!(ended.n >= 1, "the provider had connections open");
    for _ in 0..3 {
        let response = app.new_browser().login(USER_USERNAME, USER_PASSWORD).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
    }
}
