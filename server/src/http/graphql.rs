//! `POST /graphql` and `/graphql/ws`. The token is checked before the body is read (the
//! `Authenticated` extractor runs on the request head), and a body is read only up to
//! [`MAX_BODY`]: a larger one is refused with a JSON 413 without being buffered.

use std::time::Duration;

use async_graphql::Data;
use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql_axum::{GraphQLProtocol, GraphQLResponse, GraphQLWebSocket};
use axum::Json;
use axum::body::{Body, to_bytes};
use axum::extract::ws::{CloseFrame, Message};
use axum::extract::{DefaultBodyLimit, State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use serde_json::json;

use super::AppState;
use super::auth::{self, Authenticated};

/// The largest GraphQL request body, and the largest WebSocket message: 1 MiB. The biggest
/// legitimate request, `sendAlerts` with 1,000 small alerts, fits; alert contexts are capped
/// at 200 KiB each anyway.
pub const MAX_BODY: usize = 1024 * 1024;

/// How long a WebSocket the server is closing waits for the client's close frame.
const CLOSE_HANDSHAKE: Duration = Duration::from_secs(2);

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
        .on_upgrade(move |socket| async move {
            let store = app.store.clone();
            let (mut sink, mut stream) = socket.split();
            // async-graphql ends the session at the first read error without a word; kept here
            // so the client can be told why (a message over the limit, a protocol error).
            let mut read_error = None;
            let input = (&mut stream).inspect(|item| {
                if let Err(e) = item {
                    read_error.get_or_insert_with(|| ReadError::of(e));
                }
            });
            let fitted =
                (&mut sink).with(|m| async move { Ok::<_, axum::Error>(fit_close_reason(m)) });
            GraphQLWebSocket::new_with_pair(fitted, input, app.schema.clone(), protocol)
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
            match read_error {
                None => {}
                Some(ReadError::Gone) => return,
                Some(ReadError::Refused {
                    code,
                    reason,
                    read_on,
                }) => {
                    let close = Message::Close(Some(CloseFrame {
                        code,
                        reason: reason.into(),
                    }));
                    if sink.send(fit_close_reason(close)).await.is_err() || !read_on {
                        return;
                    }
                }
            }
            // When the server ends the session (a refused connection_init, a protocol error, a
            // message over the limit) it has sent its close frame; reading on until the client's
            // own close frame completes the closing handshake. Closing the socket with the
            // client's frames unread would reset the connection, and the reset can swallow the
            // close frame and its reason. Frames refused on the way (the rest of an oversized
            // message) are skipped; each is bounded by the frame limit.
            let _ = tokio::time::timeout(CLOSE_HANDSHAKE, async {
                let mut errors = 0;
                while let Some(item) = stream.next().await {
                    match item {
                        Ok(Message::Close(_)) => break,
                        Ok(_) => {}
                        Err(_) if errors < MAX_SKIPPED_ERRORS => errors += 1,
                        Err(_) => break,
                    }
                }
            })
            .await;
        })
}

/// Read errors skipped while waiting for the client's close frame, before giving up on it.
const MAX_SKIPPED_ERRORS: usize = 16;

/// How large an oversized message may be for the server to read it through (and discard it) on
/// its way to the client's close frame. tungstenite refuses a frame on its header and reads the
/// frame whole on the next read, so the bound keeps that read from filling memory.
const MAX_DISCARD: usize = 4 * MAX_BODY;

/// Why reading a WebSocket failed, as far as the client needs telling.
#[derive(Debug, PartialEq)]
enum ReadError {
    /// The connection is gone (reset, closed): nothing can be sent.
    Gone,
    /// The client broke a rule: close with this code and reason; `read_on` when the rest of the
    /// connection may be read to complete the closing handshake.
    Refused {
        code: u16,
        reason: String,
        read_on: bool,
    },
}

impl ReadError {
    fn of(e: &axum::Error) -> Self {
        use tungstenite::error::{CapacityError, Error as WsError};
        let Some(e) = std::error::Error::source(e).and_then(|s| s.downcast_ref::<WsError>()) else {
            return ReadError::Gone;
        };
        match e {
            WsError::Capacity(CapacityError::MessageTooLong { size, max_size }) => {
                ReadError::Refused {
                    // 1009: Message Too Big (RFC 6455 7.4.1).
                    code: 1009,
                    reason: format!(
                        "a message may be at most {max_size} bytes (1 MiB), got {size}"
                    ),
                    read_on: *size <= MAX_DISCARD,
                }
            }
            // 1007: a text frame that is not UTF-8.
            WsError::Utf8(_) => ReadError::Refused {
                code: 1007,
                reason: "text frames must be UTF-8".into(),
                read_on: true,
            },
            WsError::Protocol(p) => ReadError::Refused {
                code: 1002,
                reason: format!("WebSocket protocol error: {p}"),
                read_on: true,
            },
            _ => ReadError::Gone,
        }
    }
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

    /// Found by the end-to-end fuzz test after the 1 MiB message limit: a larger message ended
    /// the session without a close frame, and the unread rest reset the connection.
    #[test]
    fn a_message_over_the_limit_is_answered_with_1009() {
        use tungstenite::error::{CapacityError, Error as WsError};
        let too_long = |size| {
            ReadError::of(&axum::Error::new(WsError::Capacity(
                CapacityError::MessageTooLong {
                    size,
                    max_size: MAX_BODY,
                },
            )))
        };
        let ReadError::Refused {
            code,
            reason,
            read_on,
        } = too_long(3 << 20)
        else {
            panic!("refused with a reason")
        };
        assert_eq!(code, 1009);
        assert!(
            reason.contains("1048576") && reason.contains("3145728"),
            "{reason}"
        );
        assert!(reason.len() <= 123, "fits a close frame: {reason}");
        assert!(read_on);
        let ReadError::Refused { read_on, .. } = too_long(usize::MAX) else {
            panic!("refused")
        };
        assert!(!read_on, "a frame declared huge is not read through");
        assert_eq!(
            ReadError::of(&axum::Error::new(WsError::ConnectionClosed)),
            ReadError::Gone
        );
    }
}
