//! The claim loop, the attempts it starts, and the recorder that writes their results in batches.
//!
//! Bounds: at most `max_in_flight` claimed deliveries in this process, at most
//! `max_in_flight_per_destination` requests to one destination at once, and a destination at its
//! bound is left out of the next claims, so a slow receiver cannot fill the process with its work.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, broadcast, mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::backoff::Backoff;
use super::client::{WebhookClient, WebhookRequest, WebhookResponse};
use super::retry::{self, RetrySchedule};
use crate::config::DispatchConfig;
use crate::signing;
use crate::store::alerts::DirectLease;
use crate::store::deliveries::{self, Attempt, Claimed, Delivery, DeliveryState, Outcome};
use crate::store::destinations::{self, Destination};
use crate::store::held::{HeldCounts, HeldGuard};
use crate::store::{Store, StoreError, now};
use crate::telemetry::{self, Metrics};

/// Deliveries claimed per query.
const CLAIM_BATCH: usize = 256;
/// Results written per transaction, at most.
const RECORD_BATCH: usize = 512;
/// A batch of results smaller than this waits up to RECORD_LINGER for more before it is written.
/// The attempts are done; only their rows wait (and the capacity they hold).
const RECORD_LINGER_BELOW: usize = 64;
const RECORD_LINGER: Duration = Duration::from_millis(2);
/// The longest pause between two tries of a claim, or of writing results, while the database fails.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Tries of a batch of results that fails for a reason other than an unreachable database (a
/// fault in the data or the code) before it is dropped; its deliveries come back after the lease.
const RECORD_TRIES_ON_FAULT: usize = 4;
/// Deliveries one destination may have in this process at once, as a multiple of its request
/// slots: more windows wait in memory while one is sent, so a busy destination's slots never
/// stand empty while a claim or an insert brings more. A claim comes when it is half empty: four
/// windows make each claim bring two windows' worth (64 deliveries at the default 32 slots), so a
/// backlog drains with half as many claims, each a commit on the one SQLite writer
/// (BENCHMARKS.md: ~10,400 → ~11,700 deliveries/s while draining).
const QUEUE_WINDOWS: usize = 4;
/// At shutdown, how long results still unwritten (and leases to hand back) may wait for the
/// database beyond the grace, so a short outage at that moment does not cost re-sends.
const FLUSH_MARGIN: Duration = Duration::from_secs(5);

/// A result for the recorder: the outcome, who waits for the delivery as written, and the
/// capacity the attempt held, released only once the result is written.
type RecordRequest = (
    Outcome,
    Option<oneshot::Sender<Option<Delivery>>>,
    Option<OwnedSemaphorePermit>,
);

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
    per_destination: Arc<Mutex<HashMap<String, DestinationSlot>>>,
    capacity_freed: Notify,
    recorder: Mutex<Option<mpsc::UnboundedSender<RecordRequest>>>,
    tracked: Mutex<Tracked>,
    /// Where attempts are started, while the dispatcher runs: the claim loop and the deliveries
    /// leased at insert both start theirs here, so shutdown finds them all in one place.
    launcher: Mutex<Option<Launcher>>,
    /// Set when deliveries may have been leased to this worker without reaching it (an insert
    /// whose commit's answer was lost): the time of that failure, for `reconcile_leases`.
    pub lost_track_at: Mutex<Option<DateTime<Utc>>>,
    /// What each destination holds here, as the lease-taking transactions read it: under a gate
    /// that an alert group keeps until [`hold`] and a claim until it has taken its places, so
    /// that neither reads the counts while the other's leases are still uncounted (the bound test
    /// failed 2 runs in 8 without it). See `store::held`.
    held: HeldCounts,
}

/// The attempts running, and the signal that stops them.
struct Launcher {
    tasks: JoinSet<()>,
    shutdown: CancellationToken,
}

/// Request capacity set aside for deliveries about to be leased at insert: what the store may
/// lease, and the permits their attempts will hold. Dropped unused, the permits go back.
pub struct Reservation {
    pub lease: DirectLease,
    permits: Vec<OwnedSemaphorePermit>,
    /// The request slots of the deliveries leased with it, in their order: taken by [`hold`] as
    /// soon as the insert commits.
    slots: Vec<Place>,
}

