//! Starting and stopping the server: used by `herald serve` and by the integration tests, which
//! hand it a listener on an ephemeral port.

use std::future::Future;
use std::net::SocketAddr;

use tokio::net::TcpListener;

use crate::graphql::build_schema;
use crate::http::{AppState, router};
use crate::store::tokens::{self, Role};
use crate::store::{Store, StoreError, state};
use sea_orm::TransactionTrait;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Store(#[from] StoreError),
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
/// the caller can show it once. Of several replicas starting together, exactly one gets it.
pub async fn issue_first_admin_token(store: &Store) -> Result<Option<String>, StoreError> {
    let txn = store.db().begin().await?;
    let first_start = state::claim_once(&txn, "first_admin_token", "issued").await?;
    if !first_start || tokens::count(&txn).await? > 0 {
        txn.commit().await?;
        return Ok(None);
    }
    let (_, token) = tokens::create(&txn, "admin", Role::Admin).await?;
    txn.commit().await?;
    Ok(Some(token))
}

pub async fn bind(addr: SocketAddr) -> Result<TcpListener, AppError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| AppError::Bind { addr, source })
}

/// Serves until `shutdown` resolves, then drains in-flight requests.
pub async fn serve(
    store: Store,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), AppError> {
    let schema = build_schema(store.clone());
    let app = router(AppState { store, schema });
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(AppError::Serve)
}
