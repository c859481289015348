//! Mutation roots, one per domain, merged. Every field here needs the ADMIN role; the check is the
//! `MutationsNeedAdmin` extension, not a per-field guard.

mod destination;

use async_graphql::MergedObject;

#[derive(MergedObject, Default)]
#[graphql(name = "Mutation")]
pub struct MutationRoot(destination::DestinationMutation);