/// Claimed deliveries by what they are doing, so that shutdown knows what to hand back.
#[derive(Default)]
struct Tracked {
    /// Claimed and waiting for a request slot. Shutdown takes them all out at once and hands
    /// them back; a task starts its attempt only if its id is still here to take out.
    waiting: HashSet<String>,
    /// Attempt started, result not yet with the recorder.
    sending: HashSet<String>,
    /// Result with the recorder, not yet written (or given up).
    recording: HashSet<String>,
}

impl Tracked {
    /// Whether this process holds the delivery in memory, in any of the three stages.
    fn holds(&self, id: &str) -> bool {
        self.waiting.contains(id) || self.sending.contains(id) || self.recording.contains(id)
    }
}

struct DestinationSlot {
    requests: Arc<Semaphore>,
    /// Claimed and not yet finished, whether sending or waiting for a request slot.
    claimed: usize,
    /// Fires once the delivery given the last place has its request slot (or gave up its turn).
    tail: Option<oneshot::Receiver<()>>,
}

/// A delivery's place in its destination's line: it takes a request slot only after the delivery
/// placed before it took one, so a destination's deliveries are sent in the order they were
/// placed (the order they were stored or claimed in), whatever order the runtime happens to poll
/// their tasks in. Without it, a burst's tasks could reach the semaphore out of order.
struct Place {
    requests: Arc<Semaphore>,
    after: Option<oneshot::Receiver<()>>,
    taken: oneshot::Sender<()>,
}

