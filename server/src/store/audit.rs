//! The audit log: one row per change to a destination, written in the change's own transaction.

use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait};
use serde_json::Value;

use super::entities::audit_log;
use super::{StoreError, now};

/// Who is making a change: an API token's name, or the command line.
#[derive(Debug, Clone)]
pub struct Actor(pub String);

impl Actor {
    pub fn cli() -> Self {
        Actor("cli".into())
    }
}

pub(crate) async fn record(
    conn: &impl ConnectionTrait,
    actor: &Actor,
    action: &str,
    destination_id: &str,
    detail: Value,
) -> Result<(), StoreError> {
    audit_log::Entity::insert(audit_log::ActiveModel {
        at: Set(now()),
        actor: Set(actor.0.clone()),
        action: Set(action.to_owned()),
        destination_id: Set(destination_id.to_owned()),
        detail: Set(detail.to_string()),
        ..Default::default()
    })
    .exec(conn)
    .await?;
    Ok(())
}

/// An audit entry as read back.
#[derive(Debug, Clone)]
pub struct AuditEntry {
    pub at: chrono::DateTime<chrono::Utc>,
    pub actor: String,
    pub action: String,
    pub destination_id: String,
    pub detail: Value,
}

pub async fn for_destination(
    conn: &impl ConnectionTrait,
    destination_id: &str,
) -> Result<Vec<AuditEntry>, StoreError> {
    use sea_orm::{ColumnTrait, QueryFilter, QueryOrder};
    let rows = audit_log::Entity::find()
        .filter(audit_log::Column::DestinationId.eq(destination_id))
        .order_by_asc(audit_log::Column::Id)
        .all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| AuditEntry {
            at: r.at,
            actor: r.actor,
            action: r.action,
            destination_id: r.destination_id,
            detail: serde_json::from_str(&r.detail).unwrap_or(Value::Null),
        })
        .collect())
}
