//! The audit trail: one event per change made through the API or the command line, written in the
//! change's own transaction (a change that rolls back leaves no event, and no committed change
//! lacks one). An event names the fields that changed, never their values, so no secret can reach
//! it whatever a field holds.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect,
};

use super::entities::audit_event;
use super::{Page, StoreError, now};

/// Who is making a change: an API token's name, or the command line.
#[derive(Debug, Clone)]
pub struct Actor(pub String);

impl Actor {
    pub fn cli() -> Self {
        Actor("cli".into())
    }

    /// Herald itself, for changes no one asked for at that moment (an auto-disable).
    pub fn herald() -> Self {
        Actor("herald".into())
    }
}

/// What kind of thing an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetType {
    Destination,
    Delivery,
    Alert,
    ApiToken,
    EncryptionKey,
}

impl TargetType {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetType::Destination => "destination",
            TargetType::Delivery => "delivery",
            TargetType::Alert => "alert",
            TargetType::ApiToken => "api_token",
            TargetType::EncryptionKey => "encryption_key",
        }
    }
}

/// Every action the trail records: `<thing>.<past tense>`. The README's "Audit trail" section
/// lists them with their target and fields; keep the two in step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    DestinationCreated,
    /// Fields other than `enabled` changed; a flip of `enabled` is its own event.
    DestinationUpdated,
    DestinationEnabled,
    DestinationDisabled,
    DestinationDeleted,
    DestinationSigningSecretRotated,
    /// A delivery queued by `resendDelivery` or `resendAlert`; the target is the new delivery.
    DeliveryResent,
    /// `sendTestAlert`; the target is the destination.
    AlertTestSent,
    TokenCreated,
    TokenRevoked,
    EncryptionKeyRotated,
}

impl Action {
    pub const ALL: [Action; 11] = [
        Action::DestinationCreated,
        Action::DestinationUpdated,
        Action::DestinationEnabled,
        Action::DestinationDisabled,
        Action::DestinationDeleted,
        Action::DestinationSigningSecretRotated,
        Action::DeliveryResent,
        Action::AlertTestSent,
        Action::TokenCreated,
        Action::TokenRevoked,
        Action::EncryptionKeyRotated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::DestinationCreated => "destination.created",
            Action::DestinationUpdated => "destination.updated",
            Action::DestinationEnabled => "destination.enabled",
            Action::DestinationDisabled => "destination.disabled",
            Action::DestinationDeleted => "destination.deleted",
            Action::DestinationSigningSecretRotated => "destination.signing_secret_rotated",
            Action::DeliveryResent => "delivery.resent",
            Action::AlertTestSent => "alert.test_sent",
            Action::TokenCreated => "token.created",
            Action::TokenRevoked => "token.revoked",
            Action::EncryptionKeyRotated => "encryption_key.rotated",
        }
    }

    pub fn parse(s: &str) -> Option<Action> {
        Action::ALL.into_iter().find(|a| a.as_str() == s)
    }

    /// What the action's target is; fixed per action, so filters on either agree.
    pub fn target_type(self) -> TargetType {
        match self {
            Action::DestinationCreated
            | Action::DestinationUpdated
            | Action::DestinationEnabled
            | Action::DestinationDisabled
            | Action::DestinationDeleted
            | Action::DestinationSigningSecretRotated
            | Action::AlertTestSent => TargetType::Destination,
            Action::DeliveryResent => TargetType::Delivery,
            Action::TokenCreated | Action::TokenRevoked => TargetType::ApiToken,
            Action::EncryptionKeyRotated => TargetType::EncryptionKey,
        }
    }
}

/// Records one event. `conn` must be the change's own transaction.
pub(crate) async fn record(
    conn: &impl ConnectionTrait,
    actor: &Actor,
    action: Action,
    target_id: Option<&str>,
    changed_fields: &[&str],
) -> Result<(), StoreError> {
    audit_event::Entity::insert(audit_event::ActiveModel {
        at: Set(now()),
        actor: Set(actor.0.clone()),
        action: Set(action.as_str().to_owned()),
        target_type: Set(action.target_type().as_str().to_owned()),
        target_id: Set(target_id.map(str::to_owned)),
        changed_fields: Set(serde_json::to_string(changed_fields).expect("strings serialize")),
        ..Default::default()
    })
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

/// Records that the encryption key was rotated, as `encryption_key.rotated`. Call it with the
/// transaction that re-encrypts, so the event commits exactly when the rotation does. `key_id`
/// names the new key if keys have ids (never the key itself); `changed_fields` names what was
/// re-encrypted (e.g. `["signingSecret", "customHeaders"]`), never a value.
pub async fn record_encryption_key_rotated(
    conn: &impl ConnectionTrait,
    actor: &Actor,
    key_id: Option<&str>,
    changed_fields: &[&str],
) -> Result<(), StoreError> {
    record(
        conn,
        actor,
        Action::EncryptionKeyRotated,
        key_id,
        changed_fields,
    )
    .await
}

/// An event as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub target_type: String,
    pub target_id: Option<String>,
    pub changed_fields: Vec<String>,
}

