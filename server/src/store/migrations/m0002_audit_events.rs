//! The audit trail on any target: `audit_log` (destination changes only, with a JSON `detail` that
//! held non-secret values too) becomes `audit_events` (a target type and nullable target id, and
//! only the names of the changed fields). Existing rows are carried over under the new action
//! names, oldest first, so their order survives.
//!
//! A new table rather than ALTER TABLE: SQLite cannot drop NOT NULL from `destination_id`, and a
//! copy is the same SQL on both databases. It all runs inside the migrating transaction that
//! `Store::migrate` holds its lock in, so a crash leaves either the old table or the new one.

use sea_orm::{ConnectionTrait, FromQueryResult};
use sea_orm_migration::{prelude::*, schema::*};
use serde_json::Value;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    Id,
    At,
    Actor,
    Action,
    TargetType,
    TargetId,
    ChangedFields,
}

#[derive(DeriveIden)]
enum AuditLog {
    Table,
    Id,
    At,
    Actor,
    Action,
    DestinationId,
    Detail,
}

/// The fields a created destination has; what `destination.created` lists since this migration.
const DESTINATION_FIELDS: &[&str] = &[
    "displayName",
    "url",
    "severities",
    "alertTypes",
    "customHeaders",
    "enabled",
    "signingSecret",
];

/// Rows read from `audit_log` per round trip.
const BATCH: u64 = 500;

#[derive(Debug, FromQueryResult)]
struct OldRow {
    id: i64,
    action: String,
    detail: String,
}

