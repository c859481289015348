//! The Prometheus metrics: one registry per server (never a process-wide one, so that many
//! servers in one test process keep their own counts), typed methods for each event, and the
//! exposition `GET /metrics` serves.
//!
//! Labels take values from closed sets only (sources, states, outcomes, route templates and
//! status codes): no destination, URL or token ever becomes a label, and a client cannot grow
//! the number of series by requesting made-up paths.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tokio::sync::Mutex;

use crate::dispatch::client::{Failure, WebhookResponse};
use crate::store::deliveries::{self, DeliveryState, OpenCounts};
use crate::store::{Store, now};

/// The content type of the exposition: OpenMetrics text, which Prometheus asks for first.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// How long one reading of the queue gauges is served: many scrapers (or a scraper retrying)
/// within this time cost one pair of queries.
const QUEUE_READING_TTL: Duration = Duration::from_secs(2);

/// How long a scrape waits for the queue gauges before serving their last values.
const QUEUE_READING_TIMEOUT: Duration = Duration::from_secs(3);

/// The `route` label of a request that matched no route: one value, whatever the path.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// Where accepted alerts came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertSource {
    /// `sendAlert` and `sendAlerts`.
    Graphql,
    /// `POST /v1/alerts`.
    Rest,
}

impl AlertSource {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertSource::Graphql => "graphql",
            AlertSource::Rest => "rest",
        }
    }
}

/// What one attempt got: a status class, or why it got none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    Status2xx,
    Status3xx,
    Status4xx,
    Status5xx,
    Timeout,
    Network,
    Refused,
}

impl AttemptOutcome {
    pub const ALL: [AttemptOutcome; 7] = [
        AttemptOutcome::Status2xx,
        AttemptOutcome::Status3xx,
        AttemptOutcome::Status4xx,
        AttemptOutcome::Status5xx,
        AttemptOutcome::Timeout,
        AttemptOutcome::Network,
        AttemptOutcome::Refused,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Status2xx => "2xx",
            AttemptOutcome::Status3xx => "3xx",
            AttemptOutcome::Status4xx => "4xx",
            AttemptOutcome::Status5xx => "5xx",
            AttemptOutcome::Timeout => "timeout",
            AttemptOutcome::Network => "network",
            AttemptOutcome::Refused => "refused",
        }
    }

    /// A status wins over an error: a body cut short after the status still answered. A status
    /// outside 200..600 (1xx is never final) counts with the 5xx, as a broken answer.
    pub fn of(r: &WebhookResponse) -> Self {
        match (r.status, r.failure) {
            (Some(s), _) => match s {
                200..=299 => AttemptOutcome::Status2xx,
                300..=399 => AttemptOutcome::Status3xx,
                400..=499 => AttemptOutcome::Status4xx,
                _ => AttemptOutcome::Status5xx,
            },
            (None, Some(Failure::Timeout)) => AttemptOutcome::Timeout,
            (None, Some(Failure::Refused)) => AttemptOutcome::Refused,
            (None, _) => AttemptOutcome::Network,
        }
    }
}

/// What the pruner deletes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrunedKind {
    Alert,
    Delivery,
    Attempt,
}

impl PrunedKind {
    pub const ALL: [PrunedKind; 3] = [PrunedKind::Alert, PrunedKind::Delivery, PrunedKind::Attempt];

