//! `destination_epoch` (SQLite): a counter that every change to what routing and claims read of a
//! destination moves on, by trigger. The write paths keep those fields of all destinations in
//! memory (`store::snapshot`) and read one row instead of every destination, which at a thousand
//! destinations was 2–3 ms of the single writer's time per alert group and per claim.
//!
//! PostgreSQL has none: there the accept locks the destination rows it routes by (`FOR SHARE`),
//! so it reads them every time, and replicas change destinations side by side without queueing on
//! one counter row.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The columns of `destinations` that `store::snapshot` holds. A change to any other column
/// (the token bucket, the failure count, the URL, secrets) leaves the epoch alone.
const WATCHED: &str =
    "display_name, enabled, severity_mask, alert_type_mask, log_types, rate_limit_per_minute";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        if db.get_database_backend() == DatabaseBackend::Postgres {
            return Ok(());
        }
        let bump = "UPDATE destination_epoch SET n = n + 1 WHERE id = 1;";
        for statement in [
            "CREATE TABLE destination_epoch ( \
                 id INTEGER PRIMARY KEY CHECK (id = 1), \
                 n INTEGER NOT NULL)"
                .to_owned(),
            "INSERT INTO destination_epoch (id, n) VALUES (1, 0)".to_owned(),
            format!(
                "CREATE TRIGGER destination_epoch_insert AFTER INSERT ON destinations BEGIN {bump} END"
            ),
            format!(
                "CREATE TRIGGER destination_epoch_delete AFTER DELETE ON destinations BEGIN {bump} END"
            ),
            format!(
                "CREATE TRIGGER destination_epoch_update AFTER UPDATE OF {WATCHED} ON destinations \
                 BEGIN {bump} END"
            ),
        ] {
            db.execute_unprepared(&statement).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        if db.get_database_backend() == DatabaseBackend::Postgres {
            return Ok(());
        }
        for statement in [
            "DROP TRIGGER destination_epoch_insert",
            "DROP TRIGGER destination_epoch_delete",
            "DROP TRIGGER destination_epoch_update",
            "DROP TABLE destination_epoch",
        ] {
            db.execute_unprepared(statement).await?;
        }
        Ok(())
    }
}