/// The events one old row becomes: `(action, changed fields)`. An old update that flipped
/// `enabled` is split the way new updates are recorded: `destination.updated` for the other fields
/// (if any), then `destination.enabled`/`destination.disabled`.
fn translate(action: &str, detail: &str) -> Vec<(String, Vec<String>)> {
    let detail: Value = serde_json::from_str(detail).unwrap_or(Value::Null);
    let fields: Vec<String> = detail["fields"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|f| f.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let own = |fs: &[&str]| fs.iter().map(|f| (*f).to_owned()).collect::<Vec<_>>();
    match action {
        "destination.create" => vec![("destination.created".into(), own(DESTINATION_FIELDS))],
        "destination.delete" => vec![("destination.deleted".into(), vec![])],
        "destination.rotate_secret" => vec![(
            "destination.signing_secret_rotated".into(),
            own(&["signingSecret"]),
        )],
        "destination.update" => {
            let (enabled, others): (Vec<_>, Vec<_>) =
                fields.into_iter().partition(|f| f == "enabled");
            let mut out = Vec::new();
            if !others.is_empty() {
                out.push(("destination.updated".into(), others));
            }
            if !enabled.is_empty() {
                // `detail.enabled` is the value after the update.
                let action = if detail["enabled"].as_bool() == Some(false) {
                    "destination.disabled"
                } else {
                    "destination.enabled"
                };
                out.push((action.into(), own(&["enabled"])));
            }
            if out.is_empty() {
                out.push(("destination.updated".into(), vec![]));
            }
            out
        }
        // Nothing else was ever written; should a hand-made row exist, keep it under its own name.
        other => vec![(other.to_owned(), fields)],
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(AuditEvents::Table)
                .col(big_pk_auto(AuditEvents::Id))
                .col(timestamp_with_time_zone(AuditEvents::At))
                .col(string(AuditEvents::Actor))
                .col(string(AuditEvents::Action))
                .col(string(AuditEvents::TargetType))
                .col(string_null(AuditEvents::TargetId))
                .col(text(AuditEvents::ChangedFields))
                .to_owned(),
        )
        .await?;
        // `auditEvents` is newest first, by (at, id); each filter has an index that starts with it
        // and then gives that order, so a page is a range scan whatever the table's size.
        for (name, cols) in [
            ("audit_events_at", vec![AuditEvents::At, AuditEvents::Id]),
            (
                "audit_events_target",
                vec![AuditEvents::TargetId, AuditEvents::At, AuditEvents::Id],
            ),
            (
                "audit_events_action",
                vec![AuditEvents::Action, AuditEvents::At, AuditEvents::Id],
            ),
        ] {
            let mut index = Index::create();
            index.name(name).table(AuditEvents::Table);
            for col in cols {
                index.col(col);
            }
            m.create_index(index).await?;
        }

        let db = m.get_connection();
        let backend = m.get_database_backend();
        let mut last_id = 0i64;
        loop {
            let select = Query::select()
                .columns([AuditLog::Id, AuditLog::Action, AuditLog::Detail])
                .from(AuditLog::Table)
                .and_where(Expr::col(AuditLog::Id).gt(last_id))
                .order_by(AuditLog::Id, Order::Asc)
                .limit(BATCH)
                .to_owned();
            let rows = OldRow::find_by_statement(backend.build(&select))
                .all(db)
                .await?;
            let Some(last) = rows.last() else { break };
            last_id = last.id;
            for row in &rows {
                for (action, fields) in translate(&row.action, &row.detail) {
                    let fields = serde_json::to_string(&fields).expect("strings serialize");
                    // INSERT … SELECT copies `at` as the database stored it: no round trip through
                    // a client-side timestamp format.
                    let source = Query::select()
                        .column(AuditLog::At)
                        .column(AuditLog::Actor)
                        .expr(Expr::val(action))
                        .expr(Expr::val("destination"))
                        .column(AuditLog::DestinationId)
                        .expr(Expr::val(fields))
                        .from(AuditLog::Table)
                        .and_where(Expr::col(AuditLog::Id).eq(row.id))
                        .to_owned();
                    let insert = Query::insert()
                        .into_table(AuditEvents::Table)
                        .columns([
                            AuditEvents::At,
                            AuditEvents::Actor,
                            AuditEvents::Action,
                            AuditEvents::TargetType,
                            AuditEvents::TargetId,
                            AuditEvents::ChangedFields,
                        ])
                        .select_from(source)
                        .map_err(|e| DbErr::Migration(e.to_string()))?
                        .to_owned();
                    db.execute(&insert).await?;
                }
            }
        }
        m.drop_table(Table::drop().table(AuditLog::Table).to_owned())
            .await?;
        Ok(())
    }

    /// Back to `audit_log` with the destination events; they keep their new action names, and
    /// `detail` holds only `{"fields": [...]}` since the values were never kept.
    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(AuditLog::Table)
                .col(big_pk_auto(AuditLog::Id))
                .col(timestamp_with_time_zone(AuditLog::At))
                .col(string(AuditLog::Actor))
                .col(string(AuditLog::Action))
                .col(string(AuditLog::DestinationId))
                .col(text(AuditLog::Detail))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("audit_log_destination")
                .table(AuditLog::Table)
                .col(AuditLog::DestinationId)
                .col(AuditLog::Id)
                .to_owned(),
        )
        .await?;
        let db = m.get_connection();
        db.execute_unprepared(
            "INSERT INTO audit_log (at, actor, action, destination_id, detail) \
             SELECT at, actor, action, target_id, '{\"fields\":' || changed_fields || '}' \
             FROM audit_events WHERE target_type = 'destination' AND target_id IS NOT NULL \
             ORDER BY id",
        )
        .await?;
        m.drop_table(Table::drop().table(AuditEvents::Table).to_owned())
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::translate;

    #[test]
    fn old_updates_that_flip_enabled_split_like_new_ones() {
        let both = translate(
            "destination.update",
            r#"{"fields":["url","enabled"],"enabled":false,"url":"https://x/"}"#,
        );
        assert_eq!(
            both,
            vec![
                ("destination.updated".to_owned(), vec!["url".to_owned()]),
                (
                    "destination.disabled".to_owned(),
                    vec!["enabled".to_owned()]
                ),
            ]
        );
        let on = translate(
            "destination.update",
            r#"{"fields":["enabled"],"enabled":true}"#,
        );
        assert_eq!(
            on,
            vec![("destination.enabled".to_owned(), vec!["enabled".to_owned()])]
        );
    }

    #[test]
    fn old_actions_get_the_new_names() {
        assert_eq!(
            translate("destination.rotate_secret", r#"{"gracePeriodSeconds":60}"#),
            vec![(
                "destination.signing_secret_rotated".to_owned(),
                vec!["signingSecret".to_owned()]
            )]
        );
        assert_eq!(
            translate("destination.delete", "{}")[0].0,
            "destination.deleted"
        );
        assert_eq!(
            translate("destination.create", "{}")[0].0,
            "destination.created"
        );
        assert_eq!(translate("destination.create", "{}")[0].1.len(), 7);
    }
}
