//! The dispatcher: takes due deliveries from the database queue, sends them, and records every
//! attempt. `routing` decides where an alert goes, `payload` what is sent, `retry` when to try
//! again, `client` how a request leaves the process, `worker` the claim loop and the recorder,
//! `peers` what it hears from the other replicas (PostgreSQL).

mod backoff;
pub mod client;
pub mod payload;
mod peers;
pub mod retry;
pub mod routing;
mod worker;

use std::sync::Arc;

use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use worker::{Reservation, outcome_of};

use crate::config::DispatchConfig;
use crate::store::Store;
use crate::store::deliveries::Delivery;
use crate::store::destinations::Destination;
use crate::telemetry::Metrics;
use client::{ClientError, WebhookClient};
use retry::RetrySchedule;

/// A handle on the dispatcher; cheap to clone.
#[derive(Clone)]
pub struct Dispatcher {
    inner: Arc<worker::Inner>,
}

impl Dispatcher {
    /// A dispatcher with metrics of its own (nobody scrapes them); `app::serve` uses
    /// [`Dispatcher::with_metrics`].
    pub fn new(store: Store, config: DispatchConfig) -> Result<Self, ClientError> {
        Self::with_metrics(store, config, Metrics::new())
    }

    /// A dispatcher that counts its attempts and finished deliveries into `metrics`.
    pub fn with_metrics(
        store: Store,
        config: DispatchConfig,
        metrics: Metrics,
    ) -> Result<Self, ClientError> {
        let client = WebhookClient::new(config.delivery_timeout, &config.egress)?;
        let schedule = config
            .retry_schedule
            .clone()
            .unwrap_or_else(RetrySchedule::default_schedule);
        let (events, _) = broadcast::channel(4096);
        let (destination_events, _) = broadcast::channel(256);
        Ok(Dispatcher {
            inner: Arc::new(worker::Inner::new(
                store,
                config,
                schedule,
                client,
                events,
                destination_events,
                metrics,
            )),
        })
    }

    /// Starts the claim loop, and on PostgreSQL the listener that hears the other replicas; both
    /// stop when `shutdown` fires, the claim loop after finishing the attempts in flight.
    pub fn start(&self, shutdown: CancellationToken) -> JoinHandle<()> {
        let peers = tokio::spawn(peers::run(self.inner.clone(), shutdown.clone()));
        let worker = worker::run(self.inner.clone(), shutdown);
        tokio::spawn(async move {
            worker.await;
            let _ = peers.await;
        })
    }

    /// Tells the claim loop that new deliveries were queued, so it need not wait for its poll.
    pub fn wake(&self) {
        self.inner.wake.notify_one();
    }

    /// Sets capacity aside for deliveries to be leased to this process as they are inserted, so
    /// they go out at once instead of waiting for a claim (see `store::alerts::DirectLease`).
    pub fn reserve(&self) -> Option<Reservation> {
        worker::reserve(&self.inner)
    }

    /// Counts the deliveries leased at insert with `reservation` as this process's, at once, and
    /// then lets go of `gate`, the one the insert read the counts under: call it as soon as the
    /// insert commits.
    pub fn hold(
        &self,
        reservation: &mut Reservation,
        leased: &[crate::store::deliveries::Claimed],
        gate: Option<crate::store::held::HeldGuard>,
    ) {
        worker::hold(&self.inner, reservation, leased, gate)
    }

    /// Starts the deliveries leased at insert with `reservation`'s capacity (after [`Self::hold`]).
    pub async fn start_leased(
        &self,
        reservation: Reservation,
        leased: Vec<crate::store::deliveries::Claimed>,
    ) {
        worker::start_leased(&self.inner, reservation, leased).await
    }

    /// Says that deliveries may have been leased to this process without reaching it (a write
    /// whose outcome is unknown); the claim loop looks for such leases once the database answers.
    pub fn lost_track(&self) {
        *self.inner.lost_track_at.lock().expect("lost lock") = Some(crate::store::now());
    }

    /// Every delivery change this process makes, as it is recorded.
    pub fn subscribe(&self) -> broadcast::Receiver<Delivery> {
        self.inner.events.subscribe()
    }

    /// Every destination change this process makes: an auto-disable, or a write through the API.
    pub fn subscribe_destinations(&self) -> broadcast::Receiver<Destination> {
        self.inner.destination_events.subscribe()
    }

    /// Streams a destination changed outside the dispatcher (an API write) to subscribers.
    pub fn destination_changed(&self, d: Destination) {
        let _ = self.inner.destination_events.send(d);
    }

    /// Streams a delivery changed outside the dispatcher (ended by a destination's deletion) to
    /// subscribers.
    pub fn delivery_changed(&self, d: Delivery) {
        let _ = self.inner.events.send(d);
    }

    /// Sends one delivery now, outside the queue, and waits until its single attempt is recorded
    /// (the synchronous test alert). The caller has leased the delivery to this worker.
    pub async fn attempt_now(
        &self,
        claimed: crate::store::deliveries::Claimed,
    ) -> Result<Delivery, crate::store::StoreError> {
        worker::attempt_now(&self.inner, claimed).await
    }

    /// Where deliveries may go; the API refuses destination URLs this refuses.
    pub fn egress(&self) -> &crate::egress::Policy {
        self.inner.client.policy()
    }

    /// Whether the claim loop runs: set when it starts, cleared when it ends (also by a panic).
    /// `/readyz` reports a stopped dispatcher.
    pub fn is_running(&self) -> bool {
        self.inner
            .running
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// The metrics this dispatcher counts into; the rest of the server counts into the same.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    pub fn worker_id(&self) -> &str {
        &self.inner.worker_id
    }

    pub fn lease(&self) -> std::time::Duration {
        self.inner.config.lease
    }
}
