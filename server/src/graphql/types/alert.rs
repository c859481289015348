use async_graphql::{ComplexObject, Context, ID, InputObject, Json, SimpleObject};

use super::{AlertTypeGql, DateTime, Delivery, SeverityGql};
use crate::graphql::errors::ApiResult;
use crate::graphql::loaders::{BatchLoader, DeliveriesOf};
use crate::ingest::AlertDraft;
use crate::store::alerts;

/// An alert Herald accepted.
#[derive(SimpleObject)]
#[graphql(complex)]
pub struct Alert {
    pub id: ID,
    pub detection_id: String,
    pub title: String,
    pub severity: SeverityGql,
    #[graphql(name = "type")]
    pub alert_type: AlertTypeGql,
    pub created_at: DateTime,
    /// When Herald accepted it.
    pub received_at: DateTime,
    /// The JSON body sent to destinations, exactly.
    pub payload: Json<serde_json::Value>,
    /// The log types the alert named, which routed it; [] when none. Not part of the payload.
    pub log_types: Vec<String>,
}

impl From<alerts::Alert> for Alert {
    fn from(a: alerts::Alert) -> Self {
        Alert {
            id: ID(a.id),
            detection_id: a.detection_id,
            title: a.title,
            severity: a.severity.into(),
            alert_type: a.alert_type.into(),
            created_at: a.created_at.into(),
            received_at: a.received_at.into(),
            payload: Json(serde_json::from_str(&a.body).unwrap_or_default()),
            log_types: a.log_types,
        }
    }
}

#[ComplexObject]
impl Alert {
    /// Every delivery of this alert, re-sends included, oldest first.
    // An alert reaches a handful of destinations; counted as ten so a page of alerts with their
    // deliveries weighs what it reads.
    #[graphql(complexity = "crate::graphql::limits::list_cost(10, child_complexity)")]
    async fn deliveries(&self, ctx: &Context<'_>) -> ApiResult<Vec<Delivery>> {
        Ok(ctx
            .data_unchecked::<BatchLoader>()
            .load_one(DeliveriesOf(self.id.0.clone()))
            .await?
            .unwrap_or_default()
            .into_iter()
            .map(Delivery)
            .collect())
    }
}

/// An alert to deliver. Field names follow Panther's payload.
#[derive(InputObject, Clone)]
pub struct SendAlertInput {
    /// The alert's id (`Alert.id`, payload `alertId`); Herald generates one when omitted. An
    /// idempotency key: the same alertId again returns the first result and sends nothing new.
    pub alert_id: Option<ID>,
    /// Becomes the payload's `id`.
    pub detection_id: String,
    pub title: String,
    /// The detection's name; default: detectionId.
    pub name: Option<String>,
    pub severity: SeverityGql,
    /// Default RULE.
    #[graphql(name = "type")]
    pub alert_type: Option<AlertTypeGql>,
    pub description: Option<String>,
    pub runbook: Option<String>,
    pub tags: Option<Vec<String>>,
    pub version: Option<String>,
    pub link: Option<String>,
    /// An object; becomes `alertContext` (default {}); at most 200 KiB.
    pub context: Option<Json<serde_json::Value>>,
    /// Default: now.
    pub created_at: Option<DateTime>,
    /// A severity computed at detection time; routes instead of `severity`.
    pub dynamic_severity: Option<SeverityGql>,
    /// The detection's static destination list; ["SKIP"] sends nowhere.
    pub destination_overrides: Option<Vec<ID>>,
    /// The destinations computed at detection time; at most 10.
    pub dynamic_destinations: Option<Vec<ID>>,
    /// The log types the alert came from (like AWS.CloudTrail): a destination with log types
    /// receives it by severity only if one matches. Omitted or []: none, which passes every
    /// destination's log-type filter. At most 100, unique; letters, digits, '.' and '_'.
    pub log_types: Option<Vec<String>>,
}

fn ids(list: Option<Vec<ID>>) -> Option<Vec<String>> {
    list.map(|l| l.into_iter().map(|i| i.0).collect())
}

impl From<SendAlertInput> for AlertDraft {
    fn from(i: SendAlertInput) -> Self {
        AlertDraft {
            alert_id: i.alert_id.map(|i| i.0),
            detection_id: i.detection_id,
            title: i.title,
            name: i.name,
            severity: Some(i.severity.into()),
            alert_type: i.alert_type.map(Into::into),
            description: i.description,
            runbook: i.runbook,
            tags: i.tags,
            version: i.version,
            link: i.link,
            context: i.context.map(|c| c.0),
            created_at: i.created_at.map(|t| t.0),
            dynamic_severity: i.dynamic_severity.map(Into::into),
            destination_overrides: ids(i.destination_overrides),
            dynamic_destinations: ids(i.dynamic_destinations),
            log_types: i.log_types,
        }
    }
}

#[derive(SimpleObject)]
pub struct SendAlertPayload {
    pub alert: Alert,
    /// The deliveries queued for it (for a repeated alertId: those of the first call).
    pub deliveries: Vec<Delivery>,
    /// Ids that were skipped while routing, one line each.
    pub warnings: Vec<String>,
}

impl From<alerts::Accepted> for SendAlertPayload {
    fn from(a: alerts::Accepted) -> Self {
        SendAlertPayload {
            alert: a.alert.into(),
            deliveries: a.deliveries.into_iter().map(Delivery).collect(),
            warnings: a.warnings,
        }
    }
}

#[derive(InputObject)]
pub struct SendAlertsInput {
    /// Up to 1,000 alerts, stored in one transaction.
    pub alerts: Vec<SendAlertInput>,
}

#[derive(SimpleObject)]
pub struct SendAlertsPayload {
    /// One result per alert, in input order.
    pub results: Vec<SendAlertPayload>,
}

#[derive(InputObject)]
pub struct SendTestAlertInput {
    pub destination_id: ID,
}

#[derive(SimpleObject)]
pub struct SendTestAlertPayload {
    pub delivery: Delivery,
}

#[derive(InputObject)]
pub struct ResendAlertInput {
    pub alert_id: ID,
    pub destination_ids: Vec<ID>,
}

#[derive(SimpleObject)]
pub struct ResendAlertPayload {
    pub deliveries: Vec<Delivery>,
}
