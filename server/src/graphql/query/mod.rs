//! Query roots, one per domain, merged.

mod alert;
mod audit;
mod delivery;
mod destination;
mod viewer;

use async_graphql::MergedObject;

#[derive(MergedObject, Default)]
#[graphql(name = "Query")]
pub struct QueryRoot(
    destination::DestinationQuery,
    alert::AlertQuery,
    delivery::DeliveryQuery,
    viewer::ViewerQuery,
    audit::AuditQuery,
);
