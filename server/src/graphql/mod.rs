//! The GraphQL API: schema assembly. Transport (HTTP, authentication) lives in `http`; this module
//! only knows the authenticated [`Principal`] that the transport puts into each request.

mod errors;
mod guards;
pub mod limits;
mod loaders;
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

pub fn build_schema(store: Store, dispatcher: Dispatcher, ingest: Ingest) -> HeraldSchema {
    Schema::build(
        QueryRoot::default(),
        MutationRoot::default(),
        SubscriptionRoot,
    )
    .data(loaders::batch_loader(store.clone()))
    .data(store)
    .data(dispatcher)
    .data(ingest)
    .extension(guards::MutationsNeedAdmin)
    .extension(errors::ArgumentErrors)
    // Depth, complexity, aliases and document size, each refused with its name and value.
    .extension(limits::QueryLimits)
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
