//! A database that cannot be reached is a fault of the moment, not a bug: requests that failed
//! because of it are answered `503 Service Unavailable` with `Retry-After` (clients and load
//! balancers retry), instead of the 500 that a failed query otherwise gives.
//!
//! The storage layer marks the request whose query failed for want of a database
//! ([`note`]); the middleware turns that request's 500 into a 503. Handlers keep returning
//! their usual errors, and a 500 without such a mark (a bug) stays a 500. Nothing is
//! half-written: every write runs in a transaction, which the database rolls back when the
//! connection is lost.

use std::cell::Cell;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{StatusCode, header};
use actix_web::middleware::Next;
use actix_web::{Error, HttpResponse};
use diesel::result::{DatabaseErrorKind, Error as QueryError};

use crate::pages::error_page;
use crate::storage::StorageError;

/// Seconds a client is asked to wait before trying again.
pub const RETRY_AFTER_SECS: u64 = 5;

tokio::task_local! {
    /// Set when a query of the current request failed because the database was unavailable.
    static DATABASE_LOST: Cell<bool>;
}

/// Records that a query of the current request failed because the database is gone (the
/// storage layer found its connection dead, or none could be had). Outside a request it does
/// nothing.
pub fn database_lost() {
    let _ = DATABASE_LOST.try_with(|lost| lost.set(true));
}

/// Records that the current request met `error`, if it says the database is unreachable.
/// Outside a request (background tasks, the command line) it does nothing.
pub fn note(error: &StorageError) {
    if is_unavailable(error) {
        let _ = DATABASE_LOST.try_with(|lost| lost.set(true));
    }
}

/// Whether `error` means the database could not be reached or went away (as opposed to a
/// query that is wrong, or a constraint that refused a value).
pub fn is_unavailable(error: &StorageError) -> bool {
    match error {
        StorageError::Pool(_) | StorageError::Connect(_) => true,
        StorageError::Query(error) => query_unavailable(error),
        StorageError::Task(message) => message_says_unavailable(message),
        StorageError::Migration(_) | StorageError::Corrupt(_) => false,
    }
}

fn query_unavailable(error: &QueryError) -> bool {
    match error {
        QueryError::DatabaseError(kind, info) => match kind {
            DatabaseErrorKind::ClosedConnection
            | DatabaseErrorKind::UnableToSendCommand
            | DatabaseErrorKind::SerializationFailure => true,
            _ => message_says_unavailable(info.message()),
        },
        QueryError::BrokenTransactionManager => true,
        _ => false,
    }
}

/// Messages of libpq and SQLite for a database that is gone, shutting down or busy beyond the
/// busy timeout; they carry no error code of their own through diesel.
fn message_says_unavailable(message: &str) -> bool {
    const MARKS: [&str; 9] = [
        "terminating connection",
        "server closed the connection",
        "no connection to the server",
        "could not connect",
        "connection refused",
        "the database system is shutting down",
        "the database system is starting up",
        "database is locked",
        "could not receive data from server",
    ];
    let message = message.to_ascii_lowercase();
    MARKS.iter().any(|mark| message.contains(mark))
}

/// Middleware: a request that failed with 500 after its database went away is answered 503
/// with `Retry-After`, in the format of the endpoint (JSON for the OAuth APIs, a page otherwise).
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let (response, lost) = DATABASE_LOST
        .scope(Cell::new(false), async move {
            let response = next.call(req).await;
            (response, DATABASE_LOST.with(Cell::get))
        })
        .await;
    let response = response?;
    if !(lost && response.status() == StatusCode::INTERNAL_SERVER_ERROR) {
        return Ok(response.map_into_boxed_body());
    }
    let json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("json"));
    tracing::warn!(
        path = response.request().path(),
        "database unavailable: answered 503, retry after {RETRY_AFTER_SECS} s"
    );
    let mut answer = if json {
        HttpResponse::ServiceUnavailable().json(serde_json::json!({
            "error": "temporarily_unavailable",
            "error_description": "The service is temporarily unavailable. Try again shortly.",
        }))
    } else {
        error_page(
            StatusCode::SERVICE_UNAVAILABLE,
            "Temporarily unavailable",
            "The service cannot reach its database right now. Try again in a few seconds.",
        )
    };
    let headers = answer.headers_mut();
    headers.insert(header::RETRY_AFTER, RETRY_AFTER_SECS.into());
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    Ok(response.into_response(answer))
}

