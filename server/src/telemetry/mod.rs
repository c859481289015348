//! What an operator sees of a running Herald: Prometheus metrics (`metrics`), log lines on stderr
//! (`logging`), and the one call per attempt that feeds both (`attempt`), so the dispatcher does
//! not spell out either.

pub mod logging;
pub mod metrics;

use crate::dispatch::client::WebhookResponse;
use crate::store::deliveries::{Delivery, DeliveryState, Outcome};

pub use metrics::{AlertSource, AttemptOutcome, Metrics, PrunedKind};

/// One attempt has an answer (or none): counts it, times it, counts the delivery if the attempt
/// ended it, and writes the attempt's log line. The line carries the ids a receiver can match
/// (`webhook_id` is the `webhook-id` header it got), never the URL, headers or body; a failure
/// without a status is logged by kind (`timeout`, `network`, `refused`), whose detail (which can
/// name the host) stays in the attempt record.
pub fn attempt(metrics: &Metrics, d: &Delivery, response: &WebhookResponse, outcome: &Outcome) {
    let kind = AttemptOutcome::of(response);
    metrics.attempt(kind, response.duration);
    if outcome.state.is_final() {
        metrics.delivery_finished(outcome.state);
    }
    let duration_ms = response.duration.as_millis() as u64;
    let attempt = outcome.attempt.number;
    let state = outcome.state.as_str();
    match (outcome.state, response.status) {
        (DeliveryState::Succeeded, status) => tracing::info!(
            delivery_id = %d.id,
            webhook_id = %d.webhook_id,
            destination_id = %d.destination_id,
            attempt,
            status,
            duration_ms,
            state,
            "attempt succeeded"
        ),
        (_, Some(status)) => tracing::warn!(
            delivery_id = %d.id,
            webhook_id = %d.webhook_id,
            destination_id = %d.destination_id,
            attempt,
            status,
            duration_ms,
            state,
            "attempt failed"
        ),
        (_, None) => tracing::warn!(
            delivery_id = %d.id,
            webhook_id = %d.webhook_id,
            destination_id = %d.destination_id,
            attempt,
            error = kind.as_str(),
            duration_ms,
            state,
            "attempt failed"
        ),
    }
}
