//! Who is calling, and what they may do.

use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextResolve, ResolveInfo,
};
use async_graphql::{Context, Guard, PathSegment, ServerError, ServerResult, Value};

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

/// Lets only ADMIN tokens resolve a field; viewers get `FORBIDDEN`. For queries that show what
/// viewers may not see (the audit trail).
pub(super) struct AdminOnly;

impl Guard for AdminOnly {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        let admin = ctx
            .data_opt::<Principal>()
            .is_some_and(|p| p.role == Role::Admin);
        if admin {
            Ok(())
        } else {
            Err(ApiError::Forbidden.into())
        }
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
