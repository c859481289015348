//! A rate limit per destination, and the token bucket that enforces it. The bucket lives in the
//! destination's row, not in a worker's memory, so every replica draws from the same one: the
//! claim transaction that takes deliveries also takes their tokens (see `store::deliveries`).
//!
//! All nullable: no limit, and a bucket never drawn from (full). Existing rows need no rewrite.
//! One ALTER TABLE per column, as SQLite takes one change per statement.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Destinations {
    Table,
    RateLimitPerMinute,
    RateTokens,
    RateRefilledAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let columns = [
            integer_null(Destinations::RateLimitPerMinute),
            double_null(Destinations::RateTokens),
            timestamp_with_time_zone_null(Destinations::RateRefilledAt),
        ];
        for mut column in columns {
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
            Destinations::RateRefilledAt,
            Destinations::RateTokens,
            Destinations::RateLimitPerMinute,
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