impl TryFrom<audit_event::Model> for AuditEvent {
    type Error = StoreError;
    fn try_from(m: audit_event::Model) -> Result<Self, StoreError> {
        let changed_fields = serde_json::from_str(&m.changed_fields).map_err(|e| {
            StoreError::Corrupt(format!("changed fields of audit event {}: {e}", m.id))
        })?;
        Ok(AuditEvent {
            id: m.id,
            at: m.at,
            actor: m.actor,
            action: m.action,
            target_type: m.target_type,
            target_id: m.target_id,
            changed_fields,
        })
    }
}

#[derive(Debug, Default, Clone)]
pub struct AuditFilter {
    pub target_id: Option<String>,
    pub action: Option<Action>,
    pub since: Option<DateTime<Utc>>,
}

/// Where a page starts: just after the event at `(at, id)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditCursor {
    at: DateTime<Utc>,
    id: i64,
}

impl AuditCursor {
    pub fn of(e: &AuditEvent) -> Self {
        AuditCursor { at: e.at, id: e.id }
    }

    pub fn parse(s: &str) -> Option<Self> {
        let (at, id) = s.split_once('|')?;
        Some(AuditCursor {
            at: DateTime::parse_from_rfc3339(at).ok()?.with_timezone(&Utc),
            id: id.parse().ok()?,
        })
    }
}

impl std::fmt::Display for AuditCursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}|{}", self.at.to_rfc3339(), self.id)
    }
}

/// Newest first (by time, then id), `first` at a time after `after`.
pub async fn list(
    conn: &impl ConnectionTrait,
    filter: &AuditFilter,
    first: u64,
    after: Option<&AuditCursor>,
) -> Result<Page<AuditEvent>, StoreError> {
    use audit_event::Column;
    let mut cond = Condition::all();
    if let Some(t) = &filter.target_id {
        cond = cond.add(Column::TargetId.eq(t.as_str()));
    }
    if let Some(a) = filter.action {
        cond = cond.add(Column::Action.eq(a.as_str()));
    }
    if let Some(t) = filter.since {
        cond = cond.add(Column::At.gte(t));
    }
    let total_count = audit_event::Entity::find()
        .filter(cond.clone())
        .count(conn)
        .await?;
    if let Some(c) = after {
        cond = cond.add(
            Condition::any().add(Column::At.lt(c.at)).add(
                Condition::all()
                    .add(Column::At.eq(c.at))
                    .add(Column::Id.lt(c.id)),
            ),
        );
    }
    let rows = audit_event::Entity::find()
        .filter(cond)
        .order_by_desc(Column::At)
        .order_by_desc(Column::Id)
        .limit(first + 1)
        .all(conn)
        .await?;
    Page::from_rows(rows, first, total_count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn action_names_round_trip_and_are_unique() {
        let mut names: Vec<_> = Action::ALL.iter().map(|a| a.as_str()).collect();
        for a in Action::ALL {
            assert_eq!(Action::parse(a.as_str()), Some(a));
        }
        names.sort();
        names.dedup();
        assert_eq!(names.len(), Action::ALL.len());
        assert_eq!(Action::parse("destination.update"), None);
    }

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let c = AuditCursor {
            at: "2024-05-01T12:00:00.123456Z".parse().unwrap(),
            id: 42,
        };
        assert_eq!(AuditCursor::parse(&c.to_string()), Some(c));
        for bad in [
            "",
            "42",
            "x|1",
            "2024-05-01T12:00:00Z|x",
            "2024-05-01T12:00:00Z",
        ] {
            assert_eq!(AuditCursor::parse(bad), None, "{bad:?}");
        }
    }
}