#[cfg(test)]
mod tests {
    use actix_web::middleware::from_fn;
    use actix_web::test as http;
    use actix_web::{App, web};

    use super::*;

    fn lost() -> StorageError {
        StorageError::Connect(diesel::ConnectionError::BadConnection(
            "connection to server at \"127.0.0.1\", port 5432 failed: Connection refused".into(),
        ))
    }

    async fn failing_json(kind: web::Path<String>) -> HttpResponse {
        match kind.as_str() {
            "lost" => note(&lost()),
            "constraint" => note(&StorageError::Corrupt("bad json".into())),
            _ => {}
        }
        HttpResponse::InternalServerError().json(serde_json::json!({"error": "server_error"}))
    }

    async fn failing_page() -> HttpResponse {
        note(&lost());
        error_page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            "",
        )
    }

    /// A request that noted a lost database but recovered (e.g. answered from what it had).
    async fn recovered() -> HttpResponse {
        note(&lost());
        HttpResponse::Ok().body("fine")
    }

    async fn call(path: &str) -> ServiceResponse {
        let app = http::init_service(
            App::new()
                .wrap(from_fn(middleware))
                .route("/json/{kind}", web::get().to(failing_json))
                .route("/page", web::get().to(failing_page))
                .route("/recovered", web::get().to(recovered)),
        )
        .await;
        http::call_service(&app, http::TestRequest::get().uri(path).to_request()).await
    }

    #[actix_web::test]
    async fn a_lost_database_turns_a_500_into_a_503_with_retry_after() {
        let res = call("/json/lost").await;
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(res.headers().get(header::RETRY_AFTER).unwrap(), "5");
        assert_eq!(
            res.headers().get(header::CACHE_CONTROL).unwrap(),
            "no-store"
        );
        let body: serde_json::Value = http::read_body_json(res).await;
        assert_eq!(body["error"], "temporarily_unavailable");

        let res = call("/page").await;
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(res.headers().contains_key(header::RETRY_AFTER));
        let body = http::read_body(res).await;
        assert!(String::from_utf8_lossy(&body).contains("Temporarily unavailable"));
    }

    #[actix_web::test]
    async fn other_failures_stay_500_and_successes_stay_untouched() {
        for path in ["/json/none", "/json/constraint"] {
            let res = call(path).await;
            assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR, "{path}");
            assert!(!res.headers().contains_key(header::RETRY_AFTER), "{path}");
        }
        let res = call("/recovered").await;
        assert_eq!(res.status(), StatusCode::OK);
    }

    #[test]
    fn unavailable_errors_are_told_from_query_errors() {
        let db_error = |kind, message: &str| {
            StorageError::Query(QueryError::DatabaseError(
                kind,
                Box::new(message.to_owned()),
            ))
        };
        assert!(is_unavailable(&lost()));
        assert!(is_unavailable(&db_error(
            DatabaseErrorKind::ClosedConnection,
            "server closed the connection unexpectedly"
        )));
        assert!(is_unavailable(&db_error(
            DatabaseErrorKind::Unknown,
            "FATAL: terminating connection due to administrator command"
        )));
        assert!(is_unavailable(&db_error(
            DatabaseErrorKind::Unknown,
            "database is locked"
        )));
        assert!(!is_unavailable(&db_error(
            DatabaseErrorKind::UniqueViolation,
            "duplicate key value violates unique constraint"
        )));
        assert!(!is_unavailable(&StorageError::Query(QueryError::NotFound)));
        assert!(!is_unavailable(&StorageError::Corrupt("x".into())));
    }
}
