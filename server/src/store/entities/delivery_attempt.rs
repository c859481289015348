use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "delivery_attempts")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub delivery_id: String,
    /// 1 for the first attempt; at most 11.
    pub number: i32,
    pub started_at: DateTimeUtc,
    pub duration_ms: i32,
    /// Null when no response arrived (network error, timeout).
    pub status_code: Option<i32>,
    /// The first 64 KiB of the response body.
    #[sea_orm(column_type = "Text", nullable)]
    pub response_body: Option<String>,
    pub response_truncated: bool,
    /// JSON object of the response headers worth keeping (Retry-After, Content-Type, ...).
    #[sea_orm(column_type = "Text", nullable)]
    pub response_headers: Option<String>,
    #[sea_orm(column_type = "Text", nullable)]
    pub error: Option<String>,
    /// The URL this attempt used; null for attempts recorded before it was kept.
    #[sea_orm(column_type = "Text", nullable)]
    pub url: Option<String>,
    /// JSON object of the request headers sent, custom header values masked (never the real
    /// ones: they are secrets); null for attempts recorded before they were kept.
    #[sea_orm(column_type = "Text", nullable)]
    pub request_headers: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::delivery::Entity",
        from = "Column::DeliveryId",
        to = "super::delivery::Column::Id"
    )]
    Delivery,
}

impl Related<super::delivery::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Delivery.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
