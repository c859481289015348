use async_graphql::{Context, Object};

use super::actor;

use crate::dispatch::Dispatcher;
use crate::dispatch::payload::PantherPayload;
use crate::graphql::ApiError;
use crate::graphql::errors::ApiResult;
use crate::graphql::types::{
    Delivery, ResendAlertInput, ResendAlertPayload, SendAlertInput, SendAlertPayload,
    SendAlertsInput, SendAlertsPayload, SendTestAlertInput, SendTestAlertPayload,
};
use crate::ingest::{self, AlertDraft, AlertInputError, Ingest, IngestError, MAX_BATCH};
use crate::store::deliveries::{self, Claimed};
use crate::store::{Store, alerts, destinations, ids};
use crate::telemetry::AlertSource;

#[derive(Default)]
pub struct AlertMutation;

fn input_error(prefix: &str, e: AlertInputError) -> ApiError {
    ApiError::bad_input(format!("{prefix}{}", e.field), e.message)
}

fn ingest_error(e: IngestError) -> ApiError {
    if e.is_retryable() {
        tracing::warn!(error = %e, "alert not stored");
        ApiError::Unavailable(e.to_string())
    } else {
        tracing::error!(error = %e, "alert not stored");
        ApiError::Internal
    }
}

#[Object]
impl AlertMutation {
    /// Routes an alert and queues a delivery to each destination it goes to. Returns once the alert
    /// and its deliveries are committed.
    async fn send_alert(
        &self,
        ctx: &Context<'_>,
        input: SendAlertInput,
    ) -> ApiResult<SendAlertPayload> {
        let incoming = ingest::incoming(AlertDraft::from(input)).map_err(|e| input_error("", e))?;
        let mut accepted = ctx
            .data_unchecked::<Ingest>()
            .accept(AlertSource::Graphql, vec![incoming])
            .await
            .map_err(ingest_error)?;
        Ok(accepted.remove(0).into())
    }

    /// Up to 1,000 alerts in one call and one transaction; one result per alert, in order.
    async fn send_alerts(
        &self,
        ctx: &Context<'_>,
        input: SendAlertsInput,
    ) -> ApiResult<SendAlertsPayload> {
        if input.alerts.len() > MAX_BATCH {
            return Err(ApiError::bad_input(
                "alerts",
                format!(
                    "at most {MAX_BATCH} alerts per call, got {}",
                    input.alerts.len()
                ),
            ));
        }
        let incoming = input
            .alerts
            .into_iter()
            .enumerate()
            .map(|(i, a)| {
                ingest::incoming(AlertDraft::from(a))
                    .map_err(|e| input_error(&format!("alerts[{i}]."), e))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let accepted = ctx
            .data_unchecked::<Ingest>()
            .accept(AlertSource::Graphql, incoming)
            .await
            .map_err(ingest_error)?;
        Ok(SendAlertsPayload {
            results: accepted.into_iter().map(Into::into).collect(),
        })
    }

    /// Sends Panther's test alert to one destination now, waits for the one attempt (it is not
    /// retried) and returns the delivery.
    async fn send_test_alert(
        &self,
        ctx: &Context<'_>,
        input: SendTestAlertInput,
    ) -> ApiResult<SendTestAlertPayload> {
        let store = ctx.data_unchecked::<Store>();
        let dispatcher = ctx.data_unchecked::<Dispatcher>();
        let target = destinations::get(store.db(), store.secrets(), &input.destination_id)
            .await?
            .ok_or_else(|| ApiError::NotFound {
                kind: "destination",
                id: input.destination_id.to_string(),
            })?;
        let payload = test_payload();
        let (_, delivery) = alerts::insert_test(
            store.writer(),
            &actor(ctx),
            &payload,
            &target.id,
            &target.display_name,
            dispatcher.worker_id(),
            dispatcher.lease(),
        )
        .await?;
        let done = dispatcher
            .attempt_now(Claimed {
                delivery,
                body: payload.to_bytes(),
            })
            .await?;
        Ok(SendTestAlertPayload {
            delivery: Delivery(done),
        })
    }

    /// Queues the alert again for each destination listed, with the full retry schedule.
    async fn resend_alert(
        &self,
        ctx: &Context<'_>,
        input: ResendAlertInput,
    ) -> ApiResult<ResendAlertPayload> {
        let store = ctx.data_unchecked::<Store>();
        let ids: Vec<String> = input.destination_ids.into_iter().map(|i| i.0).collect();
        if ids.is_empty() {
            return Err(ApiError::bad_input(
                "destinationIds",
                "destinationIds must name at least one destination",
            ));
        }
        let dispatcher = ctx.data_unchecked::<Dispatcher>();
        let queued = deliveries::resend_alert(
            store.writer(),
            &actor(ctx),
            dispatcher.worker_id(),
            &input.alert_id,
            &ids,
        )
        .await?;
        dispatcher.wake();
        Ok(ResendAlertPayload {
            deliveries: queued.into_iter().map(Delivery).collect(),
        })
    }
}

/// Panther's synthetic test alert.
fn test_payload() -> PantherPayload {
    PantherPayload {
        id: "Test.Alert".into(),
        created_at: chrono::SubsecRound::trunc_subsecs(chrono::Utc::now(), 0),
        severity: herald_domain::Severity::Info,
        alert_type: herald_domain::AlertType::Rule,
        link: String::new(),
        title: "This is a Test Alert".into(),
        name: "Test Alert".into(),
        alert_id: ids::alert(),
        alert_context: serde_json::Map::new(),
        description: "This is a Test Alert".into(),
        runbook: String::new(),
        tags: vec!["test".into()],
        version: "abcdefg".into(),
    }
}
