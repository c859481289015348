use async_graphql::{Context, Object};

use crate::graphql::Principal;
use crate::graphql::types::Viewer;

#[derive(Default)]
pub struct ViewerQuery;

#[Object]
impl ViewerQuery {
    /// The API token making this request.
    async fn viewer(&self, ctx: &Context<'_>) -> async_graphql::Result<Viewer> {
        let p = ctx.data::<Principal>()?;
        Ok(Viewer {
            token_name: p.token_name.clone(),
            role: p.role.into(),
        })
    }
}
