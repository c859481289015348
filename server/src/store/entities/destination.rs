use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "destinations")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub display_name: String,
    /// `display_name` lower-cased: the unique index on it makes names unique case-insensitively on
    /// SQLite and PostgreSQL alike.
    pub display_name_key: String,
    pub url: String,
    /// Bit mask over `Severity::ALL`; routing tests it with one SQL expression.
    pub severity_mask: i32,
    /// Bit mask over `AlertType::ALL`.
    pub alert_type_mask: i32,
    /// JSON list of `{name, value}`, sealed by `store::secrets`.
    #[sea_orm(column_type = "Text")]
    pub custom_headers: String,
    pub enabled: bool,
    /// JSON list of log type names; `[]` means every log type. Not secret, so stored plain.
    #[sea_orm(column_type = "Text")]
    pub log_types: String,
    /// Sealed by `store::secrets`.
    pub signing_secret: String,
    /// The secret before the last rotation, still used to sign until `previous_secret_expires_at`.
    pub previous_signing_secret: Option<String>,
    pub previous_secret_expires_at: Option<DateTimeUtc>,
    /// Consecutive FAILED deliveries that disable the destination; null: never.
    pub auto_disable_after_failures: Option<i32>,
    /// Deliveries (test alerts aside) that ended FAILED since the last one that succeeded, or
    /// since the destination was last enabled.
    pub consecutive_failures: i32,
    /// Why Herald disabled it; null when enabled or disabled by hand.
    pub disabled_reason: Option<String>,
    pub disabled_at: Option<DateTimeUtc>,
    /// Requests per minute this destination accepts; null: no limit.
    pub rate_limit_per_minute: Option<i32>,
    /// The token bucket behind the limit, shared by every replica: tokens left at
    /// `rate_refilled_at`. Null: full (never drawn from, or reset by a change of the limit).
    pub rate_tokens: Option<f64>,
    pub rate_refilled_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
