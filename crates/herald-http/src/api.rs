//! The `/api/v1` routes (`docs/protocol.md` 16.1).
//!
//! Shape errors are found here with the protocol's own rules (topic and
//! name syntax, `n` of `peek`), state errors come from the broker. Changes
//! go through [`Admin`]'s pseudo-connections as protocol lines, so their
//! validation, error precedence and durability are those of the commands.

use crate::error::ApiError;
use crate::{AppState, VERSION};
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Extension, Json};
use herald_proto::{ErrorCode, Reply};
use herald_server::users::User;
use serde_json::{Value, json};
use std::sync::Arc;

type Result<T, E = ApiError> = std::result::Result<T, E>;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/overview", get(overview))
        .route("/topics", get(topics))
        .route("/topics/{topic}", get(topic).put(create))
        .route("/topics/{topic}/peek", get(peek))
        .route("/topics/{topic}/events", post(publish))
        .route(
            "/topics/{topic}/subscriptions/{name}",
            delete(remove_subscription),
        )
        .route("/connections", get(connections))
}

async fn overview(State(state): State<AppState>) -> Result<Json<Value>> {
    let o = state.admin.overview().await?;
    Ok(Json(json!({
        "version": VERSION,
        "uptime_ms": state.admin.uptime().as_millis() as u64,
        "fsync": o.fsync.to_string(),
        "connections": state.admin.telemetry().connection_count(),
        "topics": o.topics,
        "published": o.totals.published,
        "delivered": o.totals.delivered,
        "acked": o.totals.acked,
    })))
}

async fn topics(
    State(state): State<AppState>,
    user: Option<Extension<Arc<User>>>,
) -> Result<Json<herald_proto::Stats>> {
    let mut stats = state.admin.stats(None).await?.unwrap_or_default();
    // With users, only the topics the user may subscribe to (15).
    if let Some(Extension(user)) = user {
        stats
            .topics
            .retain(|name, _| herald_server::auth::may_subscribe(&user, name));
    }
    Ok(Json(stats))
}

async fn topic(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>> {
    let topic = topic_of(path)?;
    let stats = state.admin.stats(Some(&topic)).await?;
    let Some(t) = stats.and_then(|mut s| s.topics.remove(&topic)) else {
        return Err(no_topic(&topic));
    };
    let mut body = serde_json::to_value(t).map_err(internal)?;
    if let Value::Object(fields) = &mut body {
        fields.insert("name".into(), Value::String(topic));
    }
    Ok(Json(body))
}

async fn peek(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    RawQuery(query): RawQuery,
) -> Result<Response> {
    let topic = topic_of(path)?;
    let mut n: usize = 10;
    let mut target: Option<(bool, String)> = None;
    for (key, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match key.as_ref() {
            "n" => {
                n = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=1000).contains(n))
                    .ok_or_else(|| bad_args("n must be an integer from 1 to 1000"))?;
            }
            "sub" | "group" if target.is_some() => {
                return Err(bad_args("give one of sub= and group=, not both"));
            }
            "sub" | "group" => {
                if !herald_proto::name::is_valid(&value) {
                    return Err(bad_args(format!("'{value}' is not a valid name")));
                }
                target = Some((key == "group", value.into_owned()));
            }
            other => return Err(bad_args(format!("unknown parameter '{other}'"))),
        }
    }
    let Some((group, name)) = target else {
        return Err(bad_args("sub=<name> or group=<name> is required"));
    };
    match state.admin.peek(&topic, &name, group, n).await? {
        Some(json) => Ok((
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            json,
        )
            .into_response()),
        None => Err(ApiError::code(
            ErrorCode::NotSubscribed,
            format!("no such subscription on '{topic}'"),
        )),
    }
}

async fn connections(State(state): State<AppState>) -> Result<Json<Value>> {
    let list: Vec<Value> = state
        .admin
        .connections()
        .await?
        .into_iter()
        .map(|c| {
            json!({
                "id": c.id,
                "peer": c.peer.to_string(),
                "name": c.name,
                "subscriptions": c.subscriptions,
                "in_flight": c.in_flight,
                "bytes_in": c.bytes_in,
                "bytes_out": c.bytes_out,
                "since_ms": c.since_ms,
            })
        })
        .collect();
    Ok(Json(Value::Array(list)))
}

