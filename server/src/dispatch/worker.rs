//! The claim loop, the attempts it starts, and the recorder that writes their results in batches.
//!
//! Bounds: at most `max_in_flight` claimed deliveries in this process, at most
//! `max_in_flight_per_destination` requests to one destination at once, and a destination at its
//! bound is left out of the next claims, so a slow receiver cannot fill the process with its work.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, broadcast, mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::client::{WebhookClient, WebhookRequest, WebhookResponse};
use super::retry::{self, RetrySchedule};
use crate::config::DispatchConfig;
use crate::signing;
use crate::store::deliveries::{self, Attempt, Claimed, Delivery, DeliveryState, Outcome};
use crate::store::destinations::{self, Destination};
use crate::store::{Store, StoreError, now};
use crate::telemetry::{self, Metrics};

/// Deliveries claimed per query.
const CLAIM_BATCH: usize = 256;
/// Results written per transaction, at most.
const RECORD_BATCH: usize = 512;

type RecordRequest = (Outcome, Option<oneshot::Sender<Option<Delivery>>>);

pub(super) struct Inner {
    pub store: Store,
    pub config: DispatchConfig,
    pub schedule: RetrySchedule,
    pub client: WebhookClient,
    pub events: broadcast::Sender<Delivery>,
    /// Destinations as they change: auto-disabled here, or written through the API.
    pub destination_events: broadcast::Sender<Destination>,
    pub wake: Notify,
    /// This process's name on the leases it takes.
    pub worker_id: String,
    pub metrics: Metrics,
    /// Whether `run` is running (see `Running`).
    pub running: AtomicBool,
    global: Arc<Semaphore>,
    per_destination: Mutex<HashMap<String, DestinationSlot>>,
    capacity_freed: Notify,
    recorder: Mutex<Option<mpsc::UnboundedSender<RecordRequest>>>,
}

struct DestinationSlot {
    requests: Arc<Semaphore>,
    /// Claimed and not yet finished, whether sending or waiting for a request slot.
    claimed: usize,
}

impl Inner {
    pub fn new(
        store: Store,
        config: DispatchConfig,
        schedule: RetrySchedule,
        client: WebhookClient,
        events: broadcast::Sender<Delivery>,
        destination_events: broadcast::Sender<Destination>,
        metrics: Metrics,
    ) -> Self {
        Inner {
            metrics,
            running: AtomicBool::new(false),
            destination_events,
            global: Arc::new(Semaphore::new(config.max_in_flight as usize)),
            store,
            config,
            schedule,
            client,
            events,
            wake: Notify::new(),
            worker_id: format!("wrk_{}", uuid::Uuid::now_v7().simple()),
            per_destination: Mutex::new(HashMap::new()),
            capacity_freed: Notify::new(),
            recorder: Mutex::new(None),
        }
    }

    /// Destinations with as much claimed work as they have request slots sit out the next claims,
    /// so a slow destination cannot fill the process's capacity with work that only waits.
    fn saturated_destinations(&self) -> Vec<String> {
        let limit = self.config.max_in_flight_per_destination as usize;
        self.per_destination
            .lock()
            .expect("slots lock")
            .iter()
            .filter(|(_, s)| s.claimed >= limit)
            .map(|(d, _)| d.clone())
            .collect()
    }

    fn take_slot(&self, destination: &str) -> Arc<Semaphore> {
        let mut slots = self.per_destination.lock().expect("slots lock");
        let slot = slots
            .entry(destination.to_owned())
            .or_insert_with(|| DestinationSlot {
                requests: Arc::new(Semaphore::new(
                    self.config.max_in_flight_per_destination as usize,
                )),
                claimed: 0,
            });
        slot.claimed += 1;
        slot.requests.clone()
    }

    /// Called when a claimed delivery is finished (its permit already dropped). Wakes the claim
    /// loop only when that can lead to a useful claim: a saturated destination is half empty, or a
    /// good part of the overall capacity is free. Waking on every finished delivery would cost two
    /// queries per delivery that claim nothing.
    fn release_slot(&self, destination: &str) {
        let limit = self.config.max_in_flight_per_destination as usize;
        let mut unsaturated = false;
        {
            let mut slots = self.per_destination.lock().expect("slots lock");
            if let Some(slot) = slots.get_mut(destination) {
                // Half-empty rather than one below the bound: a claim then brings a useful batch
                // instead of one claim per finished delivery.
                unsaturated = slot.claimed == (limit / 2).max(1);
                slot.claimed -= 1;
                if slot.claimed == 0 {
                    slots.remove(destination);
                }
            }
        }
        let free = self.global.available_permits();
        let worth_a_claim = (self.config.max_in_flight as usize / 4).clamp(1, CLAIM_BATCH);
        if unsaturated || free == worth_a_claim {
            self.capacity_freed.notify_one();
        }
    }

