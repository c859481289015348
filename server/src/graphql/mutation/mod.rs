//! Mutation roots, one per domain, merged. Every field here needs the ADMIN role; the check is the
//! `MutationsNeedAdmin` extension, not a per-field guard.

mod alert;
mod delivery;
mod destination;

use async_graphql::{Context, MergedObject};

use crate::graphql::Principal;
use crate::store::audit::Actor;

#[derive(MergedObject, Default)]
#[graphql(name = "Mutation")]
pub struct MutationRoot(
    destination::DestinationMutation,
    alert::AlertMutation,
    delivery::DeliveryMutation,
);

/// Who is making a change, for the audit log.
fn actor(ctx: &Context<'_>) -> Actor {
    Actor(
        ctx.data_opt::<Principal>()
            .map(|p| p.token_name.clone())
            .unwrap_or_default(),
    )
}