/// `PUT /topics/{topic}` with an optional `{"ttl_ms":…}`.
async fn create(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response> {
    let topic = topic_of(path)?;
    let body = body_of(body)?;
    let mut ttl_ms = None;
    if !body.iter().all(u8::is_ascii_whitespace) {
        let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(&body) else {
            return Err(ApiError::code(
                ErrorCode::BadRequest,
                r#"the body must be a JSON object such as {"ttl_ms":60000}, or empty"#,
            ));
        };
        for (key, value) in fields {
            match (key.as_str(), value.as_u64()) {
                ("ttl_ms", Some(ms)) => ttl_ms = Some(ms),
                ("ttl_ms", None) => {
                    return Err(bad_args("ttl_ms must be an integer of milliseconds"));
                }
                (other, _) => return Err(bad_args(format!("unknown field '{other}'"))),
            }
        }
    }
    // The protocol's own check of the duration (1 ms to 30 days).
    let line = match ttl_ms {
        Some(ms) => format!("create {topic} ttl={ms}"),
        None => format!("create {topic}"),
    };
    let ttl_ms = match herald_proto::parse_line(line.as_bytes()) {
        Ok(Some(herald_proto::Command::Create { ttl_ms, .. })) => ttl_ms,
        Ok(_) => return Err(bad_args("not a create")),
        Err(e) => return Err(ApiError::from_reply(e.to_reply())),
    };
    let (existed, reply) = state.admin.create(&topic, ttl_ms).await?;
    match reply {
        Reply::Created(_) => {
            let status = if existed {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            };
            Ok((status, Json(json!({"name": topic, "created": !existed}))).into_response())
        }
        other => Err(ApiError::from_reply(other)),
    }
}

/// `POST /topics/{topic}/events`: the body is the event, as `pub` takes it.
async fn publish(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Value>> {
    let topic = topic_of(path)?;
    let body = body_of(body)?;
    let Ok(text) = std::str::from_utf8(&body) else {
        return Err(ApiError::code(
            ErrorCode::BadRequest,
            "the body is not UTF-8",
        ));
    };
    let event = compact_json(text);
    if event.is_empty() {
        return Err(ApiError::code(
            ErrorCode::BadEvent,
            "the body must be a JSON event",
        ));
    }
    match state.admin.command(&format!("pub {topic} {event}")).await? {
        Reply::Published { id, .. } => Ok(Json(json!({"result": "published", "id": &*id}))),
        Reply::Duplicate { id, .. } => Ok(Json(json!({"result": "duplicate", "id": &*id}))),
        other => Err(ApiError::from_reply(other)),
    }
}

/// `DELETE /topics/{topic}/subscriptions/{name}`.
async fn remove_subscription(
    State(state): State<AppState>,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<StatusCode> {
    let Path((topic, name)) = path.map_err(bad_path)?;
    check_topic(&topic)?;
    if !herald_proto::name::is_valid(&name) {
        return Err(bad_args(format!(
            "'{name}' is not a valid subscriber or group name"
        )));
    }
    match state.admin.remove_subscription(&topic, &name).await? {
        Reply::Unsubscribed(_) => Ok(StatusCode::NO_CONTENT),
        other => Err(ApiError::from_reply(other)),
    }
}

fn topic_of(path: Result<Path<String>, PathRejection>) -> Result<String> {
    let Path(topic) = path.map_err(bad_path)?;
    check_topic(&topic)?;
    Ok(topic)
}

fn check_topic(topic: &str) -> Result<()> {
    if herald_proto::name::is_valid(topic) {
        Ok(())
    } else {
        Err(ApiError::code(
            ErrorCode::BadTopic,
            format!(
                "'{topic}' is not a topic name (1 to 128 of A-Z a-z 0-9 _ - ., not starting with .)"
            ),
        ))
    }
}

fn body_of(body: Result<Bytes, BytesRejection>) -> Result<Bytes> {
    body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::code(
                ErrorCode::LineTooLong,
                "the body is longer than the line limit",
            )
        } else {
            ApiError::code(ErrorCode::BadRequest, e.body_text())
        }
    })
}

fn bad_path(e: PathRejection) -> ApiError {
    ApiError::code(ErrorCode::BadRequest, e.body_text())
}

fn bad_args(message: impl Into<String>) -> ApiError {
    ApiError::code(ErrorCode::BadArgs, message)
}

fn no_topic(topic: &str) -> ApiError {
    ApiError::code(ErrorCode::NoTopic, format!("no topic '{topic}'"))
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
}

/// `json` without the whitespace between its tokens, so that a
/// pretty-printed body becomes one protocol line and its fields are stored
/// (and delivered) on one line. Whitespace inside strings is kept; a raw
/// line break inside a string is invalid JSON and stays so.
pub fn compact_json(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in json.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !matches!(c, ' ' | '\t' | '\n' | '\r') {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::compact_json;

    #[test]
    fn compact_json_drops_whitespace_between_tokens_only() {
        assert_eq!(
            compact_json("{\n  \"id\": \"a b\",\r\n\t\"msg\": [1, \"x\\\" y\"]\n}\n"),
            r#"{"id":"a b","msg":[1,"x\" y"]}"#
        );
        assert_eq!(compact_json("  \n "), "");
    }
}