    fn record(&self, outcome: Outcome, reply: Option<oneshot::Sender<Option<Delivery>>>) {
        let sender = self.recorder.lock().expect("recorder lock").clone();
        match sender {
            Some(tx) => {
                let _ = tx.send((outcome, reply));
            }
            // No recorder (not started, or stopping): the lease runs out and the delivery is
            // attempted again, which is the at-least-once promise.
            None => {
                tracing::warn!(delivery = %outcome.delivery_id, "result dropped: recorder stopped")
            }
        }
    }
}

/// Marks the claim loop running while it lives; dropped on return or unwinding.
struct Running<'a>(&'a AtomicBool);

impl<'a> Running<'a> {
    fn mark(flag: &'a AtomicBool) -> Self {
        flag.store(true, Ordering::Release);
        Running(flag)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

pub(super) async fn run(inner: Arc<Inner>, shutdown: CancellationToken) {
    let _running = Running::mark(&inner.running);
    let (tx, rx) = mpsc::unbounded_channel();
    *inner.recorder.lock().expect("recorder lock") = Some(tx);
    let recorder = tokio::spawn(record_loop(inner.clone(), rx));
    let mut tasks = JoinSet::new();
    tracing::info!(worker = %inner.worker_id, "dispatcher started");
    while !shutdown.is_cancelled() {
        while tasks.try_join_next().is_some() {}
        let free = inner.global.available_permits().min(CLAIM_BATCH);
        if free == 0 {
            tokio::select! {
                _ = inner.capacity_freed.notified() => {}
                // A safety net: the wake-up is sent on crossing a threshold, which two tasks
                // finishing at once can step over.
                _ = tokio::time::sleep(inner.config.poll_interval) => {}
                _ = shutdown.cancelled() => {}
            }
            continue;
        }
        let skip = inner.saturated_destinations();
        let claim = match deliveries::claim_due(
            inner.store.db(),
            &inner.worker_id,
            free,
            inner.config.max_in_flight_per_destination as usize,
            inner.config.lease,
            &skip,
        )
        .await
        {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "cannot claim deliveries; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(inner.config.poll_interval) => {}
                    _ = shutdown.cancelled() => {}
                }
                continue;
            }
        };
        let claimed = claim.claimed;
        if claimed.is_empty() {
            idle(&inner, &shutdown, claim.throttled_until).await;
            continue;
        }
        let ids: Vec<String> = claimed
            .iter()
            .map(|c| c.delivery.destination_id.clone())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let targets: HashMap<String, Arc<Destination>> =
            match destinations::get_many(inner.store.db(), inner.store.secrets(), &ids).await {
                Ok(list) => list
                    .into_iter()
                    .map(|d| (d.id.clone(), Arc::new(d)))
                    .collect(),
                Err(e) => {
                    // The claimed rows stay leased and come back when the lease ends.
                    tracing::error!(error = %e, "cannot load destinations for claimed deliveries");
                    continue;
                }
            };
        for c in claimed {
            let permit = inner
                .global
                .clone()
                .try_acquire_owned()
                .expect("claims never exceed free capacity");
            let target = targets.get(&c.delivery.destination_id).cloned();
            let slot = inner.take_slot(&c.delivery.destination_id);
            let inner = inner.clone();
            tasks.spawn(async move {
                let destination_id = c.delivery.destination_id.clone();
                run_one(&inner, c, target, slot, permit).await;
                inner.release_slot(&destination_id);
            });
        }
    }
    // Finish what was started, so its results are recorded rather than re-sent after the lease.
    while tasks.join_next().await.is_some() {}
    inner.recorder.lock().expect("recorder lock").take();
    let _ = recorder.await;
    tracing::info!(worker = %inner.worker_id, "dispatcher stopped");
}

