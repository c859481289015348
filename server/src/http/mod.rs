//! The HTTP surface: `/graphql` (POST for operations, GET for the GraphiQL playground) and
//! `/healthz`. Authentication happens here; the GraphQL layer only sees the resulting principal.

mod auth;

use async_graphql::http::GraphiQLSource;
use async_graphql_axum::{GraphQLRequest, GraphQLResponse};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use tower_http::trace::TraceLayer;

use crate::graphql::HeraldSchema;
use crate::store::Store;

/// What every handler shares; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub schema: HeraldSchema,
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/graphql", get(playground).post(graphql))
        .route("/healthz", get(healthz))
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

/// The playground. The API token goes into its Headers pane as
/// `{"Authorization": "Bearer hrld_…"}`.
async fn playground() -> Html<String> {
    Html(
        GraphiQLSource::build()
            .endpoint("/graphql")
            .title("Herald")
            .finish(),
    )
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
