//! `POST /v1/alerts`: alerts from automation in Panther's Custom Webhook format (the 13 keys; `id`
//! is the detection id), so Panther itself, or anything that speaks its format, can feed Herald.

use axum::Json;
use axum::body::{Body, to_bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use herald_domain::alert::PantherAlert;
use serde_json::json;

use super::AppState;
use super::auth::{self, AuthRejection};
use crate::ingest::{self, MAX_CONTEXT_BYTES};
use crate::store::tokens::Role;
use crate::telemetry::AlertSource;

/// The context may take 200 KiB; the rest of a payload is small.
const MAX_BODY: usize = MAX_CONTEXT_BYTES + 64 * 1024;

pub fn body_limit() -> DefaultBodyLimit {
    // The handler enforces MAX_BODY itself, to answer with a JSON 413.
    DefaultBodyLimit::disable()
}

/// A refusal, as JSON: `{"error", "code", "field"?}`.
struct RestError {
    status: StatusCode,
    code: &'static str,
    message: String,
    field: Option<String>,
}

impl IntoResponse for RestError {
    fn into_response(self) -> Response {
        let mut body = json!({"error": self.message, "code": self.code});
        if let Some(f) = self.field {
            body["field"] = json!(f);
        }
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(super::RETRY_AFTER_SECONDS),
            );
        }
        response
    }
}

/// The database is away (or this process is stopping): nothing was stored, try again.
fn unavailable(message: impl Into<String>) -> RestError {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        "SERVICE_UNAVAILABLE",
        message,
        None,
    )
}

fn error(
    status: StatusCode,
    code: &'static str,
    message: impl Into<String>,
    field: Option<&str>,
) -> RestError {
    RestError {
        status,
        code,
        message: message.into(),
        field: field.map(str::to_owned),
    }
}

/// The payload's own field names, for errors (the draft calls the detection id `detectionId`).
fn wire_field(field: &str) -> &str {
    match field {
        "detectionId" => "id",
        "context" => "alertContext",
        other => other,
    }
}

pub async fn receive(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    match accept(app, headers, body).await {
        Ok(accepted) => accepted.into_response(),
        Err(refused) => refused.into_response(),
    }
}

async fn accept(
    app: AppState,
    headers: HeaderMap,
    body: Body,
) -> Result<impl IntoResponse, RestError> {
    let token = auth::bearer_from_headers(&headers).ok_or_else(|| {
        error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "missing API token: send the header `Authorization: Bearer <token>`",
            None,
        )
    })?;
    let principal =
        auth::authenticate(&app.store, token)
            .await
            .map_err(|rejection| match rejection {
                AuthRejection::Unauthenticated(m) => {
                    error(StatusCode::UNAUTHORIZED, "UNAUTHENTICATED", m, None)
                }
                AuthRejection::Unavailable => unavailable("the database is unavailable; try again"),
                AuthRejection::Internal => error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "INTERNAL_SERVER_ERROR",
                    "internal error; the server log has the details",
                    None,
                ),
            })?;
    if principal.role != Role::Admin {
        return Err(error(
            StatusCode::FORBIDDEN,
            "FORBIDDEN",
            "sending alerts needs the ADMIN role; the token in use is a VIEWER token",
            None,
        ));
    }
    let bytes = to_bytes(body, MAX_BODY).await.map_err(|_| {
        error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PAYLOAD_TOO_LARGE",
            format!("the body must be at most {} KiB", MAX_BODY / 1024),
            None,
        )
    })?;
    let parsed: PantherAlert = serde_json::from_slice(&bytes).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            "BAD_USER_INPUT",
            format!("the body must be a Panther alert JSON object: {e}"),
            None,
        )
    })?;
    let incoming = parsed
        .into_draft()
        .and_then(ingest::incoming)
        .map_err(|e| {
            let field = wire_field(&e.field).to_owned();
            let message = e.message.replacen(&e.field, &field, 1);
            if e.too_large {
                error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "PAYLOAD_TOO_LARGE",
                    message,
                    Some(&field),
                )
            } else {
                error(
                    StatusCode::BAD_REQUEST,
                    "BAD_USER_INPUT",
                    message,
                    Some(&field),
                )
            }
        })?;
    let mut accepted = app
        .ingest
        .accept(AlertSource::Rest, vec![incoming])
        .await
        .map_err(|e| {
            if e.is_retryable() {
                unavailable(e.to_string())
            } else {
                tracing::error!(error = %e, "alert not stored");
                error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "INTERNAL_SERVER_ERROR",
                    "internal error; the server log has the details",
                    None,
                )
            }
        })?;
    let a = accepted.remove(0);
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({
            "alertId": a.alert.id,
            "deliveryIds": a.deliveries.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
            "warnings": a.warnings,
            "duplicate": a.duplicate,
        })),
    ))
}
