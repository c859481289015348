use async_graphql::connection::Connection;
use async_graphql::{Context, ID, Object};

use crate::graphql::ApiError;
use crate::graphql::errors::ApiResult;
use crate::graphql::guards::AdminOnly;
use crate::graphql::types::{AuditEvent, ConnectionArgs, DateTime, TotalCount, connection};
use crate::store::Store;
use crate::store::audit::{self, Action, AuditCursor, AuditFilter};

#[derive(Default)]
pub struct AuditQuery;

#[Object]
impl AuditQuery {
    /// Changes made through the API and the command line, newest first; ADMIN tokens only.
    /// `targetId` and `action` match exactly; `since` keeps events at or after that time.
    #[graphql(
        guard = "AdminOnly",
        complexity = "crate::graphql::limits::page_cost(first, child_complexity)"
    )]
    async fn audit_events(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        target_id: Option<ID>,
        action: Option<String>,
        since: Option<DateTime>,
    ) -> ApiResult<Connection<String, AuditEvent, TotalCount>> {
        let args = ConnectionArgs::new(first, after)?;
        let after = args
            .after
            .as_deref()
            .map(|c| {
                AuditCursor::parse(c).ok_or_else(|| {
                    ApiError::bad_input(
                        "after",
                        "after must be an endCursor from a previous auditEvents page",
                    )
                })
            })
            .transpose()?;
        let action = action
            .map(|a| {
                Action::parse(&a).ok_or_else(|| {
                    let known: Vec<_> = Action::ALL.iter().map(|a| a.as_str()).collect();
                    ApiError::bad_input(
                        "action",
                        format!("action must be one of {}", known.join(", ")),
                    )
                })
            })
            .transpose()?;
        let target_id = target_id.map(|t| t.0);
        if target_id.as_deref().is_some_and(|t| t.trim().is_empty()) {
            return Err(ApiError::bad_input(
                "targetId",
                "targetId must not be blank; leave it out to see every target",
            ));
        }
        let filter = AuditFilter {
            target_id,
            action,
            since: since.map(|t| t.0),
        };
        let store = ctx.data_unchecked::<Store>();
        let page = audit::list(store.db(), &filter, args.first, after.as_ref()).await?;
        Ok(connection(
            page,
            &args,
            |e| AuditCursor::of(e).to_string(),
            AuditEvent,
        ))
    }
}
