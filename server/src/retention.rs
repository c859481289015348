//! The pruner: deletes history older than `HERALD_RETENTION` (see `store::retention` for what
//! goes and what never does), batch by batch with a pause between, so that the dispatcher and the
//! API, which write to the same tables, never wait long behind it.
//!
//! `herald serve` runs it in the background: a first pass shortly after start, then one every few
//! minutes. `herald prune` runs one pass now. Replicas on one PostgreSQL may all run it: batches
//! lock what they delete and skip what another replica holds, so no advisory lock is needed.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::Retention;
use crate::store::retention::{Pruned, prune_batch};
use crate::store::{Store, StoreError};

/// Told what each batch deleted (only batches that deleted something), e.g. to count it in
/// `herald_pruned_total{kind}`.
pub type OnPruned = Arc<dyn Fn(&Pruned) + Send + Sync + 'static>;

/// How the pruner paces itself.
#[derive(Debug, Clone, Copy)]
pub struct PrunerSettings {
    /// Before the first pass: long enough that a start (and its migrations) has settled.
    pub first_pass_after: Duration,
    /// Between the start of one pass and the next.
    pub every: Duration,
    /// Deliveries (and alerts) a batch deletes at most.
    pub batch: u64,
    /// Between batches, so writers get the database in between.
    pub pause: Duration,
}

impl Default for PrunerSettings {
    fn default() -> Self {
        PrunerSettings {
            first_pass_after: Duration::from_secs(30),
            every: Duration::from_secs(600),
            batch: 500,
            pause: Duration::from_millis(200),
        }
    }
}

/// The moment before which finished history goes, or `None` when nothing goes (`off`, or a
/// retention longer than the calendar).
pub fn cutoff(retention: Retention, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    match retention {
        Retention::Off => None,
        Retention::After(d) => now.checked_sub_signed(chrono::Duration::from_std(d).ok()?),
    }
}

/// One whole pass: batches until nothing is left before `cutoff` (or `stop` is cancelled), waiting
/// its turn where another replica's pruner holds rows. Returns the total.
pub async fn run_pass(
    store: &Store,
    cutoff: DateTime<Utc>,
    settings: &PrunerSettings,
    on_pruned: &(dyn Fn(&Pruned) + Send + Sync),
    stop: &CancellationToken,
) -> Result<Pruned, StoreError> {
    let mut total = Pruned::default();
    loop {
        let batch = prune_batch(store.writer(), cutoff, settings.batch).await?;
        if !batch.more() {
            return Ok(total);
        }
        if !batch.pruned.is_empty() {
            on_pruned(&batch.pruned);
            total += batch.pruned;
        }
        tokio::select! {
            _ = stop.cancelled() => return Ok(total),
            _ = tokio::time::sleep(settings.pause) => {}
        }
    }
}

/// Starts the background pruner; it ends when `stop` is cancelled (between two batches at most).
/// With `Retention::Off` it does nothing and ends at once.
pub fn spawn(
    store: Store,
    retention: Retention,
    settings: PrunerSettings,
    stop: CancellationToken,
    on_pruned: OnPruned,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        if retention == Retention::Off {
            tracing::info!("HERALD_RETENTION is off: history is kept forever");
            return;
        }
        let mut wait = settings.first_pass_after;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
            wait = settings.every;
            let Some(cutoff) = cutoff(retention, Utc::now()) else {
                continue;
            };
            match run_pass(&store, cutoff, &settings, on_pruned.as_ref(), &stop).await {
                Ok(p) if p.is_empty() => {
                    tracing::debug!(%cutoff, "retention: nothing to delete");
                }
                Ok(p) => tracing::info!(
                    alerts = p.alerts,
                    deliveries = p.deliveries,
                    attempts = p.attempts,
                    %cutoff,
                    retention = %retention.spelled(),
                    "retention: deleted finished history"
                ),
                // The next pass tries again; a database that is down is someone else's alarm.
                Err(e) => tracing::warn!(error = %e, "retention: a pass failed"),
            }
        }
    })
}
