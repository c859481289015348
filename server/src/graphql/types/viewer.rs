use async_graphql::SimpleObject;

use super::RoleGql;

/// The caller: which API token is in use, with which role.
#[derive(SimpleObject)]
pub struct Viewer {
    pub token_name: String,
    pub role: RoleGql,
}
