//! Schema migrations. They run at every start (`herald serve`) and with `herald migrate`; see
//! `store::migrate` for how concurrent starts are serialized.

use sea_orm_migration::prelude::*;

mod m0001_initial;
mod m0002_audit_events;
mod m0003_log_types;
mod m0004_attempt_requests;
mod m0005_rate_limit;
mod m0006_auto_disable;
mod m0007_retention_index;
mod m0008_delivery_counts;
mod m0009_destination_epoch;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m0001_initial::Migration),
            Box::new(m0002_audit_events::Migration),
            Box::new(m0003_log_types::Migration),
            Box::new(m0004_attempt_requests::Migration),
            Box::new(m0005_rate_limit::Migration),
            Box::new(m0006_auto_disable::Migration),
            Box::new(m0007_retention_index::Migration),
            Box::new(m0008_delivery_counts::Migration),
            Box::new(m0009_destination_epoch::Migration),
        ]
    }
}

/// The migrations this binary knows that the database has not applied (their names), read
/// without writing anything: the readiness check calls it. Migrations applied by a newer binary
/// are no concern of this one, so a replica awaiting its upgrade stays ready.
pub async fn pending<C: ConnectionTrait>(db: &C) -> Result<Vec<String>, DbErr> {
    use sea_orm::FromQueryResult;
    #[derive(FromQueryResult)]
    struct Row {
        version: String,
    }
    let applied: std::collections::HashSet<String> =
        Row::find_by_statement(sea_orm::Statement::from_string(
            db.get_database_backend(),
            // sea-orm-migration's own table; its name is fixed (no custom name is set here).
            "SELECT version FROM seaql_migrations",
        ))
        .all(db)
        .await?
        .into_iter()
        .map(|r| r.version)
        .collect();
    Ok(Migrator::migrations()
        .iter()
        .map(|m| m.name().to_owned())
        .filter(|name| !applied.contains(name))
        .collect())
}
