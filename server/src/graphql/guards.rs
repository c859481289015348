//! Who is calling, and what they may do.

use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextResolve, ResolveInfo,
};
use async_graphql::{PathSegment, ServerError, ServerResult, Value};

use super::ApiError;
use crate::store::tokens::Role;

/// The authenticated caller, put into every request's data by the HTTP layer.
#[derive(Debug, Clone)]
pub struct Principal {
    pub token_name: String,
    pub role: Role,
}

impl Principal {
    pub fn sees_secrets(&self) -> bool {
        self.role == Role::Admin
    }
}

/// Refuses every root mutation field to anyone but an ADMIN. One check for all mutations, so a new
/// mutation cannot forget its guard.
pub(super) struct MutationsNeedAdmin;

impl ExtensionFactory for MutationsNeedAdmin {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(MutationsNeedAdminExt)
    }
}

struct MutationsNeedAdminExt;

#[async_graphql::async_trait::async_trait]
impl Extension for MutationsNeedAdminExt {
    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        if info.parent_type == "Mutation" {
            let admin = ctx
                .data_opt::<Principal>()
                .is_some_and(|p| p.role == Role::Admin);
            if !admin {
                let err = async_graphql::Error::from(ApiError::Forbidden);
                let mut refused = ServerError::new(err.message, None)
                    .with_path(vec![PathSegment::Field(info.name.to_owned())]);
                refused.extensions = err.extensions;
                return Err(refused);
            }
        }
        next.run(ctx, info).await
    }
}
