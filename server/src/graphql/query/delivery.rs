use async_graphql::connection::Connection;
use async_graphql::{Context, ID, Object};

use crate::graphql::errors::ApiResult;
use crate::graphql::types::{Delivery, DeliveryStateGql, TotalCount, delivery_connection};
use crate::store::Store;
use crate::store::deliveries::{self, DeliveryFilter};

#[derive(Default)]
pub struct DeliveryQuery;

#[Object]
impl DeliveryQuery {
    /// The delivery with this id; null when there is none.
    async fn delivery(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<Delivery>> {
        let store = ctx.data_unchecked::<Store>();
        Ok(deliveries::get(store.db(), &id).await?.map(Delivery))
    }

    /// Deliveries, newest first, optionally of one destination, one alert, one state.
    #[graphql(complexity = "crate::graphql::limits::page_cost(first, child_complexity)")]
    async fn deliveries(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        destination_id: Option<ID>,
        alert_id: Option<ID>,
        state: Option<DeliveryStateGql>,
    ) -> ApiResult<Connection<String, Delivery, TotalCount>> {
        let filter = DeliveryFilter {
            destination_id: destination_id.map(|i| i.0),
            alert_id: alert_id.map(|i| i.0),
            state: state.map(Into::into),
        };
        delivery_connection(ctx, &filter, first, after).await
    }
}
