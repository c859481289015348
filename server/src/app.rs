//! Starting and stopping the server: used by `herald serve` and by the integration tests, which
//! hand it a listener on an ephemeral port.

use std::future::Future;
use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::{DispatchConfig, RetentionConfig};
use crate::dispatch::Dispatcher;
use crate::dispatch::client::ClientError;
use crate::graphql::build_schema;
use crate::http::{AppState, router};
use crate::ingest::Ingest;
use crate::store::audit::Actor;
use crate::store::tokens::{self, Role};
use crate::store::{Store, StoreError, state};
use crate::telemetry::{Metrics, PrunedKind};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the HTTP server failed: {0}")]
    Serve(#[source] std::io::Error),
}

/// On the very first start against an empty database, creates an admin token and returns it so
/// the caller can show it once. Of several replicas starting together, exactly one gets it. The
/// audit trail records it as `token.created` by `cli`: `herald serve` made it.
pub async fn issue_first_admin_token(store: &Store) -> Result<Option<String>, StoreError> {
    let txn = crate::store::begin_write(store.writer()).await?;
    let first_start = state::claim_once(&txn, "first_admin_token", "issued").await?;
    if !first_start || tokens::count(&txn).await? > 0 {
        txn.commit().await?;
        return Ok(None);
    }
    let (_, token) = tokens::create_in(&txn, &Actor::cli(), "admin", Role::Admin).await?;
    txn.commit().await?;
    Ok(Some(token))
}

pub async fn bind(addr: SocketAddr) -> Result<TcpListener, AppError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| AppError::Bind { addr, source })
}

/// Serves HTTP and runs the dispatcher until `shutdown` resolves; then stops taking requests and
/// claims at once, answers the requests already taken, hands back the deliveries not started,
/// lets the attempts in flight finish (up to the shutdown grace) and records them.
pub async fn serve(
    store: Store,
    dispatch: DispatchConfig,
    retention: RetentionConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), AppError> {
    let grace = dispatch.shutdown_grace;
    let metrics = Metrics::new();
    let dispatcher = Dispatcher::with_metrics(store.clone(), dispatch, metrics.clone())?;
    let ingest = Ingest::start(store.clone(), dispatcher.clone());
    let schema = build_schema(store.clone(), dispatcher.clone(), ingest.clone());
    let stop = CancellationToken::new();
    let worker = dispatcher.start(stop.clone());
    // Off the hot path: its own task, small batches. The callback is where metrics count what it
    // deleted (`herald_pruned_total{kind}`).
    let pruner = crate::retention::spawn(
        store.clone(),
        retention.retention,
        {
            let defaults = crate::retention::PrunerSettings::default();
            crate::retention::PrunerSettings {
                every: retention.prune_interval,
                first_pass_after: defaults.first_pass_after.min(retention.prune_interval),
                ..defaults
            }
        },
        stop.clone(),
        {
            let metrics = metrics.clone();
            std::sync::Arc::new(move |p: &crate::store::retention::Pruned| {
                metrics.pruned(PrunedKind::Alert, p.alerts);
                metrics.pruned(PrunedKind::Delivery, p.deliveries);
                metrics.pruned(PrunedKind::Attempt, p.attempts);
            })
        },
    );
    // PostgreSQL's delivery counts are appended as deltas; this folds them so totals stay cheap.
    let counts = crate::store::counts::spawn_compactor(
        store.db().clone(),
        crate::store::counts::COMPACT_EVERY,
        stop.clone(),
    );
    let app = router(AppState {
        store,
        schema,
        ingest,
        dispatcher,
        metrics,
    });
    let stop_http = stop.clone();
    let http = axum::serve(listener, app).with_graceful_shutdown(async move {
        tokio::select! {
            _ = shutdown => {
                tracing::info!(?grace, "shutdown started: no new requests or claims; finishing \
                    the requests and attempts in flight");
            }
            _ = stop_http.cancelled() => {}
        }
        // The dispatcher stops claiming now, not once the last request is answered.
        stop_http.cancel();
    });
    // Requests already taken (an alert being committed) are answered; a connection still open
    // after the grace (a slow upload, a keep-alive client that never lets go) is left behind.
    // WebSocket sessions are not waited for: they end with the process.
    let stop_wait = stop.clone();
    let served = tokio::select! {
        served = http => served.map_err(AppError::Serve),
        _ = async move {
            stop_wait.cancelled().await;
            tokio::time::sleep(grace).await;
        } => {
            tracing::warn!("requests still open at the end of the shutdown grace are dropped");
            Ok(())
        }
    };
    stop.cancel();
    let _ = worker.await;
    let _ = pruner.await;
    let _ = counts.await;
    served
}
