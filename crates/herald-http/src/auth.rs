//! HTTP basic authentication and permissions (`docs/protocol.md` 15,
//! 16.1): one middleware in front of every route.
//!
//! With users configured, every path but `/healthz` and `/metrics` (the
//! console's included) needs `Authorization: Basic` with a configured user
//! and its password: missing, `401 auth_required`; wrong, `401
//! auth_failed` (both with `WWW-Authenticate: Basic realm="herald"`, so a
//! browser asks). Then the protocol's permissions apply to the topic in the
//! path: `PUT` a topic and `POST` an event need publish permission; `GET` a
//! topic or its `peek` subscribe permission (a topic the user may not
//! subscribe to is `404 no_topic`, as `stats <topic>` is); a `peek` of
//! `sub=`/`group=` also needs the name; `DELETE` and `/connections` (other
//! users' peers and names) need `admin = true`; otherwise `403 forbidden`.
//! The user goes into the request's extensions, for handlers that filter
//! what they show (`GET /api/v1/topics`).
//!
//! argon2 is slow on purpose and a browser sends the header with every
//! request, so a successful header is remembered (in memory, a bounded
//! number of them) and later requests with the same header cost a lookup;
//! failures are never remembered.

use crate::error::ApiError;
use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use herald_proto::ErrorCode;
use herald_server::auth::{Authenticator, may_publish, may_subscribe, may_use_name};
use herald_server::users::User;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Authorization headers remembered as verified, at most.
const REMEMBERED_HEADERS: usize = 1024;

/// The users, and the headers already verified.
#[derive(Debug)]
pub struct HttpAuth {
    users: Arc<Authenticator>,
    verified: Mutex<HashMap<String, Arc<User>>>,
}

impl HttpAuth {
    /// Basic authentication against `users`.
    pub fn new(users: Arc<Authenticator>) -> Arc<HttpAuth> {
        Arc::new(HttpAuth {
            users,
            verified: Mutex::new(HashMap::new()),
        })
    }

    /// The user a request's `Authorization` header names, if its password
    /// is right.
    async fn user(&self, header: &str) -> Result<Arc<User>, ApiError> {
        if let Some(user) = self.remembered(header) {
            return Ok(user);
        }
        let failed = || ApiError::code(ErrorCode::AuthFailed, "bad user or password");
        let encoded = header
            .strip_prefix("Basic ")
            .or_else(|| header.strip_prefix("basic "))
            .ok_or_else(failed)?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map_err(|_| failed())?;
        let decoded = String::from_utf8(decoded).map_err(|_| failed())?;
        let (name, password) = decoded.split_once(':').ok_or_else(failed)?;
        let user = self.users.verify(name, password).await.ok_or_else(|| {
            tracing::warn!(user = %name, "HTTP authentication failed");
            failed()
        })?;
        if let Ok(mut verified) = self.verified.lock() {
            if verified.len() >= REMEMBERED_HEADERS {
                verified.clear();
            }
            verified.insert(header.to_string(), user.clone());
        }
        Ok(user)
    }

    fn remembered(&self, header: &str) -> Option<Arc<User>> {
        self.verified.lock().ok()?.get(header).cloned()
    }
}

/// The middleware: see the module docs. Without users (`auth` is `None`)
/// every request passes untouched.
pub(crate) async fn require(
    State(auth): State<Option<Arc<HttpAuth>>>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(auth) = auth else {
        return next.run(request).await;
    };
    let path = request.uri().path();
    if matches!(path, "/healthz" | "/metrics") {
        return next.run(request).await;
    }
    let Some(header) = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
    else {
        return ApiError::code(
            ErrorCode::AuthRequired,
            "HTTP basic authentication required",
        )
        .into_response();
    };
    let user = match auth.user(header).await {
        Ok(user) => user,
        Err(e) => return e.into_response(),
    };
    if let Err(e) = permitted(&user, request.method(), path, request.uri().query()) {
        return e.into_response();
    }
    request.extensions_mut().insert(user);
    next.run(request).await
}

/// Whether `user` may make this request (the module docs' rules).
fn permitted(
    user: &User,
    method: &Method,
    path: &str,
    query: Option<&str>,
) -> Result<(), ApiError> {
    let forbidden = |what: String| ApiError::code(ErrorCode::Forbidden, what);
    if method == Method::DELETE || path == "/api/v1/connections" {
        if user.admin {
            return Ok(());
        }
        return Err(forbidden(format!("user '{}' is not an admin", user.name)));
    }
    let Some(rest) = path.strip_prefix("/api/v1/topics/") else {
        return Ok(());
    };
    let mut parts = rest.split('/');
    let topic = parts.next().unwrap_or_default();
    let tail = parts.next();
    match (method, tail) {
        (&Method::PUT, None) | (&Method::POST, Some("events")) => {
            if may_publish(user, topic) {
                Ok(())
            } else {
                Err(forbidden(format!(
                    "user '{}' may not publish to '{topic}'",
                    user.name
                )))
            }
        }
        (_, Some("peek")) => {
            if !may_subscribe(user, topic) {
                return Err(forbidden(format!(
                    "user '{}' may not subscribe to '{topic}'",
                    user.name
                )));
            }
            let names = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
                .filter(|(k, _)| k == "sub" || k == "group");
            for (_, name) in names {
                if !may_use_name(user, &name) {
                    return Err(forbidden(format!(
                        "user '{}' may not use the name '{name}'",
                        user.name
                    )));
                }
            }
            Ok(())
        }
        _ if !may_subscribe(user, topic) => Err(ApiError::code(
            ErrorCode::NoTopic,
            format!("no topic '{topic}'"),
        )),
        _ => Ok(()),
    }
}
