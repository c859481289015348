//! Each attempt keeps its request: the URL it used (a destination's URL can change between
//! retries) and its headers with custom header values masked. The body is not copied here: it is
//! the alert's stored body, the same bytes for every attempt and re-send.
//!
//! Nullable columns, since attempts made before this migration never kept them; one ALTER TABLE
//! per column, as SQLite takes one change per statement.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum DeliveryAttempts {
    Table,
    Url,
    RequestHeaders,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for column in [DeliveryAttempts::Url, DeliveryAttempts::RequestHeaders] {
            m.alter_table(
                Table::alter()
                    .table(DeliveryAttempts::Table)
                    .add_column(text_null(column))
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for column in [DeliveryAttempts::Url, DeliveryAttempts::RequestHeaders] {
            m.alter_table(
                Table::alter()
                    .table(DeliveryAttempts::Table)
                    .drop_column(column)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}
