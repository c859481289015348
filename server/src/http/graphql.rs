//! `POST /graphql` and `/graphql/ws`. The token is checked before the body is read (the
//! `Authenticated` extractor runs on the request head), and a body is read only up to
//! [`MAX_BODY`]: a larger one is refused with a JSON 413 without being buffered.

use async_graphql::Data;
use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql_axum::{GraphQLProtocol, GraphQLResponse, GraphQLWebSocket};
use axum::Json;
use axum::body::{Body, to_bytes};
use axum::extract::{DefaultBodyLimit, State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;
use super::auth::{self, Authenticated};

/// The largest GraphQL request body, and the largest WebSocket message: 1 MiB. The biggest
/// legitimate request, `sendAlerts` with 1,000 small alerts, fits; alert contexts are capped
/// at 200 KiB each anyway.
pub const MAX_BODY: usize = 1024 * 1024;

pub fn body_limit() -> DefaultBodyLimit {
    // `execute` enforces MAX_BODY itself, to answer with a GraphQL-shaped JSON 413.
    DefaultBodyLimit::disable()
}

fn refusal(status: StatusCode, code: &str, message: String) -> Response {
    (
        status,
        Json(json!({
            "data": null,
            "errors": [{"message": message, "extensions": {"code": code}}],
        })),
    )
        .into_response()
}

fn too_large() -> Response {
    refusal(
        StatusCode::PAYLOAD_TOO_LARGE,
        "PAYLOAD_TOO_LARGE",
        format!(
            "the request body is larger than the limit of {} bytes (1 MiB)",
            MAX_BODY
        ),
    )
}

pub async fn execute(
    State(app): State<AppState>,
    principal: Authenticated,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return too_large();
    }
    let bytes = match to_bytes(body, MAX_BODY).await {
        Ok(bytes) => bytes,
        Err(e) => {
            // A chunked body that grows past the limit, or a client that went away mid-body.
            let over = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            return if over {
                too_large()
            } else {
                refusal(
                    StatusCode::BAD_REQUEST,
                    "BAD_REQUEST",
                    "the request body could not be read".into(),
                )
            };
        }
    };
    let request: async_graphql::Request = match serde_json::from_slice(&bytes) {
        Ok(r) => r,
        Err(e) => {
            return refusal(
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
                format!(
                    "the body must be a JSON object with `query` and optional `variables` and `operationName`: {e}"
                ),
            );
        }
    };
    GraphQLResponse::from(app.schema.execute(request.data(principal.0)).await).into_response()
}

/// Subscriptions over graphql-transport-ws (and the older graphql-ws). The token comes from the
/// upgrade request's `Authorization` header or, since browsers cannot set that on a WebSocket,
/// from the `connection_init` payload: `{"Authorization": "Bearer hrld_…"}`.
pub async fn subscribe(
    State(app): State<AppState>,
    headers: HeaderMap,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
) -> Response {
    let from_header = auth::bearer_from_headers(&headers).map(str::to_owned);
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        // The same bound as a POST body; the default (64 MiB) would let one message fill memory.
        .max_message_size(MAX_BODY)
        .max_frame_size(MAX_BODY)
        .on_upgrade(move |stream| {
            let store = app.store.clone();
            GraphQLWebSocket::new(stream, app.schema.clone(), protocol)
                .on_connection_init(move |payload| async move {
                    let token = from_header
                        .or_else(|| auth::bearer_from_init_payload(&payload))
                        .ok_or_else(|| {
                            async_graphql::Error::new(
                                "missing API token: send {\"Authorization\": \"Bearer <token>\"} in connection_init",
                            )
                        })?;
                    let principal = auth::authenticate(&store, &token)
                        .await
                        .map_err(|_| async_graphql::Error::new("unknown or revoked API token"))?;
                    let mut data = Data::default();
                    data.insert(principal);
                    Ok(data)
                })
                .serve()
        })
}