    pub fn as_str(self) -> &'static str {
        match self {
            PrunedKind::Alert => "alert",
            PrunedKind::Delivery => "delivery",
            PrunedKind::Attempt => "attempt",
        }
    }
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabel {
    source: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabel {
    version: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: String,
    status: u16,
}

/// Builds a histogram with fixed buckets for each new label set.
#[derive(Clone)]
struct Buckets(&'static [f64]);

impl MetricConstructor<Histogram> for Buckets {
    fn new_metric(&self) -> Histogram {
        Histogram::new(self.0.iter().copied())
    }
}

/// Receivers answer within milliseconds to the delivery timeout (15 s by default, at most 60 s).
const ATTEMPT_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0, 60.0,
];
/// API calls are mostly a few milliseconds; a large `sendAlerts` batch takes longer.
const HTTP_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The metrics of one server; cheap to clone, every clone counts into the same registry.
#[derive(Clone)]
pub struct Metrics {
    inner: Arc<Inner>,
}

struct Inner {
    registry: Registry,
    alerts_accepted: Family<SourceLabel, Counter>,
    deliveries: Family<StateLabel, Counter>,
    attempts: Family<OutcomeLabel, Counter>,
    attempt_duration: Family<OutcomeLabel, Histogram, Buckets>,
    queue_depth: Family<StateLabel, Gauge>,
    queue_oldest_due_age: Gauge<f64, AtomicU64>,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: Family<HttpLabels, Histogram, Buckets>,
    pruned: Family<KindLabel, Counter>,
    /// When the queue gauges were last read from the database. The lock also makes concurrent
    /// scrapes wait for one reading instead of each running its own.
    queue_read_at: Mutex<Option<Instant>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::default();
        // Counters are registered without `_total`: the encoder appends it to the samples.
        let alerts_accepted = Family::<SourceLabel, Counter>::default();
        registry.register(
            "herald_alerts_accepted",
            "Alerts acknowledged to the caller (stored with their deliveries), by API",
            alerts_accepted.clone(),
        );
        let deliveries = Family::<StateLabel, Counter>::default();
        registry.register(
            "herald_deliveries",
            "Deliveries that reached a final state",
            deliveries.clone(),
        );
        let attempts = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "herald_attempts",
            "Delivery attempts by outcome (status class, timeout, network, refused)",
            attempts.clone(),
        );
        let attempt_duration = Family::<OutcomeLabel, Histogram, Buckets>::new_with_constructor(
            Buckets(ATTEMPT_BUCKETS),
        );
        registry.register(
            "herald_attempt_duration_seconds",
            "Time from sending an attempt to its answer (or failure), by outcome",
            attempt_duration.clone(),
        );
        let queue_depth = Family::<StateLabel, Gauge>::default();
        registry.register(
            "herald_queue_depth",
            "Unfinished deliveries in the database, by state (read at scrape, cached 2 s)",
            queue_depth.clone(),
        );
        let queue_oldest_due_age = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "herald_queue_oldest_due_age_seconds",
            "How long the longest-waiting due delivery has been due; 0 when none is due",
            queue_oldest_due_age.clone(),
        );
        let http_requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            "herald_http_requests",
            "HTTP requests answered, by route template and status",
            http_requests.clone(),
        );
        let http_duration =
            Family::<HttpLabels, Histogram, Buckets>::new_with_constructor(Buckets(HTTP_BUCKETS));
        registry.register(
            "herald_http_request_duration_seconds",
            "Time to answer HTTP requests (to the response head), by route template and status",
            http_duration.clone(),
        );
        let build_info = Family::<VersionLabel, Gauge>::default();
        registry.register(
            "herald_build_info",
            "Always 1; the version label says which Herald runs",
            build_info.clone(),
        );
        build_info
            .get_or_create(&VersionLabel {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        let pruned = Family::<KindLabel, Counter>::default();
        registry.register(
            "herald_pruned",
            "Rows deleted by retention, by kind",
            pruned.clone(),
        );
        // Every series of a closed label set exists from the start at 0, so `rate()` and
        // `increase()` see the first event, and alert rules need no `or vector(0)`.
        for source in [AlertSource::Graphql, AlertSource::Rest] {
            let _ = alerts_accepted.get_or_create(&SourceLabel {
                source: source.as_str(),
            });
        }
        for state in [DeliveryState::Succeeded, DeliveryState::Failed] {
            let _ = deliveries.get_or_create(&state_label(state));
        }
        for outcome in AttemptOutcome::ALL {
            let label = OutcomeLabel {
                outcome: outcome.as_str(),
            };
            let _ = attempts.get_or_create(&label);
            let _ = attempt_duration.get_or_create(&label);
        }
        for state in [DeliveryState::Pending, DeliveryState::Retrying] {
            let _ = queue_depth.get_or_create(&state_label(state));
        }
        for kind in PrunedKind::ALL {
            let _ = pruned.get_or_create(&KindLabel {
                kind: kind.as_str(),
            });
        }
        Metrics {
            inner: Arc::new(Inner {
                registry,
                alerts_accepted,
                deliveries,
                attempts,
                attempt_duration,
                queue_depth,
                queue_oldest_due_age,
                http_requests,
                http_duration,
                pruned,
                queue_read_at: Mutex::new(None),
            }),
        }
    }

    /// `n` alerts were acknowledged to a caller of `source` (duplicates included: the caller was
    /// told they are stored). Test alerts are not alerts and are not counted here.
    pub fn alerts_accepted(&self, source: AlertSource, n: usize) {
        self.inner
            .alerts_accepted
            .get_or_create(&SourceLabel {
                source: source.as_str(),
            })
            .inc_by(n as u64);
    }

    /// One attempt ended with `outcome` after `duration`.
    pub fn attempt(&self, outcome: AttemptOutcome, duration: Duration) {
        let label = OutcomeLabel {
            outcome: outcome.as_str(),
        };
        self.inner.attempts.get_or_create(&label).inc();
        self.inner
            .attempt_duration
            .get_or_create(&label)
            .observe(duration.as_secs_f64());
    }

    /// A delivery reached `state`; states that are not final are ignored.
    pub fn delivery_finished(&self, state: DeliveryState) {
        if state.is_final() {
            self.inner
                .deliveries
                .get_or_create(&state_label(state))
                .inc();
        }
    }

    /// An HTTP request was answered. `route` is the matched route template (`/graphql`), or
    /// `None` for a path no route matched.
    pub fn http_request(&self, route: Option<&str>, status: u16, duration: Duration) {
        let labels = HttpLabels {
            route: route.unwrap_or(UNMATCHED_ROUTE).to_owned(),
            status,
        };
        self.inner
            .http_duration
            .get_or_create(&labels)
            .observe(duration.as_secs_f64());
        self.inner.http_requests.get_or_create(&labels).inc();
    }

    /// The retention pass deleted `n` rows of `kind`.
    pub fn pruned(&self, kind: PrunedKind, n: u64) {
        self.inner
            .pruned
            .get_or_create(&KindLabel {
                kind: kind.as_str(),
            })
            .inc_by(n);
    }

    /// The exposition: the queue gauges brought up to date (at most every two seconds), then
    /// every metric in the OpenMetrics text format.
    pub async fn render(&self, store: &Store) -> String {
        self.refresh_queue(store).await;
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.inner.registry)
            .expect("writing to a String cannot fail");
        out
    }

    /// Reads the queue gauges from the database unless a reading younger than the TTL exists.
    /// Cost: `open_counts` walks the index entries of unfinished deliveries (finished history is
    /// never read), `next_due` reads the first entry of the partial queue index. With a backlog
    /// of a million open deliveries the count takes a few hundred milliseconds; the TTL bounds
    /// that to one count per two seconds however many scrapers there are. When the database
    /// does not answer within 3 seconds, the gauges keep their last values and the scrape
    /// still succeeds.
    async fn refresh_queue(&self, store: &Store) {
        let mut read_at = self.inner.queue_read_at.lock().await;
        if read_at.is_some_and(|t| t.elapsed() < QUEUE_READING_TTL) {
            return;
        }
        let reading = async {
            let counts = deliveries::open_counts(store.db()).await?;
            let next = deliveries::next_due(store.db()).await?;
            Ok::<_, crate::store::StoreError>((counts, next))
        };
        // A scrape must not hang on a database that does not answer (Prometheus gives up after
        // its scrape timeout, 10 s by default, and the whole scrape would be lost).
        match tokio::time::timeout(QUEUE_READING_TIMEOUT, reading).await {
            Ok(Ok((OpenCounts { pending, retrying }, next))) => {
                self.set_queue_depth(DeliveryState::Pending, pending);
                self.set_queue_depth(DeliveryState::Retrying, retrying);
                // A claimed delivery's next attempt is its lease's end, in the future: work in
                // flight does not look overdue.
                let age = next
                    .map(|t| (now() - t).num_milliseconds().max(0) as f64 / 1000.0)
                    .unwrap_or(0.0);
                self.inner.queue_oldest_due_age.set(age);
                *read_at = Some(Instant::now());
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "metrics: cannot read the queue gauges"),
            Err(_) => tracing::warn!(
                "metrics: the queue gauges took over {}s to read; serving the last values",
                QUEUE_READING_TIMEOUT.as_secs()
            ),
        }
    }

    fn set_queue_depth(&self, state: DeliveryState, n: u64) {
        self.inner
            .queue_depth
            .get_or_create(&state_label(state))
            .set(n.min(i64::MAX as u64) as i64);
    }
}

