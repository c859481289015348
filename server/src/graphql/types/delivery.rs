use async_graphql::{Context, Enum, ID, InputObject, Json, Object, SimpleObject};

use super::{Alert, DateTime, Destination};
use crate::graphql::ApiError;
use crate::graphql::errors::ApiResult;
use crate::graphql::loaders::{AlertById, AttemptsOf, BatchLoader, DestinationById};
use crate::store::deliveries::{self, DeliveryState};

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(
    name = "DeliveryState",
    remote = "crate::store::deliveries::DeliveryState"
)]
pub enum DeliveryStateGql {
    /// Not attempted yet.
    Pending,
    /// Failed at least once; another attempt is scheduled.
    Retrying,
    Succeeded,
    /// Final failure: retries used up, a failed test alert, or the destination was deleted.
    Failed,
}

// Named `DeliveryStatus` in the API, as Panther's console calls this record; the Rust name stays
// `Delivery`, like the store's. Connections and edges are named after the API name
// (`DeliveryStatusConnection`, `DeliveryStatusEdge`).
pub struct Delivery(pub deliveries::Delivery);

/// One alert on its way to one destination: its state, each attempt and the request sent.
#[Object(name = "DeliveryStatus")]
impl Delivery {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }

    async fn alert_id(&self) -> ID {
        ID(self.0.alert_id.clone())
    }

    async fn alert(&self, ctx: &Context<'_>) -> ApiResult<Alert> {
        ctx.data_unchecked::<BatchLoader>()
            .load_one(AlertById(self.0.alert_id.clone()))
            .await?
            .map(Alert::from)
            .ok_or(ApiError::NotFound {
                kind: "alert",
                id: self.0.alert_id.clone(),
            })
    }

    async fn destination_id(&self) -> ID {
        ID(self.0.destination_id.clone())
    }

    /// Null once the destination is deleted; `label` keeps its name.
    async fn destination(&self, ctx: &Context<'_>) -> ApiResult<Option<Destination>> {
        Ok(ctx
            .data_unchecked::<BatchLoader>()
            .load_one(DestinationById(self.0.destination_id.clone()))
            .await?
            .map(Destination))
    }

    /// The destination's display name when the delivery was made.
    async fn label(&self) -> &str {
        &self.0.label
    }

    async fn state(&self) -> DeliveryStateGql {
        self.0.state.into()
    }

    async fn success(&self) -> bool {
        self.0.state == DeliveryState::Succeeded
    }

    /// Of the last attempt.
    async fn status_code(&self) -> Option<i32> {
        self.0.status_code
    }

    /// Of the last attempt (its first 64 KiB).
    async fn response_body(&self) -> Option<&str> {
        self.0.response_body.as_deref()
    }

    /// The response body on success; `request failed: <code> <reason>: <body>` or
    /// `network error: <cause>` on failure; empty before the first attempt.
    async fn message(&self) -> &str {
        &self.0.message
    }

    async fn attempt_count(&self) -> i32 {
        self.0.attempt_count
    }

    /// The exact bytes that were signed and sent: the same on every attempt and re-send.
    async fn request_body(&self, ctx: &Context<'_>) -> ApiResult<String> {
        ctx.data_unchecked::<BatchLoader>()
            .load_one(AlertById(self.0.alert_id.clone()))
            .await?
            .map(|a| a.body)
            .ok_or(ApiError::NotFound {
                kind: "alert",
                id: self.0.alert_id.clone(),
            })
    }

    #[graphql(complexity = "crate::graphql::limits::list_cost(11, child_complexity)")]
    async fn attempts(&self, ctx: &Context<'_>) -> ApiResult<Vec<DeliveryAttempt>> {
        Ok(ctx
            .data_unchecked::<BatchLoader>()
            .load_one(AttemptsOf(self.0.id.clone()))
            .await?
            .unwrap_or_default()
            .into_iter()
            .map(DeliveryAttempt::from)
            .collect())
    }

    /// When the next attempt is due; null once the delivery is final.
    async fn next_attempt_at(&self) -> Option<DateTime> {
        (!self.0.state.is_final())
            .then_some(self.0.next_attempt_at)
            .flatten()
            .map(DateTime)
    }

    /// The Standard Webhooks `webhook-id`: the same on every retry and re-send.
    async fn webhook_id(&self) -> &str {
        &self.0.webhook_id
    }

    /// The delivery this one re-sends.
    async fn resend_of(&self) -> Option<ID> {
        self.0.resend_of.clone().map(ID)
    }

    async fn test(&self) -> bool {
        self.0.test
    }

    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }

    /// When the last attempt was sent; null before the first.
    async fn dispatched_at(&self) -> Option<DateTime> {
        self.0.dispatched_at.map(DateTime)
    }
}

/// One request to the receiver and what came back.
#[derive(SimpleObject)]
pub struct DeliveryAttempt {
    pub number: i32,
    pub started_at: DateTime,
    pub duration_ms: i32,
    /// Null when no response arrived (network error, timeout).
    pub status_code: Option<i32>,
    /// The first 64 KiB of the response body.
    pub response_body: Option<String>,
    /// True when the response body was longer than what is kept.
    pub response_truncated: bool,
    /// Response headers that explain the outcome (Content-Type, Retry-After, Location, …).
    pub response_headers: Option<Json<serde_json::Value>>,
    pub error: Option<String>,
    /// The URL this attempt used: a destination's URL can change between retries. Empty for
    /// attempts recorded before Herald kept it.
    pub url: String,
    /// The headers sent, by lower-case name. Custom header values read `"********"` for everyone
    /// (they are never stored); the Standard Webhooks headers are shown as sent. `{}` for attempts
    /// recorded before Herald kept them.
    pub request_headers: Json<serde_json::Value>,
}

impl From<deliveries::Attempt> for DeliveryAttempt {
    fn from(a: deliveries::Attempt) -> Self {
        DeliveryAttempt {
            number: a.number,
            started_at: a.started_at.into(),
            duration_ms: a.duration_ms,
            status_code: a.status_code,
            response_body: a.response_body,
            response_truncated: a.response_truncated,
            response_headers: a.response_headers.map(Json),
            error: a.error,
            url: a.url.unwrap_or_default(),
            request_headers: Json(
                a.request_headers
                    .unwrap_or_else(|| serde_json::Value::Object(Default::default())),
            ),
        }
    }
}

/// How many deliveries of a destination are in each state.
#[derive(SimpleObject, Default)]
pub struct DeliveryCounts {
    pub pending: u64,
    pub retrying: u64,
    pub succeeded: u64,
    pub failed: u64,
}

impl From<Vec<(DeliveryState, u64)>> for DeliveryCounts {
    fn from(counts: Vec<(DeliveryState, u64)>) -> Self {
        let mut c = DeliveryCounts::default();
        for (state, n) in counts {
            match state {
                DeliveryState::Pending => c.pending = n,
                DeliveryState::Retrying => c.retrying = n,
                DeliveryState::Succeeded => c.succeeded = n,
                DeliveryState::Failed => c.failed = n,
            }
        }
        c
    }
}

#[derive(InputObject)]
pub struct ResendDeliveryInput {
    pub delivery_id: ID,
}

#[derive(SimpleObject)]
pub struct ResendDeliveryPayload {
    pub delivery: Delivery,
}