/// Sleeps until woken, until the next delivery falls due, or for the poll interval, whichever
/// comes first; when a rate-limited destination was left out of the claim, no longer than until
/// its next token.
async fn idle(inner: &Inner, shutdown: &CancellationToken, throttled_until: Option<DateTime<Utc>>) {
    let poll = inner.config.poll_interval;
    let wait = match deliveries::next_due(inner.store.db()).await {
        Ok(Some(t)) => (t - now()).to_std().unwrap_or(Duration::ZERO).min(poll),
        _ => poll,
    };
    if wait.is_zero() {
        // Due rows exist but none could be claimed (their destinations are saturated, disabled
        // or over their rate): wait for capacity, news or a token rather than spin.
        let nap = throttled_until.map_or(poll, |t| {
            (t - now()).to_std().unwrap_or(Duration::ZERO).min(poll)
        });
        tokio::select! {
            _ = inner.capacity_freed.notified() => {}
            _ = inner.wake.notified() => {}
            _ = tokio::time::sleep(nap) => {}
            _ = shutdown.cancelled() => {}
        }
        return;
    }
    tokio::select! {
        _ = inner.wake.notified() => {}
        _ = tokio::time::sleep(wait) => {}
        _ = shutdown.cancelled() => {}
    }
}

async fn run_one(
    inner: &Inner,
    claimed: Claimed,
    target: Option<Arc<Destination>>,
    slot: Arc<Semaphore>,
    _permit: OwnedSemaphorePermit,
) {
    let Some(target) = target else {
        destination_gone(inner, &claimed.delivery).await;
        return;
    };
    let outcome = {
        let _request_slot = slot
            .acquire()
            .await
            .expect("slot semaphores are never closed");
        attempt(inner, &claimed, &target).await
    };
    inner.record(outcome, None);
}

async fn destination_gone(inner: &Inner, d: &Delivery) {
    match deliveries::fail_without_attempt(inner.store.db(), &d.id, "destination deleted").await {
        Ok(()) => {
            inner.metrics.delivery_finished(DeliveryState::Failed);
            if let Ok(Some(updated)) = deliveries::get(inner.store.db(), &d.id).await {
                let _ = inner.events.send(updated);
            }
        }
        Err(e) => tracing::error!(delivery = %d.id, error = %e, "cannot end a delivery"),
    }
}

pub(super) async fn attempt_now(inner: &Inner, claimed: Claimed) -> Result<Delivery, StoreError> {
    let Some(target) = destinations::get(
        inner.store.db(),
        inner.store.secrets(),
        &claimed.delivery.destination_id,
    )
    .await?
    else {
        return Err(StoreError::NotFound {
            kind: "destination",
            id: claimed.delivery.destination_id.clone(),
        });
    };
    let outcome = attempt(inner, &claimed, &target).await;
    let (tx, rx) = oneshot::channel();
    inner.record(outcome, Some(tx));
    match rx.await {
        Ok(Some(d)) => Ok(d),
        _ => deliveries::get(inner.store.db(), &claimed.delivery.id)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                kind: "delivery",
                id: claimed.delivery.id.clone(),
            }),
    }
}

/// The signing secrets in use: the current one, and the previous one during its grace period.
fn live_secrets(d: &Destination, at: DateTime<Utc>) -> Vec<&str> {
    let mut secrets = vec![d.signing_secret.as_str()];
    if let Some((previous, until)) = &d.previous_signing_secret
        && *until > at
    {
        secrets.push(previous.as_str());
    }
    secrets
}

/// One attempt: sign, send, and decide what it means for the delivery.
async fn attempt(inner: &Inner, claimed: &Claimed, target: &Destination) -> Outcome {
    let d = &claimed.delivery;
    let at = now();
    let timestamp = at.timestamp();
    let custom_headers: Vec<(String, String)> = target
        .custom_headers
        .iter()
        .map(|h| (h.name.clone(), h.value.clone()))
        .collect();
    let mut headers = vec![("webhook-id".to_owned(), d.webhook_id.clone())];
    headers.push(("webhook-timestamp".into(), timestamp.to_string()));
    match signing::signature_header(
        &live_secrets(target, at),
        &d.webhook_id,
        timestamp,
        claimed.body.as_bytes(),
    ) {
        Ok(sig) => headers.push(("webhook-signature".into(), sig)),
        Err(e) => {
            tracing::error!(destination = %target.id, error = %e, "cannot sign; sending unsigned")
        }
    }
    let response = inner
        .client
        .send(WebhookRequest {
            url: target.url.clone(),
            custom_headers,
            headers,
            body: claimed.body.clone().into_bytes(),
        })
        .await;
    let unit: f64 = rand::random();
    let outcome = outcome_of(
        d,
        &response,
        &inner.schedule,
        inner.config.retry_after_cap,
        unit,
    );
    telemetry::attempt(&inner.metrics, d, &response, &outcome);
    outcome
}

