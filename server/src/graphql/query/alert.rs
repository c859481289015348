use async_graphql::connection::Connection;
use async_graphql::{Context, ID, Object};

use crate::graphql::errors::ApiResult;
use crate::graphql::types::{Alert, ConnectionArgs, DateTime, SeverityGql, TotalCount, connection};
use crate::store::{Store, alerts};

#[derive(Default)]
pub struct AlertQuery;

#[Object]
impl AlertQuery {
    /// The alert with this id; null when there is none.
    async fn alert(&self, ctx: &Context<'_>, id: ID) -> ApiResult<Option<Alert>> {
        let store = ctx.data_unchecked::<Store>();
        Ok(alerts::get(store.db(), &id).await?.map(Alert::from))
    }

    /// Alerts, newest first, optionally of one severity and received since a time.
    #[graphql(complexity = "crate::graphql::limits::page_cost(first, child_complexity)")]
    async fn alerts(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        severity: Option<SeverityGql>,
        since: Option<DateTime>,
    ) -> ApiResult<Connection<String, Alert, TotalCount>> {
        let args = ConnectionArgs::new(first, after)?;
        let store = ctx.data_unchecked::<Store>();
        let page = alerts::list(
            store.db(),
            args.first,
            args.after.as_deref(),
            severity.map(Into::into),
            since.map(|t| t.0),
            // Counting every alert is a scan: only when the client asked for totalCount.
            ctx.look_ahead().field("totalCount").exists(),
        )
        .await?;
        Ok(connection(page, &args, alerts::cursor, Alert::from))
    }
}
