//! Every table the control plane and the delivery engine need, with the indexes for the queries
//! they run at a million deliveries.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Destinations {
    Table,
    Id,
    DisplayName,
    DisplayNameKey,
    Url,
    SeverityMask,
    AlertTypeMask,
    CustomHeaders,
    Enabled,
    SigningSecret,
    PreviousSigningSecret,
    PreviousSecretExpiresAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Alerts {
    Table,
    Id,
    DetectionId,
    Title,
    Severity,
    AlertType,
    CreatedAt,
    ReceivedAt,
    Body,
    Routing,
}

#[derive(DeriveIden)]
enum Deliveries {
    Table,
    Id,
    AlertId,
    DestinationId,
    Label,
    State,
    WebhookId,
    ResendOf,
    Test,
    AttemptCount,
    NextAttemptAt,
    LeaseOwner,
    LeaseExpiresAt,
    StatusCode,
    ResponseBody,
    Message,
    CreatedAt,
    DispatchedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum DeliveryAttempts {
    Table,
    Id,
    DeliveryId,
    Number,
    StartedAt,
    DurationMs,
    StatusCode,
    ResponseBody,
    ResponseTruncated,
    ResponseHeaders,
    Error,
}

#[derive(DeriveIden)]
enum ApiTokens {
    Table,
    Id,
    Name,
    Role,
    TokenHash,
    CreatedAt,
    LastUsedAt,
}

#[derive(DeriveIden)]
enum AuditLog {
    Table,
    Id,
    At,
    Actor,
    Action,
    DestinationId,
    Detail,
}

#[derive(DeriveIden)]
enum ServerState {
    Table,
    Key,
    Value,
    UpdatedAt,
}

fn ts<T: IntoIden>(col: T) -> ColumnDef {
    timestamp_with_time_zone(col)
}

fn ts_null<T: IntoIden>(col: T) -> ColumnDef {
    timestamp_with_time_zone_null(col)
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Destinations::Table)
                .col(string(Destinations::Id).primary_key())
                .col(string(Destinations::DisplayName))
                .col(string_uniq(Destinations::DisplayNameKey))
                .col(text(Destinations::Url))
                .col(integer(Destinations::SeverityMask))
                .col(integer(Destinations::AlertTypeMask))
                .col(text(Destinations::CustomHeaders))
                .col(boolean(Destinations::Enabled))
                .col(text(Destinations::SigningSecret))
                .col(text_null(Destinations::PreviousSigningSecret))
                .col(ts_null(Destinations::PreviousSecretExpiresAt))
                .col(ts(Destinations::CreatedAt))
                .col(ts(Destinations::UpdatedAt))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Alerts::Table)
                .col(string(Alerts::Id).primary_key())
                .col(string(Alerts::DetectionId))
                .col(text(Alerts::Title))
                .col(string(Alerts::Severity))
                .col(string(Alerts::AlertType))
                .col(ts(Alerts::CreatedAt))
                .col(ts(Alerts::ReceivedAt))
                .col(text(Alerts::Body))
                .col(text(Alerts::Routing))
                .to_owned(),
        )
        .await?;
        // Alert lists are newest first, optionally filtered by severity.
        m.create_index(
            Index::create()
                .name("alerts_received")
                .table(Alerts::Table)
                .col(Alerts::ReceivedAt)
                .col(Alerts::Id)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("alerts_severity_received")
                .table(Alerts::Table)
                .col(Alerts::Severity)
                .col(Alerts::ReceivedAt)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(Deliveries::Table)
                .col(string(Deliveries::Id).primary_key())
                .col(string(Deliveries::AlertId))
                .col(string(Deliveries::DestinationId))
                .col(string(Deliveries::Label))
                .col(string(Deliveries::State))
                .col(string(Deliveries::WebhookId))
                .col(string_null(Deliveries::ResendOf))
                .col(boolean(Deliveries::Test))
                .col(integer(Deliveries::AttemptCount))
                .col(ts_null(Deliveries::NextAttemptAt))
                .col(string_null(Deliveries::LeaseOwner))
                .col(ts_null(Deliveries::LeaseExpiresAt))
                .col(integer_null(Deliveries::StatusCode))
                .col(text_null(Deliveries::ResponseBody))
                .col(text(Deliveries::Message))
                .col(ts(Deliveries::CreatedAt))
                .col(ts_null(Deliveries::DispatchedAt))
                .col(ts(Deliveries::UpdatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .name("deliveries_alert")
                        .from(Deliveries::Table, Deliveries::AlertId)
                        .to(Alerts::Table, Alerts::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("deliveries_alert")
                .table(Deliveries::Table)
                .col(Deliveries::AlertId)
                .to_owned(),
        )
        .await?;
        // A destination's deliveries, newest first; and filtered by state (and counted per state).
        m.create_index(
            Index::create()
                .name("deliveries_destination")
                .table(Deliveries::Table)
                .col(Deliveries::DestinationId)
                .col(Deliveries::Id)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("deliveries_destination_state")
                .table(Deliveries::Table)
                .col(Deliveries::DestinationId)
                .col(Deliveries::State)
                .col(Deliveries::Id)
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("deliveries_state")
                .table(Deliveries::Table)
                .col(Deliveries::State)
                .col(Deliveries::Id)
                .to_owned(),
        )
        .await?;
        // Partial indexes are the same SQL on SQLite and PostgreSQL; sea-query has no builder for
        // them. The queue index holds only unfinished deliveries, so claiming stays an index range
        // scan however much history piles up.
        let db = m.get_connection();
        db.execute_unprepared(
            "CREATE INDEX deliveries_due ON deliveries (next_attempt_at) \
             WHERE state IN ('PENDING', 'RETRYING')",
        )
        .await?;
        // Claims name the destinations they may take work for: one range per destination.
        db.execute_unprepared(
            "CREATE INDEX deliveries_due_by_destination ON deliveries (destination_id, next_attempt_at) \
             WHERE state IN ('PENDING', 'RETRYING')",
        )
        .await?;
        // One original delivery per alert and destination; re-sends and test alerts are extra rows.
        db.execute_unprepared(
            "CREATE UNIQUE INDEX deliveries_alert_destination ON deliveries (alert_id, destination_id) \
             WHERE resend_of IS NULL",
        )
        .await?;

        m.create_table(
            Table::create()
                .table(DeliveryAttempts::Table)
                .col(big_pk_auto(DeliveryAttempts::Id))
                .col(string(DeliveryAttempts::DeliveryId))
                .col(integer(DeliveryAttempts::Number))
                .col(ts(DeliveryAttempts::StartedAt))
                .col(integer(DeliveryAttempts::DurationMs))
                .col(integer_null(DeliveryAttempts::StatusCode))
                .col(text_null(DeliveryAttempts::ResponseBody))
                .col(boolean(DeliveryAttempts::ResponseTruncated))
                .col(text_null(DeliveryAttempts::ResponseHeaders))
                .col(text_null(DeliveryAttempts::Error))
                .foreign_key(
                    ForeignKey::create()
                        .name("delivery_attempts_delivery")
                        .from(DeliveryAttempts::Table, DeliveryAttempts::DeliveryId)
                        .to(Deliveries::Table, Deliveries::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("delivery_attempts_number")
                .table(DeliveryAttempts::Table)
                .col(DeliveryAttempts::DeliveryId)
                .col(DeliveryAttempts::Number)
                .unique()
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(ApiTokens::Table)
                .col(string(ApiTokens::Id).primary_key())
                .col(string_uniq(ApiTokens::Name))
                .col(string(ApiTokens::Role))
                .col(string_uniq(ApiTokens::TokenHash))
                .col(ts(ApiTokens::CreatedAt))
                .col(ts_null(ApiTokens::LastUsedAt))
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(AuditLog::Table)
                .col(big_pk_auto(AuditLog::Id))
                .col(ts(AuditLog::At))
                .col(string(AuditLog::Actor))
                .col(string(AuditLog::Action))
                .col(string(AuditLog::DestinationId))
                .col(text(AuditLog::Detail))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("audit_log_destination")
                .table(AuditLog::Table)
                .col(AuditLog::DestinationId)
                .col(AuditLog::Id)
                .to_owned(),
        )
        .await?;

        m.create_table(
            Table::create()
                .table(ServerState::Table)
                .col(string(ServerState::Key).primary_key())
                .col(text(ServerState::Value))
                .col(ts(ServerState::UpdatedAt))
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "server_state",
            "audit_log",
            "api_tokens",
            "delivery_attempts",
            "deliveries",
            "alerts",
            "destinations",
        ] {
            m.drop_table(Table::drop().table(Alias::new(table)).to_owned())
                .await?;
        }
        Ok(())
    }
}
