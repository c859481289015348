//! Hearing the other replicas (PostgreSQL only): news that work is due wakes the claim loop, and
//! the deliveries and destinations another process changed are read and streamed to this
//! process's subscribers, as if it had changed them itself.
//!
//! The channels and payloads are the store's (`store::notify`); this is what the dispatcher does
//! with them. Notifications are hints: one missed while disconnected costs at most a poll
//! interval, and every (re)connection wakes the claim loop once to look for what was missed.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::backoff::Backoff;
use super::worker::Inner;
use crate::store::notify::{Listener, News, Notice};
use crate::store::{deliveries, destinations};

/// The first wait before connecting again after a failure; doubled per failure up to the cap.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// A database down for a while is tried every few seconds, not hammered.
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// Notices handled together when they arrive in a burst.
const BURST: usize = 1000;

/// Listens until `shutdown` fires, connecting again by itself whenever the connection drops.
/// Returns at once on SQLite, where there is one process.
pub(super) async fn run(inner: Arc<Inner>, shutdown: CancellationToken) {
    let mut backoff = Backoff::new(FIRST_BACKOFF, MAX_BACKOFF);
    let mut reconnecting = false;
    loop {
        let connected = tokio::select! {
            c = Listener::connect(&inner.store) => c,
            _ = shutdown.cancelled() => return,
        };
        let mut listener = match connected {
            Ok(Some(listener)) => listener,
            Ok(None) => return,
            Err(e) => {
                let wait = backoff.next();
                tracing::warn!(error = %e, retry_in = ?wait, "cannot listen for other replicas' news; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.cancelled() => return,
                }
                continue;
            }
        };
        backoff.reset();
        if reconnecting {
            tracing::info!("listening for other replicas' news again");
        } else {
            tracing::info!("listening for other replicas' news");
        }
        // Work queued while nobody listened (before the first connection, or during an outage)
        // announced itself to no one here: look once now instead of at the next poll.
        inner.wake.notify_one();
        reconnecting = true;
        loop {
            let next = tokio::select! {
                n = listener.next() => n,
                _ = shutdown.cancelled() => return,
            };
            match next {
                Ok(Some(first)) => {
                    let mut burst = vec![first];
                    while burst.len() < BURST {
                        match listener.next_buffered() {
                            Some(n) => burst.push(n),
                            None => break,
                        }
                    }
                    handle(&inner, burst).await;
                }
                Ok(None) => {
                    tracing::warn!("lost the connection that listens for other replicas' news");
                    break;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "lost the connection that listens for other replicas' news");
                    break;
                }
            }
        }
    }
}

/// Acts on a burst of notices, leaving out this process's own (it acted on those as it made them).
async fn handle(inner: &Inner, burst: Vec<Notice>) {
    let mut queue = false;
    let mut delivery_ids = Vec::new();
    let mut destination_ids = Vec::new();
    let mut seen = HashSet::new();
    for notice in burst {
        if notice.origin == inner.worker_id {
            continue;
        }
        match notice.news {
            News::Queue => queue = true,
            News::Deliveries(ids) => {
                delivery_ids.extend(ids.into_iter().filter(|id| seen.insert(id.clone())))
            }
            News::Destinations(ids) => {
                destination_ids.extend(ids.into_iter().filter(|id| seen.insert(id.clone())))
            }
        }
    }
    if queue {
        inner.wake.notify_one();
    }
    // Reads only for someone: with no subscriber in this process, the news is nobody's.
    if !delivery_ids.is_empty() && inner.events.receiver_count() > 0 {
        match deliveries::get_many(inner.store.db(), &delivery_ids).await {
            Ok(list) => {
                for d in list {
                    let _ = inner.events.send(d);
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read deliveries another replica changed"),
        }
    }
    if !destination_ids.is_empty() && inner.destination_events.receiver_count() > 0 {
        match destinations::get_many(inner.store.db(), inner.store.secrets(), &destination_ids)
            .await
        {
            Ok(list) => {
                for d in list {
                    let _ = inner.destination_events.send(d);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read destinations another replica changed")
            }
        }
    }
}
