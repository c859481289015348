//! The load generator: this process, over keep-alive connections. Closed loop for the throughput
//! scenarios (each connection sends its next call when the last one is answered), open loop for
//! the steady-rate ones (calls leave on a schedule whatever the answers do, and latency counts from
//! the scheduled time, so a slow server cannot hide its queue by slowing the sender down).

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::server::Gql;

pub fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// What one kind of call sends.
#[derive(Debug, Clone, Copy)]
pub enum Call {
    /// `sendAlert`, one alert.
    Single,
    /// `sendAlerts` with this many alerts.
    Batch(usize),
}

impl Call {
    pub fn alerts(self) -> u64 {
        match self {
            Call::Single => 1,
            Call::Batch(n) => n as u64,
        }
    }
}

/// One alert as the bench sends it: HIGH (so it routes to every destination that takes all
/// severities) with the send time in its context, where the receiver reads it back.
pub fn alert(id: &str, sent_us: u64) -> Value {
    json!({
        "alertId": id,
        "detectionId": "Bench.Detection",
        "title": "benchmark alert",
        "severity": "HIGH",
        "context": {"benchSentUs": sent_us},
    })
}

fn body(call: Call, prefix: &str, seq: u64, sent_us: u64) -> Vec<u8> {
    let request = match call {
        Call::Single => json!({
            "query": "mutation($i: SendAlertInput!) { sendAlert(input: $i) { alert { id } } }",
            "variables": {"i": alert(&format!("{prefix}-{seq}"), sent_us)},
        }),
        Call::Batch(n) => {
            let alerts: Vec<Value> = (0..n)
                .map(|k| alert(&format!("{prefix}-{seq}-{k}"), sent_us))
                .collect();
            json!({
                "query": "mutation($a: [SendAlertInput!]!) { sendAlerts(input: {alerts: $a}) { results { alert { id } } } }",
                "variables": {"a": alerts},
            })
        }
    };
    serde_json::to_vec(&request).expect("JSON")
}

/// What the calls of one run did.
#[derive(Debug, Default)]
pub struct Outcome {
    pub calls: u64,
    pub alerts_accepted: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    /// Latency of each answered call (from the scheduled time in open loop).
    pub latencies: Vec<Duration>,
    /// From the first call to the last answer.
    pub elapsed: Duration,
    /// Calls an open-loop run could not start on time (more than 1,000 answers outstanding).
    pub late_starts: u64,
}

impl Outcome {
    fn merge(&mut self, other: Outcome) {
        self.calls += other.calls;
        self.alerts_accepted += other.alerts_accepted;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.latencies.extend(other.latencies);
        self.late_starts += other.late_starts;
    }

    fn record(&mut self, result: Result<(), String>, alerts: u64, latency: Duration) {
        self.calls += 1;
        match result {
            Ok(()) => {
                self.alerts_accepted += alerts;
                self.latencies.push(latency);
            }
            Err(e) => {
                self.errors += 1;
                self.first_error.get_or_insert(e);
            }
        }
    }

    pub fn percentile_ms(&self, p: f64) -> Option<f64> {
        let mut sorted = self.latencies.clone();
        sorted.sort_unstable();
        percentile(&sorted, p).map(|d| d.as_secs_f64() * 1000.0)
    }
}

pub fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    Some(sorted[((sorted.len() - 1) as f64 * p).round() as usize])
}

/// `connections` workers, each sending its next call as soon as the last is answered, for
/// `duration`.
pub async fn closed_loop(
    gql: &Gql,
    call: Call,
    connections: usize,
    duration: Duration,
    prefix: &str,
) -> Outcome {
    let start = Instant::now();
    let deadline = start + duration;
    let mut workers = JoinSet::new();
    for w in 0..connections {
        let gql = gql.clone();
        let prefix = format!("{prefix}-w{w}");
        workers.spawn(async move {
            let mut out = Outcome::default();
            let mut seq = 0u64;
            while Instant::now() < deadline {
                let payload = body(call, &prefix, seq, now_us());
                seq += 1;
                let t = Instant::now();
                let result = gql.post_raw(payload).await;
                out.record(result, call.alerts(), t.elapsed());
            }
            out
        });
    }
    gather(workers, start).await
}

