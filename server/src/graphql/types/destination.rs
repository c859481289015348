use async_graphql::connection::Connection;
use async_graphql::{Context, ID, InputObject, MaybeUndefined, Object, SimpleObject};
use herald_domain::{AlertType, Severity};

use super::{
    AlertTypeGql, ConnectionArgs, DateTime, Delivery, DeliveryCounts, DeliveryStateGql,
    SeverityGql, TotalCount, connection,
};
use crate::graphql::Principal;
use crate::graphql::errors::ApiResult;
use crate::graphql::loaders::{BatchLoader, CountsOf};
use crate::store::Store;
use crate::store::deliveries::{self, DeliveryFilter};
use crate::store::destinations::{self, CustomHeader as StoredHeader};

/// A webhook endpoint that receives alerts.
pub struct Destination(pub destinations::Destination);

fn sees_secrets(ctx: &Context<'_>) -> bool {
    ctx.data_opt::<Principal>()
        .is_some_and(Principal::sees_secrets)
}

#[Object]
impl Destination {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }

    async fn display_name(&self) -> &str {
        &self.0.display_name
    }

    async fn url(&self) -> &str {
        &self.0.url
    }

    /// The severities routed here; [] means only alerts that name this destination explicitly.
    async fn severities(&self) -> Vec<SeverityGql> {
        self.0.severities.iter().map(|s| (*s).into()).collect()
    }

    async fn alert_types(&self) -> Vec<AlertTypeGql> {
        self.0.alert_types.iter().map(|t| (*t).into()).collect()
    }

    async fn custom_headers(&self, ctx: &Context<'_>) -> Vec<CustomHeader> {
        let reveal = sees_secrets(ctx);
        self.0
            .custom_headers
            .iter()
            .map(|h| CustomHeader {
                name: h.name.clone(),
                value: reveal.then(|| h.value.clone()),
            })
            .collect()
    }

    /// The log types routed here by severity: an alert that names log types arrives only if one
    /// of them is listed. [] means every log type. Alerts that name no log type, and alerts that
    /// name this destination explicitly, are not filtered.
    async fn log_types(&self) -> &[String] {
        &self.0.log_types
    }

    /// Requests per minute this destination receives at most; null: no limit. Deliveries over
    /// the rate wait in the queue (not failed, no attempt counted) and go out as it allows, with
    /// a burst of at most one second's worth. The test alert goes at once but counts.
    async fn rate_limit_per_minute(&self) -> Option<i32> {
        self.0.rate_limit_per_minute
    }

    async fn enabled(&self) -> bool {
        self.0.enabled
    }

    /// While false, new alerts do not route here and its pending and retrying deliveries are held
    /// until it is enabled again.
    ///
    /// After this many consecutive deliveries end FAILED (retries used up; test alerts do not
    /// count; any success resets the count), Herald disables the destination. Null: never.
    async fn auto_disable_after_failures(&self) -> Option<i32> {
        self.0.auto_disable_after_failures
    }

    /// Why Herald disabled it, e.g. "auto-disabled after 20 consecutive failed deliveries;
    /// last: request failed: 503 …". Null while enabled, and when disabled by hand.
    async fn disabled_reason(&self) -> Option<&str> {
        self.0.disabled_reason.as_deref()
    }

    /// When it was last disabled, by hand or by Herald; null while enabled.
    async fn disabled_at(&self) -> Option<DateTime> {
        self.0.disabled_at.map(Into::into)
    }

    /// "whsec_" + base64 of 32 random bytes; null for viewers.
    async fn signing_secret(&self, ctx: &Context<'_>) -> Option<&str> {
        sees_secrets(ctx).then_some(self.0.signing_secret.as_str())
    }

    /// When the signing secret before the last rotation stops signing; null when no previous
    /// secret signs (never rotated, rotated without a grace period, or the grace period is over).
    async fn previous_signing_secret_expires_at(&self) -> Option<DateTime> {
        self.0
            .previous_signing_secret
            .as_ref()
            .map(|(_, until)| *until)
            .filter(|until| *until > crate::store::now())
            .map(Into::into)
    }

    async fn created_at(&self) -> DateTime {
        self.0.created_at.into()
    }

    async fn updated_at(&self) -> DateTime {
        self.0.updated_at.into()
    }

    /// This destination's deliveries, newest first.
    #[graphql(complexity = "crate::graphql::limits::page_cost(first, child_complexity)")]
    async fn deliveries(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        state: Option<DeliveryStateGql>,
    ) -> ApiResult<Connection<String, Delivery, TotalCount>> {
        let filter = DeliveryFilter {
            destination_id: Some(self.0.id.clone()),
            state: state.map(Into::into),
            ..Default::default()
        };
        delivery_connection(ctx, &filter, first, after).await
    }

    /// How many of its deliveries are in each state: what is failing, at a glance.
    async fn delivery_counts(&self, ctx: &Context<'_>) -> ApiResult<DeliveryCounts> {
        Ok(ctx
            .data_unchecked::<BatchLoader>()
            .load_one(CountsOf(self.0.id.clone()))
            .await?
            .unwrap_or_default()
            .into())
    }
}

/// A page of deliveries as a Relay connection.
pub async fn delivery_connection(
    ctx: &Context<'_>,
    filter: &DeliveryFilter,
    first: Option<i32>,
    after: Option<String>,
) -> ApiResult<Connection<String, Delivery, TotalCount>> {
    let args = ConnectionArgs::new(first, after)?;
    let store = ctx.data_unchecked::<Store>();
    // totalCount only when the client asked for it (directly or through a fragment).
    let with_total = ctx.look_ahead().field("totalCount").exists();
    let page = deliveries::list(
        store.db(),
        filter,
        args.first,
        args.after.as_deref(),
        with_total,
    )
    .await?;
    Ok(connection(page, &args, |d| d.id.clone(), Delivery))
}