impl Place {
    /// Waits for the turn, then for a request slot.
    async fn request_slot(self) -> OwnedSemaphorePermit {
        if let Some(after) = self.after {
            // An error is a predecessor that ended without a slot: the turn is ours all the same.
            let _ = after.await;
        }
        let permit = self
            .requests
            .acquire_owned()
            .await
            .expect("slot semaphores are never closed");
        let _ = self.taken.send(());
        permit
    }
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
        let per_destination: Arc<Mutex<HashMap<String, DestinationSlot>>> = Arc::default();
        let held = HeldCounts::new({
            let slots = per_destination.clone();
            move || held(&slots)
        });
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
            per_destination,
            capacity_freed: Notify::new(),
            recorder: Mutex::new(None),
            tracked: Mutex::new(Tracked::default()),
            launcher: Mutex::new(None),
            lost_track_at: Mutex::new(None),
            held,
        }
    }

    /// Free capacity worth a claim: waking the claim loop for less costs a query per delivery.
    fn worth_a_claim(&self) -> usize {
        (self.config.max_in_flight as usize / 4).clamp(1, CLAIM_BATCH)
    }

    /// How many deliveries one destination may have in this process at once: its windows, but
    /// never more than half the process's capacity (or its own slots, if more), so that a slow
    /// destination's waiting deliveries cannot take the capacity the others need.
    fn queue_limit(&self) -> usize {
        let slots = self.config.max_in_flight_per_destination as usize;
        (slots * QUEUE_WINDOWS).min(slots.max(self.config.max_in_flight as usize / 2))
    }

    /// Destinations holding as much as `queue_limit` allows sit out the next claims, so a slow
    /// destination cannot fill the process's capacity with work that only waits.
    fn saturated_destinations(&self) -> Vec<String> {
        let limit = self.queue_limit();
        self.per_destination
            .lock()
            .expect("slots lock")
            .iter()
            .filter(|(_, s)| s.claimed >= limit)
            .map(|(d, _)| d.clone())
            .collect()
    }

    /// Counts a delivery as this process's and gives it the next place in its destination's line.
    fn take_slot(&self, destination: &str) -> Place {
        let mut slots = self.per_destination.lock().expect("slots lock");
        let slot = slots
            .entry(destination.to_owned())
            .or_insert_with(|| DestinationSlot {
                requests: Arc::new(Semaphore::new(
                    self.config.max_in_flight_per_destination as usize,
                )),
                claimed: 0,
                tail: None,
            });
        slot.claimed += 1;
        let (taken, next) = oneshot::channel();
        Place {
            requests: slot.requests.clone(),
            after: slot.tail.replace(next),
            taken,
        }
    }

    /// Called when a claimed delivery is finished (its permit already dropped). Wakes the claim
    /// loop only when that can lead to a useful claim: a saturated destination is half empty, or a
    /// good part of the overall capacity is free. Waking on every finished delivery would cost two
    /// queries per delivery that claim nothing.
    fn release_slot(&self, destination: &str) {
        let limit = self.queue_limit();
        let mut unsaturated = false;
        {
            let mut slots = self.per_destination.lock().expect("slots lock");
            if let Some(slot) = slots.get_mut(destination) {
                // Half-empty rather than one below the bound: a claim then brings a useful batch
                // instead of one claim per finished delivery, while a window is still sending.
                unsaturated = slot.claimed == (limit / 2).max(1);
                slot.claimed -= 1;
                if slot.claimed == 0 {
                    slots.remove(destination);
                }
            }
        }
        if unsaturated || self.global.available_permits() == self.worth_a_claim() {
            self.capacity_freed.notify_one();
        }
    }

    /// Moves a claimed delivery from waiting to sending; false when shutdown has taken it to
    /// hand back, and it must not be attempted.
    fn start(&self, id: &str) -> bool {
        let mut tracked = self.tracked.lock().expect("tracked lock");
        if !tracked.waiting.remove(id) {
            return false;
        }
        tracked.sending.insert(id.to_owned());
        true
    }

    /// The attempt (or the ending without one) is over; its result goes to the recorder next.
    fn finish(&self, id: &str) {
        self.tracked
            .lock()
            .expect("tracked lock")
            .sending
            .remove(id);
    }

    /// Hands a result to the recorder. `permit` is the attempt's share of the process's capacity:
    /// it is held until the result is written, so that while the database lags behind the
    /// receivers no new work is started and unwritten results cannot pile up in memory.
    fn record(
        &self,
        outcome: Outcome,
        reply: Option<oneshot::Sender<Option<Delivery>>>,
        permit: Option<OwnedSemaphorePermit>,
    ) {
        let sender = self.recorder.lock().expect("recorder lock").clone();
        match sender {
            Some(tx) => {
                let id = outcome.delivery_id().to_owned();
                self.tracked
                    .lock()
                    .expect("tracked lock")
                    .recording
                    .insert(id.clone());
                if let Err(mpsc::error::SendError((outcome, _, _))) =
                    tx.send((outcome, reply, permit))
                {
                    self.tracked
                        .lock()
                        .expect("tracked lock")
                        .recording
                        .remove(&id);
                    tracing::warn!(delivery = %outcome.delivery_id(), "result dropped: recorder stopped");
                }
            }
            // No recorder (not started, or stopping): the lease runs out and the delivery is
            // attempted again, which is the at-least-once promise.
            None => {
                tracing::warn!(delivery = %outcome.delivery_id(), "result dropped: recorder stopped")
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
    *inner.launcher.lock().expect("launcher lock") = Some(Launcher {
        tasks: JoinSet::new(),
        shutdown: shutdown.clone(),
    });
    tracing::info!(worker = %inner.worker_id, "dispatcher started");
    let mut backoff = Backoff::new(inner.config.poll_interval, MAX_BACKOFF);
    // Set when a claim or what follows it failed: the database may hold leases for this worker
    // that it never received (a claim whose COMMIT took effect while its answer was lost) or
    // could not hand back. They are looked for once the database answers again. The time is the
    // last failure's: a lease taken after it is not an orphan of it.
    let mut reconcile: Option<DateTime<Utc>> = None;
    while !shutdown.is_cancelled() {
        if let Some(lost) = inner.lost_track_at.lock().expect("lost lock").take() {
            reconcile = Some(reconcile.map_or(lost, |r| r.max(lost)));
        }
        if let Some(failed_at) = reconcile {
            match reconcile_leases(&inner, failed_at).await {
                Ok(_) => reconcile = None,
                Err(e) => {
                    let wait = backoff.next();
                    tracing::warn!(error = %e, retry_in = ?wait, "cannot look for this worker's orphaned leases");
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = shutdown.cancelled() => {}
                    }
                    continue;
                }
            }
        }
        if let Some(l) = inner.launcher.lock().expect("launcher lock").as_mut() {
            while l.tasks.try_join_next().is_some() {}
        }
        // The capacity is taken before the claim, not counted: deliveries leased at insert take
        // permits too, at any moment, and the claim must not bring more than it can start.
        let mut permits = take_permits(&inner, CLAIM_BATCH);
        let free = permits.len();
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
        if nothing_to_claim(&inner, &skip).await {
            drop(permits);
            tokio::select! {
                _ = inner.capacity_freed.notified() => {}
                _ = inner.wake.notified() => {}
                _ = tokio::time::sleep(inner.config.poll_interval) => {}
                _ = shutdown.cancelled() => {}
            }
            continue;
        }
        let claim = match deliveries::claim_due(
            &inner.store,
            &inner.worker_id,
            free,
            inner.queue_limit(),
            &inner.held,
            inner.config.lease,
            &skip,
        )
        .await
        {
            Ok(c) => {
                backoff.reset();
                c
            }
            Err(e) => {
                drop(permits);
                reconcile = Some(now());
                // While the database is away, look again less and less often (up to MAX_BACKOFF)
                // rather than hammer it, and log each failure once.
                let wait = backoff.next();
                tracing::error!(error = %e, retry_in = ?wait, "cannot claim deliveries");
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.cancelled() => {}
                }
                continue;
            }
        };
        let (claimed, gate) = (claim.claimed, claim.held_gate);
        // What the claim did not use goes back before anything waits.
        permits.truncate(claimed.len());
        if claimed.is_empty() {
            drop(gate);
            idle(&inner, &shutdown, claim.throttled_until).await;
            continue;
        }
        // In line at once, before anything is awaited: deliveries stored or claimed after this
        // claim's commit are sent after these.
        let places: Vec<Place> = claimed
            .iter()
            .map(|c| inner.take_slot(&c.delivery.destination_id))
            .collect();
        drop(gate);
        let targets = match destinations_of(&inner, &claimed).await {
            Ok(targets) => targets,
            Err(e) => {
                // Handed back, so they need not wait out the lease; if that fails too, the
                // lease brings them back.
                drop(permits);
                drop(places);
                for c in &claimed {
                    inner.release_slot(&c.delivery.destination_id);
                }
                let wait = backoff.next();
                tracing::error!(error = %e, retry_in = ?wait, "cannot load destinations for claimed deliveries");
                let ids: Vec<String> = claimed.iter().map(|c| c.delivery.id.clone()).collect();
                if deliveries::release_leases(inner.store.writer(), &inner.worker_id, &ids)
                    .await
                    .is_err()
                {
                    reconcile = Some(now());
                }
                tokio::select! {
                    _ = tokio::time::sleep(wait) => {}
                    _ = shutdown.cancelled() => {}
                }
                continue;
            }
        };
        let mut launcher = inner.launcher.lock().expect("launcher lock");
        let launcher = launcher.as_mut().expect("set while the loop runs");
        for (c, place) in claimed.into_iter().zip(places) {
            let permit = permits
                .pop()
                .expect("a claim never exceeds the permits taken");
            let target = targets.get(&c.delivery.destination_id).cloned();
            launch(&inner, launcher, c, target, permit, place);
        }
    }
    let tasks = inner
        .launcher
        .lock()
        .expect("launcher lock")
        .take()
        .map(|l| l.tasks)
        .unwrap_or_default();
    stop(&inner, tasks, recorder).await;
}

