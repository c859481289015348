//! The HTTP surface: `/graphql` (POST for operations, GET for the GraphiQL playground),
//! `/graphql/ws` (subscriptions), `POST /v1/alerts` (Panther's payload, for automation) and
//! `/healthz`. Authentication happens here; the GraphQL layer only sees the resulting principal.

mod alerts;
mod auth;
mod drain;
mod playground;

use async_graphql::Data;
use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql_axum::{GraphQLProtocol, GraphQLRequest, GraphQLResponse, GraphQLWebSocket};
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message};
use axum::extract::{State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::{SinkExt, StreamExt};
use serde_json::json;
use tower_http::trace::TraceLayer;

use crate::dispatch::Dispatcher;
use crate::graphql::HeraldSchema;
use crate::ingest::Ingest;
use crate::store::Store;

/// How long a WebSocket the server is closing waits for the client's close frame.
const CLOSE_HANDSHAKE: Duration = Duration::from_secs(2);

/// What every handler shares; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub schema: HeraldSchema,
    pub ingest: Ingest,
    pub dispatcher: Dispatcher,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/graphql", get(playground::page).post(graphql))
        .route("/graphql/ws", get(graphql_ws))
        .route(
            "/v1/alerts",
            post(alerts::receive).layer(alerts::body_limit()),
        )
        .route("/healthz", get(healthz))
        .layer(axum::middleware::from_fn(drain::drain_unread_body))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

async fn graphql(
    State(app): State<AppState>,
    principal: auth::Authenticated,
    req: GraphQLRequest,
) -> GraphQLResponse {
    app.schema
        .execute(req.into_inner().data(principal.0))
        .await
        .into()
}

/// Subscriptions over graphql-transport-ws (and the older graphql-ws). The token comes from the
/// upgrade request's `Authorization` header or, since browsers cannot set that on a WebSocket,
/// from the `connection_init` payload: `{"Authorization": "Bearer hrld_…"}`.
async fn graphql_ws(
    State(app): State<AppState>,
    headers: HeaderMap,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
) -> Response {
    let from_header = auth::bearer_from_headers(&headers).map(str::to_owned);
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| async move {
            let store = app.store.clone();
            let (mut sink, mut stream) = socket.split();
            let sink = (&mut sink).with(|m| async move { Ok::<_, axum::Error>(fit_close_reason(m)) });
            GraphQLWebSocket::new_with_pair(sink, &mut stream, app.schema.clone(), protocol)
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
                .await;
            // When the server ends the session (a refused connection_init, a protocol error) it
            // has sent its close frame; reading on until the client's own close frame completes
            // the closing handshake. Closing the socket with the client's frames unread would
            // reset the connection, and the reset can swallow the close frame and its reason.
            let _ = tokio::time::timeout(CLOSE_HANDSHAKE, async {
                while let Some(Ok(message)) = stream.next().await {
                    if matches!(message, Message::Close(_)) {
                        break;
                    }
                }
            })
            .await;
        })
}

/// A close frame is a control frame: 125 bytes at most, two of them the code (RFC 6455 5.5).
/// async-graphql puts whole error messages in the reason; a longer frame makes clients fail the
/// connection as a protocol error instead of reading why it was closed.
fn fit_close_reason(message: Message) -> Message {
    const MAX_REASON: usize = 123;
    match message {
        Message::Close(Some(CloseFrame { code, reason })) if reason.len() > MAX_REASON => {
            let mut end = MAX_REASON;
            while !reason.as_str().is_char_boundary(end) {
                end -= 1;
            }
            Message::Close(Some(CloseFrame {
                code,
                reason: reason.as_str()[..end].to_owned().into(),
            }))
        }
        other => other,
    }
}

async fn healthz(State(app): State<AppState>) -> Response {
    match app.store.ping().await {
        Ok(()) => Json(json!({"status": "ok", "database": "ok"})).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "health check: database does not answer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "unavailable", "database": "unreachable"})),
            )
                .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the end-to-end fuzz test: a refused subscribe closed the socket with a reason
    /// longer than a control frame may carry, and the client saw a protocol error instead.
    #[test]
    fn close_reasons_fit_in_a_control_frame() {
        let long = "é".repeat(100);
        let fitted = fit_close_reason(Message::Close(Some(CloseFrame {
            code: 4400,
            reason: long.clone().into(),
        })));
        let Message::Close(Some(frame)) = fitted else {
            panic!("still a close frame")
        };
        assert_eq!(frame.code, 4400);
        assert!(frame.reason.len() <= 123);
        assert!(long.starts_with(frame.reason.as_str()));
        let short = Message::Close(Some(CloseFrame {
            code: 4401,
            reason: "Unauthorized".into(),
        }));
        assert_eq!(fit_close_reason(short.clone()), short);
    }
}