/// A header sent with every request to the destination.
#[derive(SimpleObject)]
pub struct CustomHeader {
    pub name: String,
    /// Null for viewers.
    pub value: Option<String>,
}

#[derive(InputObject)]
pub struct CustomHeaderInput {
    pub name: String,
    pub value: String,
}

impl From<CustomHeaderInput> for StoredHeader {
    fn from(h: CustomHeaderInput) -> Self {
        StoredHeader {
            name: h.name,
            value: h.value,
        }
    }
}

fn severities(list: Vec<SeverityGql>) -> Vec<Severity> {
    list.into_iter().map(Into::into).collect()
}

fn alert_types(list: Vec<AlertTypeGql>) -> Vec<AlertType> {
    list.into_iter().map(Into::into).collect()
}

fn headers(list: Vec<CustomHeaderInput>) -> Vec<StoredHeader> {
    list.into_iter().map(Into::into).collect()
}

#[derive(InputObject)]
pub struct CreateDestinationInput {
    pub display_name: String,
    pub url: String,
    /// Omitted: all five.
    pub severities: Option<Vec<SeverityGql>>,
    /// Omitted: all six; an empty list is an error.
    pub alert_types: Option<Vec<AlertTypeGql>>,
    pub custom_headers: Option<Vec<CustomHeaderInput>>,
    /// Omitted or []: every log type. At most 100, unique; each 1 to 128 letters, digits, '.'
    /// and '_' (like AWS.CloudTrail).
    pub log_types: Option<Vec<String>>,
    /// Requests per minute at most, 1 to 600000. Omitted or null: no limit.
    pub rate_limit_per_minute: Option<i32>,
    /// Omitted: true.
    pub enabled: Option<bool>,
    /// Disable the destination after this many consecutive failed deliveries, 1 to 10000.
    /// Omitted or null: never.
    pub auto_disable_after_failures: Option<i32>,
}

impl From<CreateDestinationInput> for destinations::NewDestination {
    fn from(i: CreateDestinationInput) -> Self {
        destinations::NewDestination {
            display_name: i.display_name,
            url: i.url,
            severities: i.severities.map(severities),
            alert_types: i.alert_types.map(alert_types),
            custom_headers: i.custom_headers.map(headers).unwrap_or_default(),
            log_types: i.log_types,
            rate_limit_per_minute: i.rate_limit_per_minute,
            enabled: i.enabled,
            auto_disable_after_failures: i.auto_disable_after_failures,
        }
    }
}

/// Only the fields given change; customHeaders and logTypes, when given, replace the whole list.
#[derive(InputObject)]
pub struct UpdateDestinationInput {
    pub id: ID,
    pub display_name: Option<String>,
    pub url: Option<String>,
    pub severities: Option<Vec<SeverityGql>>,
    pub alert_types: Option<Vec<AlertTypeGql>>,
    pub custom_headers: Option<Vec<CustomHeaderInput>>,
    /// []: every log type again.
    pub log_types: Option<Vec<String>>,
    /// 1 to 600000; null removes the limit; omitted leaves it as it is.
    pub rate_limit_per_minute: MaybeUndefined<i32>,
    /// true also clears disabledReason and disabledAt and starts the failure count afresh; the
    /// deliveries held while it was disabled go out.
    pub enabled: Option<bool>,
    /// 1 to 10000; null: never auto-disable; omitted: unchanged.
    pub auto_disable_after_failures: MaybeUndefined<i32>,
}

impl UpdateDestinationInput {
    pub fn into_patch(self) -> (String, destinations::DestinationPatch) {
        (
            self.id.0,
            destinations::DestinationPatch {
                display_name: self.display_name,
                url: self.url,
                severities: self.severities.map(severities),
                alert_types: self.alert_types.map(alert_types),
                custom_headers: self.custom_headers.map(headers),
                log_types: self.log_types,
                rate_limit_per_minute: match self.rate_limit_per_minute {
                    MaybeUndefined::Undefined => None,
                    MaybeUndefined::Null => Some(None),
                    MaybeUndefined::Value(n) => Some(Some(n)),
                },
                enabled: self.enabled,
                auto_disable_after_failures: match self.auto_disable_after_failures {
                    MaybeUndefined::Undefined => None,
                    MaybeUndefined::Null => Some(None),
                    MaybeUndefined::Value(n) => Some(Some(n)),
                },
            },
        )
    }
}

#[derive(InputObject)]
pub struct DeleteDestinationInput {
    pub id: ID,
}

#[derive(SimpleObject)]
pub struct CreateDestinationPayload {
    pub destination: Destination,
}

#[derive(SimpleObject)]
pub struct UpdateDestinationPayload {
    pub destination: Destination,
}

#[derive(SimpleObject)]
pub struct DeleteDestinationPayload {
    pub deleted_id: ID,
}

#[derive(InputObject)]
pub struct RotateSigningSecretInput {
    pub id: ID,
    /// How long the previous secret keeps signing beside the new one (default 0: at once).
    pub grace_period_seconds: Option<i32>,
}

#[derive(SimpleObject)]
pub struct RotateSigningSecretPayload {
    pub destination: Destination,
}