/// Starts the attempt of a delivery leased to this worker; it waits for a request slot of its
/// destination first, in the order of its `place`.
fn launch(
    inner: &Arc<Inner>,
    launcher: &mut Launcher,
    c: Claimed,
    target: Option<Arc<Destination>>,
    permit: OwnedSemaphorePermit,
    slot: Place,
) {
    inner
        .tracked
        .lock()
        .expect("tracked lock")
        .waiting
        .insert(c.delivery.id.clone());
    let inner = inner.clone();
    let shutdown = launcher.shutdown.clone();
    launcher.tasks.spawn(async move {
        let destination_id = c.delivery.destination_id.clone();
        run_one(&inner, c, target, slot, permit, &shutdown).await;
        inner.release_slot(&destination_id);
    });
}

/// The destinations of these deliveries, by id, in one read; a deleted one is missing.
async fn destinations_of(
    inner: &Inner,
    deliveries: &[Claimed],
) -> Result<HashMap<String, Arc<Destination>>, StoreError> {
    let ids: Vec<String> = deliveries
        .iter()
        .map(|c| c.delivery.destination_id.clone())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    Ok(
        destinations::get_many(inner.store.db(), inner.store.secrets(), &ids)
            .await?
            .into_iter()
            .map(|d| (d.id.clone(), Arc::new(d)))
            .collect(),
    )
}

