//! Live updates: every delivery change this process records, over graphql-transport-ws at
//! `/graphql/ws`. Each replica streams the changes it makes itself.

use async_graphql::{Context, ID, Subscription};
use futures::Stream;
use tokio::sync::broadcast::error::RecvError;

use crate::dispatch::Dispatcher;
use crate::graphql::types::Delivery;

#[derive(Default)]
pub struct SubscriptionRoot;

#[Subscription(name = "Subscription")]
impl SubscriptionRoot {
    /// A delivery each time it changes (an attempt recorded, a final state), optionally only those
    /// of one destination or one alert.
    async fn delivery_updated(
        &self,
        ctx: &Context<'_>,
        destination_id: Option<ID>,
        alert_id: Option<ID>,
    ) -> impl Stream<Item = Delivery> + use<> {
        let rx = ctx.data_unchecked::<Dispatcher>().subscribe();
        futures::stream::unfold(rx, move |mut rx| {
            let destination_id = destination_id.clone();
            let alert_id = alert_id.clone();
            async move {
                loop {
                    match rx.recv().await {
                        Ok(d) => {
                            let wanted = destination_id
                                .as_ref()
                                .is_none_or(|id| **id == d.destination_id)
                                && alert_id.as_ref().is_none_or(|id| **id == d.alert_id);
                            if wanted {
                                return Some((Delivery(d), rx));
                            }
                        }
                        // A slow subscriber misses some updates rather than holding up delivery.
                        Err(RecvError::Lagged(_)) => continue,
                        Err(RecvError::Closed) => return None,
                    }
                }
            }
        })
    }
}
