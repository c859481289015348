//! Alerts in: a checked draft (the checks themselves are in `herald_domain::alert`, shared by
//! `sendAlert`, `sendAlerts` and `POST /v1/alerts`) becomes what the store takes; then group
//! commit. Concurrent calls queue here and are written together, in one transaction per group, so a thousand single-alert calls a second cost a few dozen commits,
//! not a thousand. Each call returns once its alert and deliveries are committed.

use std::time::Instant;

use chrono::{SubsecRound, Utc};
use tokio::sync::{mpsc, oneshot};

pub use herald_domain::alert::{
    AlertDraft, AlertInputError, MAX_CONTEXT_BYTES, MAX_DYNAMIC_DESTINATIONS,
};

use crate::dispatch::routing::RoutingRequest;
use crate::dispatch::{Dispatcher, Reservation};
use crate::store::alerts::{self, Accepted, IncomingAlert};
use crate::store::deliveries::Claimed;
use crate::store::{DATABASE_WAIT, Store, StoreError, ids};
use crate::telemetry::{AlertSource, Metrics};

pub const MAX_BATCH: usize = 1000;
/// Alerts written per group transaction, at most.
const GROUP_LIMIT: usize = 2000;

/// Checks a draft (the rules are in `herald_domain::alert`) and makes it what the store takes.
/// Panther's timestamps have whole seconds, so a default `createdAt` has too; a caller's own
/// precision is kept.
pub fn incoming(draft: AlertDraft) -> Result<IncomingAlert, AlertInputError> {
    let checked = draft.check(Utc::now().trunc_subsecs(0), ids::alert)?;
    Ok(IncomingAlert {
        routing: RoutingRequest {
            severity: Some(checked.payload.severity),
            dynamic_severity: checked.dynamic_severity,
            alert_type: Some(checked.payload.alert_type),
            destination_overrides: checked.destination_overrides,
            dynamic_destinations: checked.dynamic_destinations,
            log_types: checked.log_types,
        },
        payload: checked.payload,
    })
}

type Reply = oneshot::Sender<Result<Vec<Accepted>, IngestError>>;

/// One call's alerts, when the call arrived, and where its answer goes.
type Call = (Vec<IncomingAlert>, Instant, Reply);

/// The group-commit writer. Cheap to clone.
#[derive(Clone)]
pub struct Ingest {
    tx: mpsc::Sender<Call>,
    metrics: Metrics,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum IngestError {
    #[error("the alert could not be stored: {0}")]
    Store(String),
    /// The database is unreachable or locked for now: nothing was stored, the caller may retry.
    #[error("the database is unavailable; the alert was not stored, try again")]
    Unavailable,
    #[error("the server is shutting down")]
    Stopped,
}

impl IngestError {
    /// Whether the caller should simply try again (the database is away, or this process is
    /// stopping and another replica can take the call), as opposed to a fault on our side.
    pub fn is_retryable(&self) -> bool {
        matches!(self, IngestError::Unavailable | IngestError::Stopped)
    }
}

impl Ingest {
    pub fn start(store: Store, dispatcher: Dispatcher) -> Self {
        let (tx, rx) = mpsc::channel(10_000);
        let metrics = dispatcher.metrics().clone();
        let (starts, to_start) = mpsc::unbounded_channel();
        tokio::spawn(start_leased(dispatcher.clone(), to_start));
        tokio::spawn(group_commit(store, dispatcher, rx, starts));
        Ingest { tx, metrics }
    }

    /// Stores the alerts and their deliveries; returns when they are committed. `source` is the
    /// API they came through, for `herald_alerts_accepted_total`.
    pub async fn accept(
        &self,
        source: AlertSource,
        alerts: Vec<IncomingAlert>,
    ) -> Result<Vec<Accepted>, IngestError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send((alerts, Instant::now(), reply))
            .await
            .map_err(|_| IngestError::Stopped)?;
        let accepted = answer.await.map_err(|_| IngestError::Stopped)??;
        self.metrics.alerts_accepted(source, accepted.len());
        Ok(accepted)
    }
}