/// Up to `most` of the process's free request capacity, one permit a delivery.
fn take_permits(inner: &Inner, most: usize) -> Vec<OwnedSemaphorePermit> {
    let mut permits = Vec::new();
    while permits.len() < most {
        match inner.global.clone().try_acquire_owned() {
            Ok(p) => permits.push(p),
            Err(_) => break,
        }
    }
    permits
}

/// The deliveries this process holds (waiting or sending), by destination.
fn held(slots: &Mutex<HashMap<String, DestinationSlot>>) -> HashMap<String, usize> {
    slots
        .lock()
        .expect("slots lock")
        .iter()
        .map(|(d, s)| (d.clone(), s.claimed))
        .collect()
}

/// Whether a claim could take nothing because every enabled destination already holds as much
/// here as `queue_limit` allows. The claim would cost a write transaction (on SQLite a turn of the
/// one writer) to find that out: one did after every claim that filled the only busy destination,
/// a third of the claims while a backlog drained and half of them under a burst (BENCHMARKS.md).
/// The copy of the destinations in memory answers "no" without a query (at worst the claim then
/// finds nothing, as it did before); a "yes" is checked against the destinations as of now (one
/// row, on a reader), so one enabled or created since the last look is seen. A failed read says
/// "try the claim".
async fn nothing_to_claim(inner: &Inner, skip: &[String]) -> bool {
    let all_skipped = |snapshot: &crate::store::snapshot::Snapshot| {
        snapshot
            .targets
            .iter()
            .filter(|t| t.enabled)
            .all(|t| skip.contains(&t.id))
    };
    if skip.is_empty() {
        return false;
    }
    match inner.store.snapshots().last() {
        Some(last) if all_skipped(&last) => {}
        _ => return false,
    }
    match inner.store.snapshots().current(inner.store.db()).await {
        Ok(snapshot) => all_skipped(&snapshot),
        Err(_) => false,
    }
}

/// Sets capacity aside for deliveries leased at insert: at most half the process's capacity, so
/// that claims (retries, the queue's backlog, other replicas' work) always get their share. None
/// while the dispatcher is not running, or has no capacity free.
pub(super) fn reserve(inner: &Inner) -> Option<Reservation> {
    if !inner.running.load(Ordering::Acquire) {
        return None;
    }
    let permits = take_permits(inner, (inner.config.max_in_flight as usize / 2).max(1));
    if permits.is_empty() {
        return None;
    }
    Some(Reservation {
        lease: DirectLease {
            worker: inner.worker_id.clone(),
            lease: inner.config.lease,
            total: permits.len(),
            per_destination: inner.queue_limit(),
            held: inner.held.clone(),
        },
        permits,
        slots: Vec::new(),
    })
}

/// Counts the deliveries just leased at insert as this process's at once, before they start:
/// the next alert group and the next claim read what each destination holds, and must see them,
/// or a destination could be leased past its bound while they wait for the starter task. Then
/// lets the gate of that reading go.
pub(super) fn hold(
    inner: &Inner,
    reservation: &mut Reservation,
    leased: &[Claimed],
    gate: Option<HeldGuard>,
) {
    reservation.slots = leased
        .iter()
        .map(|c| inner.take_slot(&c.delivery.destination_id))
        .collect();
    drop(gate);
}

