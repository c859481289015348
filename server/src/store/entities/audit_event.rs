use sea_orm::entity::prelude::*;

/// One change made through the API or the command line: when, by whom, what, to which target, and
/// the names of the fields it changed (never their values, so no secret can end up here).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub at: DateTimeUtc,
    /// The API token's name, or `cli` for the command line.
    pub actor: String,
    /// One of `store::audit::Action`, e.g. `destination.updated`.
    pub action: String,
    /// `destination`, `delivery`, `alert`, `api_token` or `encryption_key`.
    pub target_type: String,
    pub target_id: Option<String>,
    /// JSON list of field names, e.g. `["url","customHeaders"]`.
    #[sea_orm(column_type = "Text")]
    pub changed_fields: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