fn state_label(state: DeliveryState) -> StateLabel {
    StateLabel {
        state: match state {
            DeliveryState::Pending => "pending",
            DeliveryState::Retrying => "retrying",
            DeliveryState::Succeeded => "succeeded",
            DeliveryState::Failed => "failed",
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_series_exists_at_zero_and_no_counter_is_named_twice_total() {
        let m = Metrics::new();
        m.alerts_accepted(AlertSource::Rest, 3);
        m.http_request(Some("/graphql"), 200, Duration::from_millis(3));
        m.http_request(None, 404, Duration::from_millis(1));
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &m.inner.registry).unwrap();
        for line in [
            "herald_alerts_accepted_total{source=\"graphql\"} 0",
            "herald_alerts_accepted_total{source=\"rest\"} 3",
            "herald_deliveries_total{state=\"failed\"} 0",
            "herald_attempts_total{outcome=\"refused\"} 0",
            "herald_pruned_total{kind=\"attempt\"} 0",
            "herald_http_requests_total{route=\"/graphql\",status=\"200\"} 1",
            "herald_http_requests_total{route=\"unmatched\",status=\"404\"} 1",
            "herald_queue_oldest_due_age_seconds 0.0",
        ] {
            assert!(
                out.lines().any(|l| l == line),
                "{line} missing from:\n{out}"
            );
        }
        assert!(!out.contains("_total_total"));
    }
}
