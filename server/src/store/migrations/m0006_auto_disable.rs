//! Auto-disable: a destination may name how many consecutive failed deliveries disable it, keeps
//! the running count beside it (updated in the transaction that records the results, so replicas
//! add to one number), and says why and when it was disabled. Existing rows never auto-disable,
//! count from zero and carry no reason, which is what the defaults give.
//!
//! One ALTER TABLE per column: SQLite takes a single alteration per statement.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Destinations {
    Table,
    AutoDisableAfterFailures,
    ConsecutiveFailures,
    DisabledReason,
    DisabledAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            integer_null(Destinations::AutoDisableAfterFailures),
            integer(Destinations::ConsecutiveFailures)
                .default(0)
                .to_owned(),
            text_null(Destinations::DisabledReason),
            timestamp_with_time_zone_null(Destinations::DisabledAt),
        ] {
            let mut column = column;
            m.alter_table(
                Table::alter()
                    .table(Destinations::Table)
                    .add_column(&mut column)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            Destinations::DisabledAt,
            Destinations::DisabledReason,
            Destinations::ConsecutiveFailures,
            Destinations::AutoDisableAfterFailures,
        ] {
            m.alter_table(
                Table::alter()
                    .table(Destinations::Table)
                    .drop_column(column)
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }
}
