use sea_orm::entity::prelude::*;

/// One alert on its way to one destination. The row *is* the queue entry: `state`,
/// `next_attempt_at` and the lease columns are all a worker needs to claim it, so nothing about
/// pending work lives only in memory.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "deliveries")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub alert_id: String,
    /// No foreign key: the history outlives a deleted destination.
    pub destination_id: String,
    /// The destination's display name when the delivery was made.
    pub label: String,
    /// PENDING, RETRYING, SUCCEEDED or FAILED.
    pub state: String,
    /// The Standard Webhooks message id: the same on every retry and re-send.
    pub webhook_id: String,
    pub resend_of: Option<String>,
    pub test: bool,
    pub attempt_count: i32,
    /// When the next attempt is due; null once the delivery is final.
    pub next_attempt_at: Option<DateTimeUtc>,
    /// Which worker holds the delivery, and until when; an expired lease may be claimed again.
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<DateTimeUtc>,
    pub status_code: Option<i32>,
    #[sea_orm(column_type = "Text", nullable)]
    pub response_body: Option<String>,
    #[sea_orm(column_type = "Text")]
    pub message: String,
    pub created_at: DateTimeUtc,
    pub dispatched_at: Option<DateTimeUtc>,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::alert::Entity",
        from = "Column::AlertId",
        to = "super::alert::Column::Id"
    )]
    Alert,
    #[sea_orm(has_many = "super::delivery_attempt::Entity")]
    Attempts,
}

impl Related<super::alert::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Alert.def()
    }
}

impl Related<super::delivery_attempt::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Attempts.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
