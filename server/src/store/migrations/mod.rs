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
        ]
    }
}
