//! Live updates: every delivery change this process records, and every destination change it makes
//! (an auto-disable, an API write), over graphql-transport-ws at `/graphql/ws`. Each replica
//! streams the changes it makes itself.

use async_graphql::{Context, ID, Subscription};
use futures::Stream;
use tokio::sync::broadcast::error::RecvError;

use crate::dispatch::Dispatcher;
use crate::graphql::types::{Delivery, Destination};

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

    /// A destination each time it changes: Herald auto-disabled it, or someone updated it through
    /// the API. Optionally only the destination with this id.
    async fn destination_updated(
        &self,
        ctx: &Context<'_>,
        id: Option<ID>,
    ) -> impl Stream<Item = Destination> + use<> {
        let rx = ctx.data_unchecked::<Dispatcher>().subscribe_destinations();
        futures::stream::unfold(rx, move |mut rx| {
            let id = id.clone();
            async move {
                loop {
                    match rx.recv().await {
                        Ok(d) => {
                            if id.as_ref().is_none_or(|id| **id == d.id) {
                                return Some((Destination(d), rx));
                            }
                        }
                        Err(RecvError::Lagged(_)) => continue,
                        Err(RecvError::Closed) => return None,
                    }
                }
            }
        })
    }
}
