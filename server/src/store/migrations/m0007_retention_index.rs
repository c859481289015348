//! An index for retention: finished deliveries by the time they finished, so the pruner reads the
//! oldest ones in order without scanning the table. Partial, like the queue's index (`m0001`):
//! it holds only SUCCEEDED and FAILED rows, and the pruner's query names the same states, which
//! is what lets SQLite and PostgreSQL use it.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.get_connection()
            .execute_unprepared(
                "CREATE INDEX deliveries_finished ON deliveries (updated_at) \
                 WHERE state IN ('SUCCEEDED', 'FAILED')",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.get_connection()
            .execute_unprepared("DROP INDEX deliveries_finished")
            .await?;
        Ok(())
    }
}