/// Starts the deliveries that were leased to this worker at insert, with the reservation's
/// permits; unused permits go back. If the attempts cannot start (the destinations cannot be read,
/// or the dispatcher is stopping), the leases are handed back to the queue.
pub(super) async fn start_leased(
    inner: &Arc<Inner>,
    reservation: Reservation,
    leased: Vec<Claimed>,
) {
    let mut permits = reservation.permits;
    let slots = reservation.slots;
    debug_assert_eq!(
        slots.len(),
        leased.len(),
        "leased deliveries are held first"
    );
    if leased.is_empty() {
        drop(permits);
        inner.capacity_freed.notify_one();
        return;
    }
    let targets = match destinations_of(inner, &leased).await {
        Ok(targets) => Some(targets),
        Err(e) => {
            tracing::error!(error = %e, "cannot load destinations for deliveries leased at insert; handing them back");
            None
        }
    };
    let not_started: Vec<String> = {
        let mut launcher = inner.launcher.lock().expect("launcher lock");
        match (launcher.as_mut(), targets) {
            (Some(launcher), Some(targets)) => {
                for (c, slot) in leased.into_iter().zip(slots) {
                    let permit = permits.pop().expect("one permit per leased delivery");
                    let target = targets.get(&c.delivery.destination_id).cloned();
                    launch(inner, launcher, c, target, permit, slot);
                }
                Vec::new()
            }
            _ => {
                // Not started: what `hold` counted for them goes back with them.
                for c in &leased {
                    inner.release_slot(&c.delivery.destination_id);
                }
                leased.into_iter().map(|c| c.delivery.id).collect()
            }
        }
    };
    let unused = permits.len();
    drop(permits);
    if unused > 0 {
        inner.capacity_freed.notify_one();
    }
    if !not_started.is_empty() {
        let deadline = tokio::time::Instant::now() + inner.config.shutdown_grace + FLUSH_MARGIN;
        hand_back(inner, &not_started, deadline).await;
    }
}

/// Shutdown: no more claims (the loop has ended); deliveries not started are handed back at once;
/// attempts in flight get the grace to finish, and their results are written; what is still
/// sending at the deadline is cancelled and handed back too.
async fn stop(inner: &Arc<Inner>, mut tasks: JoinSet<()>, recorder: tokio::task::JoinHandle<()>) {
    let grace = inner.config.shutdown_grace;
    let deadline = tokio::time::Instant::now() + grace;
    let (waiting, in_flight) = {
        let mut tracked = inner.tracked.lock().expect("tracked lock");
        let waiting: Vec<String> = tracked.waiting.drain().collect();
        (waiting, tracked.sending.len())
    };
    tracing::info!(
        worker = %inner.worker_id,
        in_flight,
        not_started = waiting.len(),
        ?grace,
        "dispatcher stopping: no more claims, handing back deliveries not started, \
         waiting for the attempts in flight"
    );
    let mut handed_back = hand_back(inner, &waiting, deadline + FLUSH_MARGIN).await;
    let finished_in_time = tokio::time::timeout_at(deadline, async {
        while tasks.join_next().await.is_some() {}
    })
    .await
    .is_ok();
    let mut cancelled = 0;
    if !finished_in_time {
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
        let sending: Vec<String> = inner
            .tracked
            .lock()
            .expect("tracked lock")
            .sending
            .drain()
            .collect();
        cancelled = sending.len();
        tracing::warn!(
            cancelled,
            "attempts still in flight at the end of the grace were cancelled; their deliveries \
             are handed back and will be sent again"
        );
        handed_back += hand_back(inner, &sending, deadline + FLUSH_MARGIN).await;
    }
    // Every result is with the recorder now: closing its channel lets it finish once written.
    inner.recorder.lock().expect("recorder lock").take();
    let flush_until = deadline.max(tokio::time::Instant::now()) + FLUSH_MARGIN;
    let mut recorder = recorder;
    if tokio::time::timeout_at(flush_until, &mut recorder)
        .await
        .is_err()
    {
        recorder.abort();
        tracing::error!(
            results = inner.tracked.lock().expect("tracked lock").recording.len(),
            "the database did not take the last results before shutdown; those deliveries will \
             be sent again after their lease"
        );
    }
    tracing::info!(
        worker = %inner.worker_id,
        finished = in_flight.saturating_sub(cancelled),
        cancelled,
        handed_back,
        "dispatcher stopped"
    );
}

