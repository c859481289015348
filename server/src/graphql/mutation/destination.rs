use async_graphql::{Context, Object};

use crate::graphql::Principal;
use crate::graphql::errors::ApiResult;
use crate::graphql::types::{
    CreateDestinationInput, CreateDestinationPayload, DeleteDestinationInput,
    DeleteDestinationPayload, Destination, UpdateDestinationInput, UpdateDestinationPayload,
};
use crate::store::audit::Actor;
use crate::store::{Store, destinations};

#[derive(Default)]
pub struct DestinationMutation;

fn actor(ctx: &Context<'_>) -> Actor {
    Actor(
        ctx.data_opt::<Principal>()
            .map(|p| p.token_name.clone())
            .unwrap_or_default(),
    )
}

#[Object]
impl DestinationMutation {
    async fn create_destination(
        &self,
        ctx: &Context<'_>,
        input: CreateDestinationInput,
    ) -> ApiResult<CreateDestinationPayload> {
        let store = ctx.data_unchecked::<Store>();
        let created = destinations::create(store.db(), &actor(ctx), input.into()).await?;
        Ok(CreateDestinationPayload {
            destination: Destination(created),
        })
    }

    /// Changes only the fields given; `customHeaders`, when given, replaces the whole list.
    async fn update_destination(
        &self,
        ctx: &Context<'_>,
        input: UpdateDestinationInput,
    ) -> ApiResult<UpdateDestinationPayload> {
        let store = ctx.data_unchecked::<Store>();
        let (id, patch) = input.into_patch();
        let updated = destinations::update(store.db(), &actor(ctx), &id, patch).await?;
        Ok(UpdateDestinationPayload {
            destination: Destination(updated),
        })
    }

    /// Deletes the destination; its delivery history stays.
    async fn delete_destination(
        &self,
        ctx: &Context<'_>,
        input: DeleteDestinationInput,
    ) -> ApiResult<DeleteDestinationPayload> {
        let store = ctx.data_unchecked::<Store>();
        destinations::delete(store.db(), &actor(ctx), &input.id).await?;
        Ok(DeleteDestinationPayload {
            deleted_id: input.id,
        })
    }
}
