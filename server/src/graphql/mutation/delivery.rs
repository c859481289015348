use async_graphql::{Context, Object};

use super::actor;

use crate::dispatch::Dispatcher;
use crate::graphql::errors::ApiResult;
use crate::graphql::types::{Delivery, ResendDeliveryInput, ResendDeliveryPayload};
use crate::store::{Store, deliveries};

#[derive(Default)]
pub struct DeliveryMutation;

#[Object]
impl DeliveryMutation {
    /// Queues a re-send: a new delivery with `resendOf` set, the same webhook-id and body, to the
    /// destination's current URL and headers, with the full retry schedule.
    async fn resend_delivery(
        &self,
        ctx: &Context<'_>,
        input: ResendDeliveryInput,
    ) -> ApiResult<ResendDeliveryPayload> {
        let store = ctx.data_unchecked::<Store>();
        let dispatcher = ctx.data_unchecked::<Dispatcher>();
        let resent = deliveries::resend(
            store.writer(),
            &actor(ctx),
            dispatcher.worker_id(),
            &input.delivery_id,
        )
        .await?;
        dispatcher.wake();
        Ok(ResendDeliveryPayload {
            delivery: Delivery(resent),
        })
    }
}