/// Hands back the deliveries the database says this worker holds but this process does not:
/// leases taken no later than `failed_at` (so not one an API call took since, for a test alert it
/// is about to send) that are neither waiting, sending nor being recorded here. Without this they
/// would wait out their lease.
async fn reconcile_leases(inner: &Inner, failed_at: DateTime<Utc>) -> Result<u64, StoreError> {
    let leased_before = failed_at
        + chrono::Duration::from_std(inner.config.lease).unwrap_or(chrono::Duration::minutes(5));
    let leased = deliveries::leased_to(inner.store.db(), &inner.worker_id, leased_before).await?;
    let orphans: Vec<String> = {
        let tracked = inner.tracked.lock().expect("tracked lock");
        leased.into_iter().filter(|id| !tracked.holds(id)).collect()
    };
    if orphans.is_empty() {
        return Ok(0);
    }
    let n = deliveries::release_leases(inner.store.writer(), &inner.worker_id, &orphans).await?;
    tracing::warn!(
        handed_back = n,
        "handed back deliveries leased to this worker that it never started (a claim or a \
         hand-back was cut off by a database failure)"
    );
    Ok(n)
}

/// Hands `ids` back to the queue, trying until `until` while the database is unreachable;
/// returns how many leases were handed back. Those it cannot hand back return after the lease.
async fn hand_back(inner: &Inner, ids: &[String], until: tokio::time::Instant) -> u64 {
    if ids.is_empty() {
        return 0;
    }
    let mut backoff = Backoff::new(Duration::from_millis(100), MAX_BACKOFF);
    loop {
        match deliveries::release_leases(inner.store.writer(), &inner.worker_id, ids).await {
            Ok(n) => return n,
            Err(e) => {
                let wait = backoff.next();
                if !e.is_unavailable() || tokio::time::Instant::now() + wait > until {
                    tracing::error!(error = %e, deliveries = ids.len(), "cannot hand back leases; the deliveries return when their lease ends");
                    return 0;
                }
                tokio::time::sleep(wait).await;
            }
        }
    }
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
    slot: Place,
    permit: OwnedSemaphorePermit,
    shutdown: &CancellationToken,
) {
    let id = claimed.delivery.id.clone();
    let Some(target) = target else {
        if inner.start(&id) {
            destination_gone(inner, &claimed.delivery).await;
            inner.finish(&id);
        }
        return;
    };
    let outcome = {
        let _request_slot = tokio::select! {
            permit = slot.request_slot() => permit,
            // Shutdown hands this delivery back; it is not attempted here.
            _ = shutdown.cancelled() => return,
        };
        if !inner.start(&id) {
            return;
        }
        attempt(inner, &claimed, &target).await
    };
    // Recorded first, then out of `sending`: the id is never in none of the sets while the
    // delivery is this process's (see `reconcile_leases`).
    inner.record(outcome, None, Some(permit));
    inner.finish(&id);
}

