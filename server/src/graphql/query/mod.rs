//! Query roots, one per domain, merged.

mod destination;
mod viewer;

use async_graphql::MergedObject;

#[derive(MergedObject, Default)]
#[graphql(name = "Query")]
pub struct QueryRoot(destination::DestinationQuery, viewer::ViewerQuery);
