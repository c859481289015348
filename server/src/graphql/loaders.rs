//! Batched reads for fields under lists: a page of 100 deliveries asks for its attempts, alerts
//! and destinations in one query each, not one query a row (N+1). Each field's resolver asks
//! [`Loaders`] for its key; async-graphql's `DataLoader` gathers the keys that the sibling
//! resolvers ask for within [`GATHER`] and loads them together.
//!
//! Nothing is cached: the loader is schema-wide and every load reads the database afresh, so a
//! response never shows data older than the request. Keys of concurrent requests may share a
//! batch, which is harmless: each gets back the rows for its own keys.

use std::collections::HashMap;
use std::time::Duration;

use async_graphql::dataloader::{DataLoader, Loader};

use crate::graphql::ApiError;
use crate::store::deliveries::{self, Attempt, Delivery, DeliveryState};
use crate::store::{Store, alerts, counts, destinations};

/// How long a batch waits for its siblings' keys: they arrive in the same poll of the list's
/// resolvers, so a fraction of a millisecond is plenty.
const GATHER: Duration = Duration::from_micros(500);

/// The attempts of a delivery, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AttemptsOf(pub String);

/// An alert by id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AlertById(pub String);

/// A destination by id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DestinationById(pub String);

/// A destination's delivery counts by state.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CountsOf(pub String);

/// An alert's deliveries, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeliveriesOf(pub String);

pub struct Loaders {
    store: Store,
}

pub type BatchLoader = DataLoader<Loaders>;

pub fn batch_loader(store: Store) -> BatchLoader {
    DataLoader::new(Loaders { store }, tokio::spawn).delay(GATHER)
}

fn ids<K: Clone>(keys: &[K], id: impl Fn(&K) -> &String) -> Vec<String> {
    keys.iter().map(|k| id(k).clone()).collect()
}

impl Loader<AttemptsOf> for Loaders {
    type Value = Vec<Attempt>;
    type Error = ApiError;

    async fn load(
        &self,
        keys: &[AttemptsOf],
    ) -> Result<HashMap<AttemptsOf, Vec<Attempt>>, ApiError> {
        let found = deliveries::attempts_of_many(self.store.db(), &ids(keys, |k| &k.0)).await?;
        Ok(found
            .into_iter()
            .map(|(id, attempts)| (AttemptsOf(id), attempts))
            .collect())
    }
}

impl Loader<AlertById> for Loaders {
    type Value = alerts::Alert;
    type Error = ApiError;

    async fn load(
        &self,
        keys: &[AlertById],
    ) -> Result<HashMap<AlertById, alerts::Alert>, ApiError> {
        let found = alerts::get_many(self.store.db(), &ids(keys, |k| &k.0)).await?;
        Ok(found
            .into_iter()
            .map(|a| (AlertById(a.id.clone()), a))
            .collect())
    }
}

impl Loader<DestinationById> for Loaders {
    type Value = destinations::Destination;
    type Error = ApiError;

    async fn load(
        &self,
        keys: &[DestinationById],
    ) -> Result<HashMap<DestinationById, destinations::Destination>, ApiError> {
        let found =
            destinations::get_many(self.store.db(), self.store.secrets(), &ids(keys, |k| &k.0))
                .await?;
        Ok(found
            .into_iter()
            .map(|d| (DestinationById(d.id.clone()), d))
            .collect())
    }
}

impl Loader<CountsOf> for Loaders {
    type Value = Vec<(DeliveryState, u64)>;
    type Error = ApiError;

    async fn load(
        &self,
        keys: &[CountsOf],
    ) -> Result<HashMap<CountsOf, Vec<(DeliveryState, u64)>>, ApiError> {
        let found = counts::by_state(self.store.db(), &ids(keys, |k| &k.0)).await?;
        Ok(found
            .into_iter()
            .map(|(id, counts)| (CountsOf(id), counts))
            .collect())
    }
}

impl Loader<DeliveriesOf> for Loaders {
    type Value = Vec<Delivery>;
    type Error = ApiError;

    async fn load(
        &self,
        keys: &[DeliveriesOf],
    ) -> Result<HashMap<DeliveriesOf, Vec<Delivery>>, ApiError> {
        let found = deliveries::for_alerts(self.store.db(), &ids(keys, |k| &k.0)).await?;
        Ok(found
            .into_iter()
            .map(|(id, list)| (DeliveriesOf(id), list))
            .collect())
    }
}
