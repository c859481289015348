use async_graphql::connection::Connection;
use async_graphql::{Context, ID, Object};

use crate::graphql::errors::ApiResult;
use crate::graphql::types::{ConnectionArgs, Destination, TotalCount, connection};
use crate::store::{Store, destinations};

#[derive(Default)]
pub struct DestinationQuery;

#[Object]
impl DestinationQuery {
    /// The destination with this id; null when there is none.
    async fn destination(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<Destination>> {
        let store = ctx.data_unchecked::<Store>();
        Ok(destinations::get(store.db(), store.secrets(), &id)
            .await?
            .map(Destination))
    }

    /// Destinations in creation order. `displayName` filters on an exact, case-insensitive match.
    #[graphql(complexity = "crate::graphql::limits::page_cost(first, child_complexity)")]
    async fn destinations(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        display_name: Option<String>,
    ) -> ApiResult<Connection<String, Destination, TotalCount>> {
        let args = ConnectionArgs::new(first, after)?;
        let store = ctx.data_unchecked::<Store>();
        let page = destinations::list(
            store.db(),
            store.secrets(),
            args.first,
            args.after.as_deref(),
            display_name.as_deref(),
        )
        .await?;
        Ok(connection(page, &args, |d| d.id.clone(), Destination))
    }
}
