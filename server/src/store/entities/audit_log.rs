use sea_orm::entity::prelude::*;

/// Who changed which destination, when, and which fields (never their secret values).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_log")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub at: DateTimeUtc,
    /// The API token's name, or `cli` for the command line.
    pub actor: String,
    /// `destination.create`, `destination.update`, `destination.delete`, ...
    pub action: String,
    pub destination_id: String,
    /// JSON: the names of the fields that changed, and non-secret new values.
    #[sea_orm(column_type = "Text")]
    pub detail: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
