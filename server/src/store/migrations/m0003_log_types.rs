//! Log types: a destination may receive only alerts from some log types (Panther's destination
//! form), and an alert may name the log types it came from. Both are JSON lists of names in a
//! text column; `[]` (every log type on a destination, none named on an alert) is what existing
//! rows mean, so it is the default and no row needs rewriting.
//!
//! One ALTER TABLE per column: SQLite takes a single alteration per statement.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Destinations {
    Table,
    LogTypes,
}

#[derive(DeriveIden)]
enum Alerts {
    Table,
    LogTypes,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Destinations::Table)
                .add_column(text(Destinations::LogTypes).default("[]"))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Alerts::Table)
                .add_column(text(Alerts::LogTypes).default("[]"))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(Alerts::Table)
                .drop_column(Alerts::LogTypes)
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(Destinations::Table)
                .drop_column(Destinations::LogTypes)
                .to_owned(),
        )
        .await
    }
}