async fn destination_gone(inner: &Inner, d: &Delivery) {
    match deliveries::fail_without_attempt(
        inner.store.writer(),
        &inner.worker_id,
        &d.id,
        "destination deleted",
    )
    .await
    {
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
    let id = claimed.delivery.id.clone();
    inner
        .tracked
        .lock()
        .expect("tracked lock")
        .sending
        .insert(id.clone());
    let outcome = attempt(inner, &claimed, &target).await;
    let (tx, rx) = oneshot::channel();
    inner.record(outcome, Some(tx), None);
    inner.finish(&id);
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
        delivery: d.clone(),
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

/// Writes one batch of results. While the database is unreachable it keeps trying, with pauses
/// up to MAX_BACKOFF, for as long as the process lives: a result is kept in memory, never dropped,
/// so a finished attempt is not sent again. A batch that fails for another reason (a fault, not an
/// outage) is tried a few times and then dropped, so it cannot stop every later result from being
/// written; its deliveries return after their lease.
async fn write_until_done(inner: &Inner, outcomes: &[Outcome]) -> deliveries::Recorded {
    let mut backoff = Backoff::new(Duration::from_millis(100), MAX_BACKOFF);
    let mut faults = 0;
    loop {
        match deliveries::record_outcomes(inner.store.writer(), &inner.worker_id, outcomes).await {
            Ok(written) => return written,
            Err(e) if e.is_unavailable() => {
                let wait = backoff.next();
                tracing::error!(error = %e, results = outcomes.len(), retry_in = ?wait, "cannot record delivery attempts: the database is unavailable; keeping them");
                tokio::time::sleep(wait).await;
            }
            Err(e) => {
                faults += 1;
                if faults >= RECORD_TRIES_ON_FAULT {
                    tracing::error!(error = %e, results = outcomes.len(), "cannot record delivery attempts; dropped, they are sent again after their lease");
                    return deliveries::Recorded::default();
                }
                let wait = backoff.next();
                tracing::error!(error = %e, results = outcomes.len(), retry_in = ?wait, "cannot record delivery attempts");
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// Writes results in batches: whatever has arrived while the previous batch was being written
/// goes into the next transaction.
async fn record_loop(inner: Arc<Inner>, mut rx: mpsc::UnboundedReceiver<RecordRequest>) {
    let mut batch: Vec<RecordRequest> = Vec::with_capacity(RECORD_BATCH);
    while rx.recv_many(&mut batch, RECORD_BATCH).await > 0 {
        if batch.len() < RECORD_LINGER_BELOW {
            // A few results: wait a moment for more, so that each commit carries many. On SQLite
            // a commit's cost is mostly per transaction (the WAL frames of every page touched,
            // the checkpoint that copies them back), and under a steady stream of results a
            // recorder that writes whatever is there settles into commits of a few rows each.
            // Until the deadline, not only until the next result: `recv_many` returns as soon
            // as one is there, and a single wait for it made batches of one or two.
            let until = tokio::time::Instant::now() + RECORD_LINGER;
            while batch.len() < RECORD_LINGER_BELOW {
                let room = RECORD_BATCH - batch.len();
                match tokio::time::timeout_at(until, rx.recv_many(&mut batch, room)).await {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        }
        let outcomes: Vec<Outcome> = batch.iter().map(|(o, _, _)| o.clone()).collect();
        let written = write_until_done(&inner, &outcomes).await;
        {
            let mut tracked = inner.tracked.lock().expect("tracked lock");
            for o in &outcomes {
                tracked.recording.remove(o.delivery_id());
            }
        }
        // An idle claim loop last looked while these deliveries were leased (due at the lease's
        // end) and sleeps up to a poll interval; a retry due sooner than that wakes it, so short
        // retry delays are kept rather than rounded up to the poll.
        let soon = now()
            + chrono::Duration::from_std(inner.config.poll_interval)
                .unwrap_or(chrono::Duration::seconds(1));
        if outcomes
            .iter()
            .any(|o| o.next_attempt_at.is_some_and(|t| t < soon))
        {
            inner.wake.notify_one();
        }
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
        // Written: their capacity is free for new work. The claim loop is woken only if it may
        // be waiting for capacity; a wake-up for every batch would cost a claim (a turn of the
        // writer) per batch that finds its destinations still saturated.
        let short = inner.global.available_permits() < inner.worth_a_claim();
        let mut released = 0;
        for (_, _, permit) in batch.iter_mut() {
            released += usize::from(permit.take().is_some());
        }
        if short && released > 0 {
            inner.capacity_freed.notify_one();
        }
        for (outcome, reply, _) in batch.drain(..) {
            let delivery = updated.get(outcome.delivery_id()).cloned();
            if let Some(d) = &delivery {
                let _ = inner.events.send(d.clone());
            }
            if let Some(reply) = reply {
                let _ = reply.send(delivery);
            }
        }
    }
}