/// `sendAlert` calls at `rate` per second for `duration`, on schedule. Each alert carries the
/// wall-clock time it was due, not the time it left, so a late start counts in its latency.
pub async fn open_loop(gql: &Gql, rate: f64, duration: Duration, prefix: &str) -> Outcome {
    // A cap on answers outstanding, so a stalled server makes the run report late starts rather
    // than exhaust the machine's sockets; the latency still counts from the scheduled time.
    let outstanding = Arc::new(Semaphore::new(1_000));
    let start = Instant::now();
    let wall_start = now_us();
    let mut calls = JoinSet::new();
    let mut out = Outcome::default();
    for seq in 0u64.. {
        let offset = Duration::from_secs_f64(seq as f64 / rate);
        if offset >= duration {
            break;
        }
        let due = start + offset;
        tokio::time::sleep_until(due.into()).await;
        let permit = match outstanding.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                out.late_starts += 1;
                outstanding
                    .clone()
                    .acquire_owned()
                    .await
                    .expect("semaphore open")
            }
        };
        let gql = gql.clone();
        let payload = body(
            Call::Single,
            prefix,
            seq,
            wall_start + offset.as_micros() as u64,
        );
        calls.spawn(async move {
            let result = gql.post_raw(payload).await;
            drop(permit);
            (result, due.elapsed())
        });
        // Collect finished calls as we go, so the set does not hold every answer to the end.
        while let Some(done) = calls.try_join_next() {
            let (result, latency) = done.expect("call task");
            out.record(result, 1, latency);
        }
    }
    while let Some(done) = calls.join_next().await {
        let (result, latency) = done.expect("call task");
        out.record(result, 1, latency);
    }
    out.elapsed = start.elapsed();
    out
}

/// The receiver alone: deliveries of the size Herald sends (a payload and the three Standard
/// Webhooks headers), straight from this process, `connections` at a time.
pub async fn receiver_ceiling(url: &str, connections: usize, duration: Duration) -> Outcome {
    let http = reqwest::Client::new();
    let start = Instant::now();
    let deadline = start + duration;
    let mut workers = JoinSet::new();
    for w in 0..connections {
        let http = http.clone();
        let url = url.to_owned();
        workers.spawn(async move {
            let mut out = Outcome::default();
            let mut seq = 0u64;
            while Instant::now() < deadline {
                let payload = json!({
                    "id": "Bench.Detection",
                    "createdAt": "2026-01-01T00:00:00Z",
                    "severity": "HIGH",
                    "type": "RULE",
                    "link": "",
                    "title": "benchmark alert",
                    "name": "Bench.Detection",
                    "alertId": format!("ceiling-{w}-{seq}"),
                    "alertContext": {"benchSentUs": now_us()},
                    "description": "",
                    "runbook": "",
                    "tags": [],
                    "version": "",
                });
                seq += 1;
                let t = Instant::now();
                let result = http
                    .post(&url)
                    .header("content-type", "application/json")
                    .header("webhook-id", "msg_0199a1b2c3d4e5f60718293a4b5c6d7e")
                    .header("webhook-timestamp", "1767225600")
                    .header(
                        "webhook-signature",
                        "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=",
                    )
                    .body(serde_json::to_vec(&payload).expect("JSON"))
                    .send()
                    .await;
                let result = match result {
                    Ok(r) if r.status().is_success() => {
                        r.bytes().await.map(|_| ()).map_err(|e| e.to_string())
                    }
                    Ok(r) => Err(format!("receiver answered {}", r.status())),
                    Err(e) => Err(e.to_string()),
                };
                out.record(result, 1, t.elapsed());
            }
            out
        });
    }
    gather(workers, start).await
}

/// Every worker's outcome merged, timed from `start`.
async fn gather(mut workers: JoinSet<Outcome>, start: Instant) -> Outcome {
    let mut total = Outcome::default();
    while let Some(out) = workers.join_next().await {
        total.merge(out.expect("load worker"));
    }
    total.elapsed = start.elapsed();
    total
}
