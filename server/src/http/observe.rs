//! What operators and orchestrators read: `GET /metrics` (Prometheus, no token: it holds counts,
//! never a destination, URL or secret), `GET /readyz`, and the middleware that counts every
//! request by route template and status.

use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;
use crate::telemetry::Metrics;
use crate::telemetry::metrics::CONTENT_TYPE;

/// How long `/readyz` waits for the database before answering that it does not answer.
const READY_TIMEOUT: Duration = Duration::from_secs(3);

pub async fn metrics(State(app): State<AppState>) -> Response {
    let body = app.metrics.render(&app.store).await;
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response()
}

/// Counts and times a request. The route label is the template the router matched (`/graphql`),
/// never the path as sent, so made-up paths all count as one `unmatched` series.
pub async fn count_requests(State(metrics): State<Metrics>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let started = Instant::now();
    let response = next.run(req).await;
    metrics.http_request(
        route.as_deref(),
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// Ready for traffic: the database answers, every migration this binary knows is applied, and
/// the dispatcher's claim loop runs. Otherwise 503 with each check's state, so the reason shows
/// in `kubectl describe` and in the load balancer's logs.
pub async fn readyz(State(app): State<AppState>) -> Response {
    let checks = async {
        if let Err(e) = app.store.ping().await {
            tracing::warn!(error = %e, "readiness: the database does not answer");
            return ("unreachable".to_owned(), "unknown".to_owned());
        }
        match crate::store::migrations::pending(app.store.db()).await {
            Ok(pending) if pending.is_empty() => ("ok".into(), "ok".into()),
            Ok(pending) => ("ok".into(), format!("pending: {}", pending.join(", "))),
            Err(e) => {
                tracing::warn!(error = %e, "readiness: cannot read the applied migrations");
                ("ok".into(), "unknown".into())
            }
        }
    };
    // A probe has its own short timeout; an answer that says why beats a probe that times out.
    let (database, migrations) = tokio::time::timeout(READY_TIMEOUT, checks)
        .await
        .unwrap_or_else(|_| ("timeout".into(), "unknown".into()));
    let dispatcher = if app.dispatcher.is_running() {
        "ok"
    } else {
        "stopped"
    };
    let ready = database == "ok" && migrations == "ok" && dispatcher == "ok";
    let (status, word) = if ready {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
    };
    (
        status,
        Json(json!({
            "status": word,
            "checks": {"database": database, "migrations": migrations, "dispatcher": dispatcher},
        })),
    )
        .into_response()
}