/// Deliveries leased at insert, with the capacity set aside for them, on their way to the
/// dispatcher.
type Leased = (Reservation, Vec<Claimed>);

/// Starts the leased deliveries group by group, in commit order (so a destination's deliveries
/// start in the order they were stored), on a task of its own: reading their destinations is a
/// round trip the next group's commit need not wait for.
async fn start_leased(dispatcher: Dispatcher, mut rx: mpsc::UnboundedReceiver<Leased>) {
    while let Some((reservation, leased)) = rx.recv().await {
        dispatcher.start_leased(reservation, leased).await;
    }
}

async fn group_commit(
    store: Store,
    dispatcher: Dispatcher,
    mut rx: mpsc::Receiver<Call>,
    starts: mpsc::UnboundedSender<Leased>,
) {
    while let Some(first) = rx.recv().await {
        let mut group = vec![first];
        let mut size = group[0].0.len();
        while size < GROUP_LIMIT {
            match rx.try_recv() {
                Ok(next) => {
                    size += next.0.len();
                    group.push(next);
                }
                Err(_) => break,
            }
        }
        let counts: Vec<usize> = group.iter().map(|(a, _, _)| a.len()).collect();
        let all: Vec<IncomingAlert> = group.iter_mut().flat_map(|(a, _, _)| a.drain(..)).collect();
        // No call waits for another process's lock on SQLite longer than DATABASE_WAIT in all:
        // time queued behind the group before counts (an outage makes each group wait).
        // Calls come out of the channel in the order they went in: the first is the oldest.
        let oldest = group[0].1;
        // New deliveries go straight to this process's dispatcher where it has room: stored
        // already leased to it, they need no claim (a write, and a wait for the writer on
        // SQLite) before they are sent.
        let mut reservation = dispatcher.reserve();
        let result = alerts::accept(
            &store,
            dispatcher.worker_id(),
            all,
            reservation.as_ref().map(|r| &r.lease),
            oldest + DATABASE_WAIT,
        )
        .await;
        match result {
            Ok(mut accepted) => {
                // The leased deliveries are counted as this process's before anything else: the
                // next group and the next claim read what each destination holds, and must see
                // them, or a destination could be leased past its bound.
                if let Some(reservation) = reservation.as_mut() {
                    dispatcher.hold(reservation, &accepted.leased, accepted.held_gate.take());
                }
                if accepted.queued > 0 {
                    dispatcher.wake();
                }
                let mut results = accepted.results.into_iter();
                for ((_, _, reply), n) in group.into_iter().zip(counts) {
                    let _ = reply.send(Ok(results.by_ref().take(n).collect()));
                }
                if let Some(reservation) = reservation
                    && let Err(mpsc::error::SendError((reservation, leased))) =
                        starts.send((reservation, accepted.leased))
                {
                    // The starter is gone only if it panicked; the dispatcher hands them back.
                    dispatcher.start_leased(reservation, leased).await;
                }
            }
            Err(e) => {
                // With capacity set aside, the commit may have happened with its answer lost,
                // leaving rows leased to this process that it never started.
                if reservation.take().is_some() {
                    dispatcher.lost_track();
                    dispatcher.wake();
                }
                tracing::error!(error = %e, alerts = size, "cannot store alerts");
                let error = if e.is_unavailable() {
                    IngestError::Unavailable
                } else {
                    IngestError::Store(store_error_message(&e))
                };
                for (_, _, reply) in group {
                    let _ = reply.send(Err(error.clone()));
                }
            }
        }
    }
}

fn store_error_message(e: &StoreError) -> String {
    match e {
        StoreError::Database(_) | StoreError::Connect(_) => "the database failed; try again".into(),
        other => other.to_string(),
    }
}
