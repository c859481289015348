use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "alerts")]
pub struct Model {
    /// The caller's alert id, or one Herald generated; the primary key makes it an idempotency key.
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub detection_id: String,
    pub title: String,
    pub severity: String,
    pub alert_type: String,
    /// The alert's own time (payload `createdAt`).
    pub created_at: DateTimeUtc,
    /// When Herald accepted it; alerts are listed by this.
    pub received_at: DateTimeUtc,
    /// The exact JSON body sent to every destination, so re-sends and signatures are reproducible.
    #[sea_orm(column_type = "Text")]
    pub body: String,
    /// Routing inputs kept for re-sends and audits (JSON).
    #[sea_orm(column_type = "Text")]
    pub routing: String,
    /// JSON list of the log types the alert names (`[]`: none); the severity tier routes by it.
    #[sea_orm(column_type = "Text")]
    pub log_types: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::delivery::Entity")]
    Deliveries,
}

impl Related<super::delivery::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Deliveries.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
