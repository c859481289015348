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
    let txn = crate::store::begin_write(store.db()).await?;
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

/// Serves HTTP and runs the dispatcher until `shutdown` resolves; then stops taking requests,
/// lets the attempts in flight finish and records them.
pub async fn serve(
    store: Store,
    dispatch: DispatchConfig,
    retention: RetentionConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), AppError> {
    let dispatcher = Dispatcher::new(store.clone(), dispatch)?;
    let ingest = Ingest::start(store.clone(), dispatcher.clone());
    let schema = build_schema(store.clone(), dispatcher.clone(), ingest.clone());
    let stop = CancellationToken::new();
    let worker = dispatcher.start(stop.clone());
    // Off the hot path: its own task, small batches. The callback is where metrics count what it
    // deleted (`herald_pruned_total{kind}`).
    let pruner = crate::retention::spawn(
        store.clone(),
        retention.retention,
        crate::retention::PrunerSettings::default(),
        stop.clone(),
        std::sync::Arc::new(|_: &crate::store::retention::Pruned| {}),
    );
    let app = router(AppState {
        store,
        schema,
        ingest,
        dispatcher,
    });
    let stop_http = stop.clone();
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            tokio::select! {
                _ = shutdown => {}
                _ = stop_http.cancelled() => {}
            }
        })
        .await
        .map_err(AppError::Serve);
    stop.cancel();
    let _ = worker.await;
    let _ = pruner.await;
    served
}
