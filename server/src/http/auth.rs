//! `Authorization: Bearer <token>` on every GraphQL request.

use axum::Json;
use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;
use crate::graphql::Principal;
use crate::store::{Store, tokens};

/// A request whose bearer token names a live API token.
pub struct Authenticated(pub Principal);

/// Why a request was refused, in the GraphQL error shape so clients handle it like any other.
#[derive(Debug)]
pub enum AuthRejection {
    Unauthenticated(&'static str),
    /// The database could not be asked (down, unreachable, locked): try again.
    Unavailable,
    /// The check failed for another reason; the detail is in the log.
    Internal,
}

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        match self {
            AuthRejection::Unauthenticated(message) => (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                Json(json!({
                    "data": null,
                    "errors": [{"message": message, "extensions": {"code": "UNAUTHENTICATED"}}],
                })),
            )
                .into_response(),
            AuthRejection::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, super::RETRY_AFTER_SECONDS)],
                Json(json!({
                    "data": null,
                    "errors": [{
                        "message": "the database is unavailable; try again",
                        "extensions": {"code": "SERVICE_UNAVAILABLE"},
                    }],
                })),
            )
                .into_response(),
            AuthRejection::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({
                    "data": null,
                    "errors": [{
                        "message": "internal error; the server log has the details",
                        "extensions": {"code": "INTERNAL_SERVER_ERROR"},
                    }],
                })),
            )
                .into_response(),
        }
    }
}

impl<S> FromRequestParts<S> for Authenticated
where
    S: Send + Sync,
    AppState: FromRef<S>,
{
    type Rejection = AuthRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let app = AppState::from_ref(state);
        let presented = bearer_token(parts).ok_or(AuthRejection::Unauthenticated(
            "missing API token: send the header `Authorization: Bearer <token>`",
        ))?;
        authenticate(&app.store, presented).await.map(Authenticated)
    }
}

fn bearer_token(parts: &Parts) -> Option<&str> {
    bearer_from_headers(&parts.headers)
}

fn parse_bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

pub fn bearer_from_headers(headers: &HeaderMap) -> Option<&str> {
    parse_bearer(headers.get(header::AUTHORIZATION)?.to_str().ok()?)
}

/// The token in a WebSocket `connection_init` payload: `{"Authorization": "Bearer …"}` (any
/// case of the key), as GraphiQL's headers pane and most clients send it.
pub fn bearer_from_init_payload(payload: &serde_json::Value) -> Option<String> {
    let map = payload.as_object()?;
    let (_, value) = map
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))?;
    parse_bearer(value.as_str()?).map(str::to_owned)
}

pub async fn authenticate(store: &Store, presented: &str) -> Result<Principal, AuthRejection> {
    match tokens::authenticate(store.db(), store.writer(), presented).await {
        Ok(Some(info)) => Ok(Principal {
            token_name: info.name,
            role: info.role,
        }),
        Ok(None) => Err(AuthRejection::Unauthenticated(
            "unknown or revoked API token",
        )),
        Err(e) if e.is_unavailable() => {
            tracing::warn!(error = %e, "cannot check an API token: the database is unavailable");
            Err(AuthRejection::Unavailable)
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot check an API token");
            Err(AuthRejection::Internal)
        }
    }
}
