//! Herald's HTTP interface (`docs/protocol.md` 16.1, 16.2): the JSON API
//! under `/api/v1`, Prometheus metrics at `/metrics`, `/healthz`, and the
//! console's page at `/`.
//!
//! It is served with axum on the broker's own tokio runtime, and knows the
//! broker only through [`herald_server::Admin`]: reads are one request
//! message to the broker task, answered from the state it owns; changes
//! (`PUT` a topic, `POST` an event, `DELETE` a subscription) run as
//! commands of a per-request pseudo-connection, so an HTTP publish obeys
//! exactly the durability rules of `pub`. Nothing here holds broker state
//! or a lock around it.
//!
//! - [`api`]: the `/api/v1` handlers.
//! - `console`: the web console's embedded files at `/` and `/console/`.
//! - [`error`]: the `{"error","message"}` shape and status codes.
//! - [`metrics`]: the Prometheus text of one snapshot.
//! - [`auth`]: HTTP basic authentication and the permissions of section
//!   15, one middleware before every route (open when no users are
//!   configured).
//! - `tls`: the listener that serves HTTPS with the broker's certificate.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod api;
pub mod auth;
mod console;
pub mod error;
pub mod metrics;
mod tls;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use herald_server::auth::Authenticator;
use herald_server::{Admin, Phase};
use std::future::Future;
use std::sync::Arc;

pub use error::ApiError;

/// The server's version, as `/api/v1/overview` and `herald_build_info` give it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// What the HTTP side needs besides the [`Admin`] handle.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Largest request body accepted, in bytes: an event body obeys the
    /// protocol's line limit (`--max-line-bytes`).
    pub max_body_bytes: usize,
    /// The users (`None`: no authentication, every route open).
    pub auth: Option<Arc<Authenticator>>,
    /// HTTPS with this configuration (the protocol listener's); `None`:
    /// plain HTTP.
    pub tls: Option<Arc<herald_server::rustls::ServerConfig>>,
}

impl Settings {
    /// Plain HTTP with no users and the given body limit.
    pub fn new(max_body_bytes: usize) -> Settings {
        Settings {
            max_body_bytes,
            auth: None,
            tls: None,
        }
    }
}

#[derive(Clone)]
pub(crate) struct AppState {
    pub admin: Admin,
}

/// The whole HTTP interface as an axum router.
pub fn router(admin: Admin, settings: &Settings) -> Router {
    let api = api::routes();
    Router::new()
        .merge(console::routes())
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics::handler))
        .nest("/api/v1", api)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // An event body obeys the line limit, as the `pub` line would.
        .layer(DefaultBodyLimit::max(settings.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(
            settings.auth.clone().map(auth::HttpAuth::new),
            auth::require,
        ))
        .with_state(AppState { admin })
}

/// Serves the HTTP interface on `listener` until `shutdown` resolves.
///
/// # Errors
/// If accepting connections fails for good.
pub async fn serve(
    listener: tokio::net::TcpListener,
    admin: Admin,
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Logged at once: `/healthz` answers (503) while the log recovers.
    // Not a `listening` line: tools take that word to mean the broker
    // serves, and a broker that fails recovery never says it.
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(http_addr = %addr, "http bound");
    }
    let app = router(admin, &settings);
    match settings.tls {
        None => {
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
        }
        Some(config) => {
            axum::serve(tls::TlsListener::new(listener, config), app)
                .with_graceful_shutdown(shutdown)
                .await
        }
    }
}

async fn healthz(State(state): State<AppState>) -> Response {
    match state.admin.phase() {
        Phase::Serving => {
            ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "ok").into_response()
        }
        Phase::Starting => ApiError::unavailable("recovering the log").into_response(),
        Phase::Stopping => ApiError::unavailable("shutting down").into_response(),
    }
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such path")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this path does not take that method",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn get(addr: std::net::SocketAddr, path: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn before_the_broker_serves_health_and_api_are_503() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let admin = Admin::new();
        assert_eq!(admin.phase(), Phase::Starting);
        let settings = Settings::new(1024);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(listener, admin, settings, async {
            let _ = stopped.await;
        }));
        for path in ["/healthz", "/api/v1/overview", "/api/v1/topics", "/metrics"] {
            let response = get(addr, path).await;
            assert!(response.starts_with("HTTP/1.1 503"), "{path}: {response}");
            assert!(
                response.contains(r#""error":"unavailable""#),
                "{path}: {response}"
            );
        }
        // The console page needs no broker.
        assert!(get(addr, "/").await.starts_with("HTTP/1.1 200"));
        let _ = stop.send(());
        server.await.unwrap().unwrap();
    }
}
