//! A deadline on request bodies.
//!
//! actix-web times out a request whose head is slow (`client_request_timeout`), but not one whose
//! body never arrives: a `Content-Length: 100` with three bytes sent holds a worker's request for
//! as long as the client keeps the connection open. This middleware reads every request body
//! before the handler runs, within a deadline and a size bound, and answers 408 (and closes the
//! connection) when the body is late, 413 when it is too large. Handlers then read the body
//! from memory, whatever extractor they use, so no route can forget the deadline.

use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::{ConnectionType, StatusCode, header};
use actix_web::{Error, HttpResponse, web};

/// How long a client may take to send a request body, and how large it may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyLimits {
    /// Time from the end of the request head to the end of its body.
    pub timeout: Duration,
    /// Largest body read; a larger one is answered 413 without reading the rest.
    pub max_bytes: usize,
}

/// The middleware: `App::new().wrap(BodyDeadline::new(limits))`.
#[derive(Debug, Clone, Copy)]
pub struct BodyDeadline {
    limits: BodyLimits,
}

impl BodyDeadline {
    /// Reads bodies within `limits`.
    pub fn new(limits: BodyLimits) -> Self {
        Self { limits }
    }
}

impl<S, B> Transform<S, ServiceRequest> for BodyDeadline
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Transform = BodyDeadlineService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(BodyDeadlineService {
            service: Rc::new(service),
            limits: self.limits,
        }))
    }
}

/// The service [`BodyDeadline`] wraps around the application.
pub struct BodyDeadlineService<S> {
    service: Rc<S>,
    limits: BodyLimits,
}

impl<S, B> Service<ServiceRequest> for BodyDeadlineService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error> + 'static,
    B: MessageBody + 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Error>>>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        Box::pin(read_body(req, Rc::clone(&self.service), self.limits))
    }
}

async fn read_body<S, B>(
    mut req: ServiceRequest,
    service: Rc<S>,
    limits: BodyLimits,
) -> Result<ServiceResponse<EitherBody<B>>, Error>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
{
    if !has_body(&req) {
        return service
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    }
    let payload = req.extract::<web::Payload>().await?;
    let read = tokio::time::timeout(limits.timeout, payload.to_bytes_limited(limits.max_bytes));
    let refusal = match read.await {
        Ok(Ok(Ok(bytes))) => {
            req.set_payload(Payload::from(bytes));
            return service
                .call(req)
                .await
                .map(ServiceResponse::map_into_left_body);
        }
        Err(_elapsed) => {
            tracing::debug!(path = req.path(), "request body not received in time");
            refuse(
                StatusCode::REQUEST_TIMEOUT,
                "The request body was not received in time.",
            )
        }
        Ok(Err(_too_large)) => refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            "The request body is too large.",
        ),
        Ok(Ok(Err(error))) => {
            tracing::debug!(path = req.path(), %error, "unreadable request body");
            refuse(
                StatusCode::BAD_REQUEST,
                "The request body could not be read.",
            )
        }
    };
    Ok(req.into_response(refusal).map_into_right_body())
}

/// Whether the head announces a body (a length above zero, or chunked encoding).
fn has_body(req: &ServiceRequest) -> bool {
    let headers = req.headers();
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|length| length.as_bytes() != b"0")
}

/// A plain-text refusal that closes the connection: the rest of the body may still be on its
/// way and must not be read as the next request.
fn refuse(status: StatusCode, message: &'static str) -> HttpResponse {
    let mut response = HttpResponse::build(status)
        .content_type("text/plain; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(message);
    response
        .head_mut()
        .set_connection_type(ConnectionType::Close);
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::{App, HttpServer};

    async fn echo(body: web::Bytes) -> HttpResponse {
        HttpResponse::Ok().body(body)
    }

    /// A server with the middleware on `127.0.0.1:0` and its port.
    fn server(limits: BodyLimits) -> (actix_web::dev::Server, u16) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("address").port();
        let server = HttpServer::new(move || {
            App::new()
                .wrap(BodyDeadline::new(limits))
                .route("/", web::post().to(echo))
                .route(
                    "/",
                    web::get().to(|| async { HttpResponse::Ok().body("get") }),
                )
        })
        .workers(1)
        .listen(listener)
        .expect("listen")
        .run();
        (server, port)
    }

    async fn exchange(port: u16, request: &[u8]) -> String {
        crate::testing::raw_exchange(port, request, Duration::from_secs(10))
            .await
            .expect("the server answers and closes within 10 s")
    }

    const LIMITS: BodyLimits = BodyLimits {
        timeout: Duration::from_millis(300),
        max_bytes: 64,
    };

    #[actix_web::test]
    async fn a_short_body_is_answered_408_and_the_connection_closed() {
        let (server, port) = server(LIMITS);
        let handle = server.handle();
        tokio::spawn(server);
        let answer = exchange(
            port,
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc",
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(
            answer.to_ascii_lowercase().contains("connection: close"),
            "{answer}"
        );
        handle.stop(false).await;
    }

    #[actix_web::test]
    async fn whole_bodies_reach_the_handler_and_large_ones_are_refused() {
        let (server, port) = server(LIMITS);
        let handle = server.handle();
        tokio::spawn(server);
        let answer = exchange(
            port,
            b"POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 5\r\n\r\nhello",
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("hello"), "{answer}");
        let chunked = exchange(
            port,
            b"POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        )
        .await;
        assert!(chunked.ends_with("abc"), "{chunked}");
        let large = format!(
            "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{}",
            "x".repeat(100)
        );
        let answer = exchange(port, large.as_bytes()).await;
        assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
        let get = exchange(
            port,
            b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(get.ends_with("get"), "{get}");
        handle.stop(false).await;
    }
}
