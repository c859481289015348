//! `destination_epoch`: a counter that every change to what routing and claims read of a
//! destination moves on, by trigger. The write paths keep those fields of all destinations in
//! memory (`store::snapshot`) and read one row instead of every destination, which at a thousand
//! destinations was 2–3 ms of SQLite's single writer per alert group and per claim, and on
//! PostgreSQL a thousand row locks per alert group.
//!
//! On PostgreSQL an alert group holds the counter's row `FOR SHARE` until it commits; a change to a
//! destination moves the counter in its own statement, so it waits for the alert groups that
//! routed by the old version, as it waited for their locks on every destination row before.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

/// The columns of `destinations` that `store::snapshot` holds. A change to any other column
/// (the token bucket, the failure count, the URL, secrets) leaves the epoch alone.
const WATCHED: &str =
    "display_name, enabled, severity_mask, alert_type_mask, log_types, rate_limit_per_minute";

const SQLITE_BUMP: &str = "UPDATE destination_epoch SET n = n + 1 WHERE id = 1;";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        let table = "CREATE TABLE destination_epoch ( \
                         id INTEGER PRIMARY KEY CHECK (id = 1), \
                         n BIGINT NOT NULL)";
        let script: Vec<String> = match db.get_database_backend() {
            DatabaseBackend::Postgres => vec![
                table.to_owned(),
                "INSERT INTO destination_epoch (id, n) VALUES (1, 0)".to_owned(),
                "CREATE FUNCTION destination_epoch_bump() RETURNS trigger LANGUAGE plpgsql AS $$ \
                 BEGIN UPDATE destination_epoch SET n = n + 1 WHERE id = 1; RETURN NULL; END $$"
                    .to_owned(),
                "CREATE TRIGGER destination_epoch_insert_delete AFTER INSERT OR DELETE \
                 ON destinations FOR EACH STATEMENT EXECUTE FUNCTION destination_epoch_bump()"
                    .to_owned(),
                format!(
                    "CREATE TRIGGER destination_epoch_update AFTER UPDATE OF {WATCHED} \
                     ON destinations FOR EACH STATEMENT EXECUTE FUNCTION destination_epoch_bump()"
                ),
            ],
            _ => vec![
                table.to_owned(),
                "INSERT INTO destination_epoch (id, n) VALUES (1, 0)".to_owned(),
                format!(
                    "CREATE TRIGGER destination_epoch_insert AFTER INSERT ON destinations \
                     BEGIN {SQLITE_BUMP} END"
                ),
                format!(
                    "CREATE TRIGGER destination_epoch_delete AFTER DELETE ON destinations \
                     BEGIN {SQLITE_BUMP} END"
                ),
                format!(
                    "CREATE TRIGGER destination_epoch_update AFTER UPDATE OF {WATCHED} \
                     ON destinations BEGIN {SQLITE_BUMP} END"
                ),
            ],
        };
        for statement in script {
            db.execute_unprepared(&statement).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        let script: &[&str] = match db.get_database_backend() {
            DatabaseBackend::Postgres => &[
                "DROP TRIGGER destination_epoch_insert_delete ON destinations",
                "DROP TRIGGER destination_epoch_update ON destinations",
                "DROP FUNCTION destination_epoch_bump()",
                "DROP TABLE destination_epoch",
            ],
            _ => &[
                "DROP TRIGGER destination_epoch_insert",
                "DROP TRIGGER destination_epoch_delete",
                "DROP TRIGGER destination_epoch_update",
                "DROP TABLE destination_epoch",
            ],
        };
        for statement in script {
            db.execute_unprepared(statement).await?;
        }
        Ok(())
    }
}
