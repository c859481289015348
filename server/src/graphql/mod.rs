//! The GraphQL API: schema assembly. Transport (HTTP, authentication) lives in `http`; this module
//! only knows the authenticated [`Principal`] that the transport puts into each request.

mod errors;
mod guards;
mod mutation;
mod query;
mod subscription;
mod types;

use async_graphql::Schema;

pub use errors::ApiError;
pub use guards::Principal;
pub use mutation::MutationRoot;
pub use query::QueryRoot;
pub use subscription::SubscriptionRoot;

use crate::dispatch::Dispatcher;
use crate::ingest::Ingest;
use crate::store::Store;

pub type HeraldSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// Queries nest at most this deep; generous for the API's shapes, fatal for abusive ones.
const MAX_DEPTH: usize = 12;
const MAX_COMPLEXITY: usize = 5_000;

pub fn build_schema(store: Store, dispatcher: Dispatcher, ingest: Ingest) -> HeraldSchema {
    Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        SubscriptionRoot,
    )
    .data(store)
    .data(dispatcher)
    .data(ingest)
    .extension(guards::MutationsNeedAdmin)
    .extension(errors::ArgumentErrors)
    .limit_depth(MAX_DEPTH)
    .limit_complexity(MAX_COMPLEXITY)
    .finish()
}

/// The schema in SDL, as committed in `schema.graphql`.
pub fn sdl() -> String {
    Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        SubscriptionRoot,
    )
    .finish()
    .sdl()
}
