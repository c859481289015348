//! `delivery_counts`: deliveries per destination and state, kept by triggers on `deliveries`, so
//! totals and a destination's counts read a few rows instead of counting up to millions (see
//! `store::counts` for how each database keeps them and how they are read).
//!
//! The triggers are created before the existing rows are counted, in the migration's transaction:
//! on PostgreSQL `CREATE TRIGGER` locks out writers to `deliveries` until the commit, and on
//! SQLite the migration holds the write lock, so no delivery is counted twice or missed.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

const SQLITE_UP: &[&str] = &[
    "CREATE TABLE delivery_counts ( \
         destination_id TEXT NOT NULL, \
         state TEXT NOT NULL, \
         n INTEGER NOT NULL, \
         PRIMARY KEY (destination_id, state)) WITHOUT ROWID",
    // One writer at a time: each row changes its own counter in place.
    "CREATE TRIGGER delivery_counts_insert AFTER INSERT ON deliveries BEGIN \
         INSERT INTO delivery_counts (destination_id, state, n) \
         VALUES (NEW.destination_id, NEW.state, 1) \
         ON CONFLICT (destination_id, state) DO UPDATE SET n = n + 1; \
     END",
    "CREATE TRIGGER delivery_counts_update AFTER UPDATE OF state, destination_id ON deliveries \
     WHEN OLD.state IS NOT NEW.state OR OLD.destination_id IS NOT NEW.destination_id BEGIN \
         UPDATE delivery_counts SET n = n - 1 \
         WHERE destination_id = OLD.destination_id AND state = OLD.state; \
         INSERT INTO delivery_counts (destination_id, state, n) \
         VALUES (NEW.destination_id, NEW.state, 1) \
         ON CONFLICT (destination_id, state) DO UPDATE SET n = n + 1; \
     END",
    "CREATE TRIGGER delivery_counts_delete AFTER DELETE ON deliveries BEGIN \
         UPDATE delivery_counts SET n = n - 1 \
         WHERE destination_id = OLD.destination_id AND state = OLD.state; \
     END",
    "INSERT INTO delivery_counts (destination_id, state, n) \
     SELECT destination_id, state, COUNT(*) FROM deliveries GROUP BY destination_id, state",
];

const POSTGRES_UP: &[&str] = &[
    "CREATE TABLE delivery_counts ( \
         id BIGSERIAL PRIMARY KEY, \
         destination_id TEXT NOT NULL, \
         state TEXT NOT NULL, \
         n BIGINT NOT NULL)",
    "CREATE INDEX delivery_counts_destination ON delivery_counts (destination_id, state)",
    // Writers run side by side: a statement appends one delta row per (destination, state) it
    // changed, never updates a shared row (which would queue writers behind each other's commits).
    // Updates that leave the state alone (claims, leases) net to zero and append nothing.
    "CREATE FUNCTION delivery_counts_changed() RETURNS trigger LANGUAGE plpgsql AS $$ \
     BEGIN \
         IF TG_OP = 'INSERT' THEN \
             INSERT INTO delivery_counts (destination_id, state, n) \
             SELECT destination_id, state, COUNT(*) FROM new_rows GROUP BY destination_id, state; \
         ELSIF TG_OP = 'DELETE' THEN \
             INSERT INTO delivery_counts (destination_id, state, n) \
             SELECT destination_id, state, -COUNT(*) FROM old_rows GROUP BY destination_id, state; \
         ELSE \
             INSERT INTO delivery_counts (destination_id, state, n) \
             SELECT destination_id, state, SUM(d) FROM ( \
                 SELECT destination_id, state, -1 AS d FROM old_rows \
                 UNION ALL SELECT destination_id, state, 1 AS d FROM new_rows) changes \
             GROUP BY destination_id, state HAVING SUM(d) <> 0; \
         END IF; \
         RETURN NULL; \
     END $$",
    "CREATE TRIGGER delivery_counts_insert AFTER INSERT ON deliveries \
     REFERENCING NEW TABLE AS new_rows \
     FOR EACH STATEMENT EXECUTE FUNCTION delivery_counts_changed()",
    "CREATE TRIGGER delivery_counts_update AFTER UPDATE ON deliveries \
     REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows \
     FOR EACH STATEMENT EXECUTE FUNCTION delivery_counts_changed()",
    "CREATE TRIGGER delivery_counts_delete AFTER DELETE ON deliveries \
     REFERENCING OLD TABLE AS old_rows \
     FOR EACH STATEMENT EXECUTE FUNCTION delivery_counts_changed()",
    "INSERT INTO delivery_counts (destination_id, state, n) \
     SELECT destination_id, state, COUNT(*) FROM deliveries GROUP BY destination_id, state",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        let script = match db.get_database_backend() {
            DatabaseBackend::Postgres => POSTGRES_UP,
            _ => SQLITE_UP,
        };
        for statement in script {
            db.execute_unprepared(statement).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        let db = m.get_connection();
        for trigger in [
            "delivery_counts_insert",
            "delivery_counts_update",
            "delivery_counts_delete",
        ] {
            let sql = match db.get_database_backend() {
                DatabaseBackend::Postgres => format!("DROP TRIGGER {trigger} ON deliveries"),
                _ => format!("DROP TRIGGER {trigger}"),
            };
            db.execute_unprepared(&sql).await?;
        }
        if db.get_database_backend() == DatabaseBackend::Postgres {
            db.execute_unprepared("DROP FUNCTION delivery_counts_changed()")
                .await?;
        }
        db.execute_unprepared("DROP TABLE delivery_counts").await?;
        Ok(())
    }
}
