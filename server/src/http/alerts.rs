//! `POST /v1/alerts`: alerts from automation in Panther's Custom Webhook format (the 13 keys; `id`
//! is the detection id), so Panther itself, or anything that speaks its format, can feed Herald.

use axum::Json;
use axum::body::{Body, to_bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use herald_domain::{AlertType, Severity, WireEnum};
use serde::Deserialize;
use serde_json::{Value, json};

use super::AppState;
use super::auth::{self, AuthRejection};
use crate::ingest::{AlertDraft, MAX_CONTEXT_BYTES};
use crate::store::tokens::Role;

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
        (self.status, Json(body)).into_response()
    }
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

/// Panther's payload, plus Herald's optional routing keys.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PantherIn {
    id: Option<String>,
    created_at: Option<String>,
    severity: Option<String>,
    #[serde(rename = "type")]
    alert_type: Option<String>,
    link: Option<String>,
    title: Option<String>,
    name: Option<String>,
    alert_id: Option<String>,
    alert_context: Option<Value>,
    description: Option<String>,
    runbook: Option<String>,
    tags: Option<Vec<String>>,
    version: Option<String>,
    dynamic_severity: Option<String>,
    destination_overrides: Option<Vec<String>>,
    dynamic_destinations: Option<Vec<String>>,
    /// Herald's too: the log types the alert came from. Not part of the payload sent on.
    log_types: Option<Vec<String>>,
}

fn parse_enum<T: WireEnum>(field: &str, v: Option<String>) -> Result<Option<T>, RestError> {
    v.map(|s| {
        T::parse_wire(&s).map_err(|e| {
            error(
                StatusCode::BAD_REQUEST,
                "BAD_USER_INPUT",
                format!("{field}: {e}"),
                Some(field),
            )
        })
    })
    .transpose()
}

impl PantherIn {
    fn into_draft(self) -> Result<AlertDraft, RestError> {
        let created_at = match self.created_at {
            None => None,
            Some(s) => Some(
                DateTime::parse_from_rfc3339(&s)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|e| {
                        error(
                            StatusCode::BAD_REQUEST,
                            "BAD_USER_INPUT",
                            format!("createdAt must be an RFC 3339 time such as 2020-10-13T03:35:24Z: {e}"),
                            Some("createdAt"),
                        )
                    })?,
            ),
        };
        Ok(AlertDraft {
            alert_id: self.alert_id,
            detection_id: self.id.unwrap_or_default(),
            title: self.title.unwrap_or_default(),
            name: self.name,
            severity: parse_enum::<Severity>("severity", self.severity)?,
            alert_type: parse_enum::<AlertType>("type", self.alert_type)?,
            description: self.description,
            runbook: self.runbook,
            tags: self.tags,
            version: self.version,
            link: self.link,
            context: self.alert_context,
            created_at,
            dynamic_severity: parse_enum::<Severity>("dynamicSeverity", self.dynamic_severity)?,
            destination_overrides: self.destination_overrides,
            dynamic_destinations: self.dynamic_destinations,
            log_types: self.log_types,
        })
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
                AuthRejection::Unavailable => error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "UNAVAILABLE",
                    "the database does not answer; try again",
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
    let parsed: PantherIn = serde_json::from_slice(&bytes).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            "BAD_USER_INPUT",
            format!("the body must be a Panther alert JSON object: {e}"),
            None,
        )
    })?;
    let incoming = parsed.into_draft()?.into_incoming().map_err(|e| {
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
    let mut accepted = app.ingest.accept(vec![incoming]).await.map_err(|e| {
        error(
            StatusCode::SERVICE_UNAVAILABLE,
            "UNAVAILABLE",
            e.to_string(),
            None,
        )
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