/// What an attempt's response means for its delivery: the state, when to try next, and Panther's
/// message (the body on success, `request failed: …` or `network error: …` otherwise).
pub fn outcome_of(
    d: &Delivery,
    r: &WebhookResponse,
    schedule: &RetrySchedule,
    retry_after_cap: Duration,
    jitter_unit: f64,
) -> Outcome {
    let number = d.attempt_count + 1;
    let success = r.status.is_some_and(|s| (200..300).contains(&s));
    let message = match (r.status, &r.error) {
        _ if success => r.body.clone().unwrap_or_default(),
        (Some(code), _) => {
            let reason = reqwest::StatusCode::from_u16(code)
                .ok()
                .and_then(|s| s.canonical_reason())
                .unwrap_or("");
            format!(
                "request failed: {code} {reason}: {}",
                r.body.as_deref().unwrap_or_default()
            )
        }
        (None, error) => format!(
            "network error: {}",
            error.as_deref().unwrap_or("no response")
        ),
    };
    let (state, next_attempt_at) = if success {
        (DeliveryState::Succeeded, None)
    } else if d.test {
        // The test alert is sent once, synchronously; it is not retried.
        (DeliveryState::Failed, None)
    } else {
        match schedule.delay(number as usize, jitter_unit) {
            None => (DeliveryState::Failed, None),
            Some(mut delay) => {
                if matches!(r.status, Some(429 | 503))
                    && let Some(after) = r
                        .header("retry-after")
                        .and_then(|v| retry::parse_retry_after(v, r.started_at, retry_after_cap))
                {
                    delay = delay.max(after);
                }
                let next = r.started_at
                    + r.duration
                    + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::hours(1));
                (DeliveryState::Retrying, Some(next))
            }
        }
    };
    Outcome {
        delivery_id: d.id.clone(),
        attempt: Attempt {
            number,
            started_at: r.started_at,
            duration_ms: r.duration.as_millis().min(i32::MAX as u128) as i32,
            status_code: r.status.map(i32::from),
            response_body: r.body.clone(),
            response_truncated: r.truncated,
            response_headers: r.headers.clone(),
            error: r.error.clone(),
            url: Some(r.url.clone()),
            request_headers: Some(Value::Object(r.request_headers.clone())),
        },
        state,
        next_attempt_at,
        message,
    }
}

/// Writes results in batches: whatever has arrived while the previous batch was being written
/// goes into the next transaction.
async fn record_loop(inner: Arc<Inner>, mut rx: mpsc::UnboundedReceiver<RecordRequest>) {
    let mut batch: Vec<RecordRequest> = Vec::with_capacity(RECORD_BATCH);
    while rx.recv_many(&mut batch, RECORD_BATCH).await > 0 {
        let outcomes: Vec<Outcome> = batch.iter().map(|(o, _)| o.clone()).collect();
        let mut written = None;
        for wait_ms in [0u64, 100, 500, 2000] {
            tokio::time::sleep(Duration::from_millis(wait_ms)).await;
            match deliveries::record_outcomes(inner.store.db(), &inner.worker_id, &outcomes).await {
                Ok(updated) => {
                    written = Some(updated);
                    break;
                }
                Err(e) => tracing::error!(error = %e, "cannot record delivery attempts; retrying"),
            }
        }
        let written = written.unwrap_or_default();
        if !written.disabled.is_empty() {
            tracing::warn!(destinations = ?written.disabled, "destinations auto-disabled after consecutive failed deliveries");
            match destinations::get_many(inner.store.db(), inner.store.secrets(), &written.disabled)
                .await
            {
                Ok(list) => {
                    for d in list {
                        let _ = inner.destination_events.send(d);
                    }
                }
                Err(e) => tracing::error!(error = %e, "cannot load auto-disabled destinations"),
            }
        }
        let updated: HashMap<String, Delivery> = written
            .deliveries
            .into_iter()
            .map(|d| (d.id.clone(), d))
            .collect();
        for (outcome, reply) in batch.drain(..) {
            let delivery = updated.get(&outcome.delivery_id).cloned();
            if let Some(d) = &delivery {
                let _ = inner.events.send(d.clone());
            }
            if let Some(reply) = reply {
                let _ = reply.send(delivery);
            }
        }
    }
}
