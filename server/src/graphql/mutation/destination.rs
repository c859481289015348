use async_graphql::{Context, Object};
use herald_domain::validate_grace_period_seconds;

use super::actor;
use crate::dispatch::Dispatcher;
use crate::graphql::ApiError;
use crate::graphql::errors::ApiResult;
use crate::graphql::types::{
    CreateDestinationInput, CreateDestinationPayload, DeleteDestinationInput,
    DeleteDestinationPayload, Destination, RotateSigningSecretInput, RotateSigningSecretPayload,
    UpdateDestinationInput, UpdateDestinationPayload,
};
use crate::store::{Store, destinations};

/// Refuses a URL the dispatcher would refuse to send to (a literal internal address, or plain
/// http when HTTPS is required), so the mistake shows when the destination is written.
fn check_egress(ctx: &Context<'_>, url: &str) -> ApiResult<()> {
    ctx.data_unchecked::<Dispatcher>()
        .egress()
        .check_url(url)
        .map_err(|refusal| ApiError::bad_input("url", format!("url {refusal}")))
}

#[derive(Default)]
pub struct DestinationMutation;

#[Object]
impl DestinationMutation {
    async fn create_destination(
        &self,
        ctx: &Context<'_>,
        input: CreateDestinationInput,
    ) -> ApiResult<CreateDestinationPayload> {
        check_egress(ctx, &input.url)?;
        let store = ctx.data_unchecked::<Store>();
        let created =
            destinations::create(store.writer(), store.secrets(), &actor(ctx), input.into())
                .await?;
        Ok(CreateDestinationPayload {
            destination: Destination(created),
        })
    }

    /// Changes only the fields given; `customHeaders`, when given, replaces the whole list.
    /// `enabled: true` clears `disabledReason` and releases the deliveries held while disabled.
    async fn update_destination(
        &self,
        ctx: &Context<'_>,
        input: UpdateDestinationInput,
    ) -> ApiResult<UpdateDestinationPayload> {
        let store = ctx.data_unchecked::<Store>();
        if let Some(url) = &input.url {
            check_egress(ctx, url)?;
        }
        let (id, patch) = input.into_patch();
        let enabling = patch.enabled == Some(true);
        let dispatcher = ctx.data_unchecked::<Dispatcher>();
        let updated = destinations::update(
            store.writer(),
            store.secrets(),
            &actor(ctx),
            dispatcher.worker_id(),
            &id,
            patch,
        )
        .await?;
        if enabling {
            // Its held deliveries are due already; no need to wait for the next poll.
            dispatcher.wake();
        }
        dispatcher.destination_changed(updated.clone());
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
        let dispatcher = ctx.data_unchecked::<Dispatcher>();
        let ended = destinations::delete(
            store.writer(),
            &actor(ctx),
            dispatcher.worker_id(),
            &input.id,
        )
        .await?;
        for d in ended {
            dispatcher.delivery_changed(d);
        }
        Ok(DeleteDestinationPayload {
            deleted_id: input.id,
        })
    }

    /// Issues a new signing secret; for `gracePeriodSeconds` the previous one signs too.
    async fn rotate_signing_secret(
        &self,
        ctx: &Context<'_>,
        input: RotateSigningSecretInput,
    ) -> ApiResult<RotateSigningSecretPayload> {
        let grace = validate_grace_period_seconds(input.grace_period_seconds.unwrap_or(0).into())?;
        let store = ctx.data_unchecked::<Store>();
        let dispatcher = ctx.data_unchecked::<Dispatcher>();
        let rotated = destinations::rotate_secret(
            store.writer(),
            store.secrets(),
            &actor(ctx),
            dispatcher.worker_id(),
            &input.id,
            chrono::Duration::seconds(grace.into()),
        )
        .await?;
        dispatcher.destination_changed(rotated.clone());
        Ok(RotateSigningSecretPayload {
            destination: Destination(rotated),
        })
    }
}
