//! The HTTP surface: `/graphql` (POST for operations, GET for the GraphiQL playground),
//! `/graphql/ws` (subscriptions), `POST /v1/alerts` (Panther's payload, for automation),
//! `/healthz` (liveness), `/readyz` (readiness) and `/metrics` (Prometheus). Authentication happens
//! here; the GraphQL layer only sees the resulting principal.

mod alerts;
mod auth;
mod drain;
mod graphql;
mod observe;
mod playground;
pub mod web;

use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use tower_http::trace::TraceLayer;

use crate::dispatch::Dispatcher;
use crate::graphql::HeraldSchema;
use crate::ingest::Ingest;
use crate::store::Store;
use crate::telemetry::Metrics;

/// `Retry-After` on a 503 for an unavailable database, in seconds: about how long a call waits
/// for the database before it gives up, so a client retrying then finds it back after a short
/// outage without hammering it during a long one.
pub(crate) const RETRY_AFTER_SECONDS: &str = "5";

/// What every handler shares; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub schema: HeraldSchema,
    pub ingest: Ingest,
    pub dispatcher: Dispatcher,
    pub metrics: Metrics,
}

pub fn router(state: AppState) -> Router {
    let metrics = state.metrics.clone();
    let [csp, frames, sniff, referrer] = web::security_headers();
    Router::new()
        .route(
            "/graphql",
            get(playground::page)
                .post(graphql::execute)
                .layer(graphql::body_limit()),
        )
        .route("/graphql/ws", get(graphql::subscribe))
        .route(
            "/v1/alerts",
            post(alerts::receive).layer(alerts::body_limit()),
        )
        .route("/", get(console))
        .route("/assets/{*path}", get(web::asset))
        .route("/healthz", get(healthz))
        .route("/readyz", get(observe::readyz))
        .route("/metrics", get(observe::metrics))
        // Around every route, so that an answer given before the body is read (401, 403, 405,
        // 413) leaves the keep-alive connection reusable.
        .layer(axum::middleware::from_fn(drain::drain_unread_body))
        .layer(TraceLayer::new_for_http())
        .layer(csp)
        .layer(frames)
        .layer(sniff)
        .layer(referrer)
        // Outermost: its time includes the draining above, and `Router::layer` runs it per route,
        // after matching, so it sees the route template.
        .layer(axum::middleware::from_fn_with_state(
            metrics,
            observe::count_requests,
        ))
        .with_state(state)
}

/// The operator console: one page; its script does the rest through `/graphql`.
async fn console(headers: axum::http::HeaderMap) -> Response {
    web::page("console/index.html", &headers)
}

/// Liveness: the process serves HTTP. The database is deliberately not asked: during an outage
/// a restart would not help (Herald reconnects by itself, and keeps results in memory meanwhile),
/// and a liveness probe that failed would restart every replica at once. `/readyz` asks it.
async fn healthz() -> Response {
    Json(json!({"status": "ok"})).into_response()
}
