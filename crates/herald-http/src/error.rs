//! Errors as the HTTP API answers them: `{"error":"<code>","message":"…"}`
//! with the wire codes of the protocol and the status of section 16.1.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use herald_proto::{ErrorCode, Reply};
use herald_server::AdminError;

/// An error response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// The wire code (`bad_topic`, `not_found`, ...).
    pub code: String,
    /// Human text; may change.
    pub message: String,
}

impl ApiError {
    /// An error with an explicit status.
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code: code.to_string(),
            message: message.into(),
        }
    }

    /// A protocol error code, with the status section 16.1 gives it.
    pub fn code(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::new(status_of(code), code.as_str(), message)
    }

    /// `503 unavailable`.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::code(ErrorCode::Unavailable, message)
    }

    /// The error for a reply the broker gave where another was expected:
    /// its `-ERR` as is, or a 500 for a reply that makes no sense here.
    pub fn from_reply(reply: Reply) -> Self {
        match reply {
            Reply::Error { code, text } => Self::code(code, text),
            other => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                format!("unexpected reply: {}", other.to_line()),
            ),
        }
    }
}

/// Section 16.1's status for each wire code.
pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::UnknownCommand
        | ErrorCode::BadArgs
        | ErrorCode::BadTopic
        | ErrorCode::BadEvent
        | ErrorCode::BadRequest => StatusCode::BAD_REQUEST,
        ErrorCode::LineTooLong => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::AuthRequired | ErrorCode::AuthFailed => StatusCode::UNAUTHORIZED,
        ErrorCode::Forbidden => StatusCode::FORBIDDEN,
        ErrorCode::NoTopic | ErrorCode::NotSubscribed | ErrorCode::NoEvent => StatusCode::NOT_FOUND,
        ErrorCode::NameInUse | ErrorCode::BadState => StatusCode::CONFLICT,
        ErrorCode::NotLeader => StatusCode::MISDIRECTED_REQUEST,
        ErrorCode::Full => StatusCode::INSUFFICIENT_STORAGE,
        ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    }
}

impl From<AdminError> for ApiError {
    fn from(e: AdminError) -> Self {
        ApiError::unavailable(e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({"error": self.code, "message": self.message});
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Basic realm=\"herald\""),
            );
        }
        response
    }
}
