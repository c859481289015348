//! Destinations: where alerts go. Every write validates the whole resulting destination with the
//! shared rules before it touches the database, and writes its audit event in the same
//! transaction, so a rejected change leaves nothing behind.

use chrono::{DateTime, Utc};
use herald_domain::{
    AlertType, Severity, WireEnum, validate_alert_types, validate_auto_disable_after_failures,
    validate_custom_headers, validate_display_name, validate_log_types,
    validate_rate_limit_per_minute, validate_url,
};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait,
    DatabaseConnection, EntityTrait, IntoActiveModel, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use serde::{Deserialize, Serialize};

use super::alerts::{log_types_json, parse_log_types};
use super::audit::{self, Action, Actor};
use super::deliveries::Delivery;
use super::entities::{delivery, destination};
use super::error::is_unique_violation;
use super::secrets::{Key, Secrets, Slot};
use super::{Page, StoreError, ids, now};
use crate::signing;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomHeader {
    pub name: String,
    pub value: String,
}

impl herald_domain::HeaderInput for CustomHeader {
    fn name(&self) -> &str {
        &self.name
    }
    fn value(&self) -> &str {
        &self.value
    }
}

/// A destination with its secrets opened.
#[derive(Debug, Clone)]
pub struct Destination {
    pub id: String,
    pub display_name: String,
    pub url: String,
    pub severities: Vec<Severity>,
    pub alert_types: Vec<AlertType>,
    pub custom_headers: Vec<CustomHeader>,
    /// The log types routed here by severity; empty: every log type.
    pub log_types: Vec<String>,
    /// Requests per minute at most; `None`: no limit.
    pub rate_limit_per_minute: Option<i32>,
    pub enabled: bool,
    /// Consecutive failed deliveries that disable it; `None`: never.
    pub auto_disable_after_failures: Option<i32>,
    /// Why Herald disabled it (`None` when enabled, or disabled by hand).
    pub disabled_reason: Option<String>,
    /// When it was last disabled, by hand or by Herald; `None` while enabled.
    pub disabled_at: Option<DateTime<Utc>>,
    pub signing_secret: String,
    /// The secret before the last rotation and when it stops being used.
    pub previous_signing_secret: Option<(String, DateTime<Utc>)>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

fn slot<'a>(column: &'static str, id: &'a str) -> Slot<'a> {
    Slot {
        table: "destinations",
        column,
        row: id,
    }
}

fn open_headers(
    secrets: &Secrets,
    m: &destination::Model,
) -> Result<Vec<CustomHeader>, StoreError> {
    // The JSON error names the row only: its text could quote a header value.
    serde_json::from_str(&secrets.open(slot("custom_headers", &m.id), &m.custom_headers)?)
        .map_err(|_| StoreError::Corrupt(format!("custom headers of {} are not a JSON list", m.id)))
}

impl Destination {
    /// The destination in a row, its secrets opened.
    fn open(secrets: &Secrets, m: destination::Model) -> Result<Self, StoreError> {
        let headers = open_headers(secrets, &m)?;
        let previous = match (&m.previous_signing_secret, m.previous_secret_expires_at) {
            (Some(s), Some(until)) => Some((
                secrets.open(slot("previous_signing_secret", &m.id), s)?,
                until,
            )),
            _ => None,
        };
        Ok(Destination {
            severities: Severity::from_mask(m.severity_mask),
            alert_types: AlertType::from_mask(m.alert_type_mask),
            signing_secret: secrets.open(slot("signing_secret", &m.id), &m.signing_secret)?,
            previous_signing_secret: previous,
            custom_headers: headers,
            log_types: parse_log_types(&m.log_types, &format!("destination {}", m.id))?,
            rate_limit_per_minute: m.rate_limit_per_minute,
            id: m.id,
            display_name: m.display_name,
            url: m.url,
            enabled: m.enabled,
            auto_disable_after_failures: m.auto_disable_after_failures,
            disabled_reason: m.disabled_reason,
            disabled_at: m.disabled_at,
            created_at: m.created_at,
            updated_at: m.updated_at,
        })
    }
}

/// What a user gives to create a destination; `None` means "the default".
#[derive(Debug, Clone, Default)]
pub struct NewDestination {
    pub display_name: String,
    pub url: String,
    pub severities: Option<Vec<Severity>>,
    pub alert_types: Option<Vec<AlertType>>,
    pub custom_headers: Vec<CustomHeader>,
    /// Omitted or empty: every log type.
    pub log_types: Option<Vec<String>>,
    /// Omitted: no limit.
    pub rate_limit_per_minute: Option<i32>,
    pub enabled: Option<bool>,
    /// `None`: never auto-disable.
    pub auto_disable_after_failures: Option<i32>,
}

/// A partial update: only the fields that are `Some` change. `custom_headers` replaces the list.
#[derive(Debug, Clone, Default)]
pub struct DestinationPatch {
    pub display_name: Option<String>,
    pub url: Option<String>,
    pub severities: Option<Vec<Severity>>,
    pub alert_types: Option<Vec<AlertType>>,
    pub custom_headers: Option<Vec<CustomHeader>>,
    /// Replaces the list; `[]` receives every log type again.
    pub log_types: Option<Vec<String>>,
    /// `None`: unchanged; `Some(None)`: no limit any more; `Some(Some(n))`: the new limit.
    pub rate_limit_per_minute: Option<Option<i32>>,
    pub enabled: Option<bool>,
    /// `Some(None)` clears the threshold (never auto-disable); `None` leaves it.
    pub auto_disable_after_failures: Option<Option<i32>>,
}

fn name_key(display_name: &str) -> String {
    display_name.to_lowercase()
}

fn seal_headers(key: &Key, id: &str, headers: &[CustomHeader]) -> String {
    key.seal(
        slot("custom_headers", id),
        &serde_json::to_string(headers).expect("headers serialize"),
    )
}

/// Validates the fields a write sets, in the order the user reads them.
fn validate_fields(
    display_name: Option<&str>,
    url: Option<&str>,
    alert_types: Option<&[AlertType]>,
    headers: Option<&[CustomHeader]>,
    log_types: Option<&[String]>,
    auto_disable_after_failures: Option<i32>,
    rate_limit_per_minute: Option<i32>,
) -> Result<(), StoreError> {
    if let Some(name) = display_name {
        validate_display_name(name)?;
    }
    if let Some(url) = url {
        validate_url(url)?;
    }
    if let Some(types) = alert_types {
        validate_alert_types(types)?;
    }
    if let Some(headers) = headers {
        validate_custom_headers(headers)?;
    }
    if let Some(log_types) = log_types {
        validate_log_types(log_types)?;
    }
    if let Some(n) = auto_disable_after_failures {
        validate_auto_disable_after_failures(n.into())?;
    }
    if let Some(limit) = rate_limit_per_minute {
        validate_rate_limit_per_minute(limit.into())?;
    }
    Ok(())
}

fn map_write_error(e: sea_orm::DbErr, display_name: &str) -> StoreError {
    if is_unique_violation(&e) {
        StoreError::DuplicateDisplayName(display_name.to_owned())
    } else {
        e.into()
    }
}

/// The fields a new destination gets, all of which `destination.created` lists as changed.
const CREATED_FIELDS: &[&str] = &[
    "displayName",
    "url",
    "severities",
    "alertTypes",
    "customHeaders",
    "logTypes",
    "rateLimitPerMinute",
    "enabled",
    "autoDisableAfterFailures",
    "signingSecret",
];

pub async fn create(
    db: &DatabaseConnection,
    secrets: &Secrets,
    actor: &Actor,
    new: NewDestination,
) -> Result<Destination, StoreError> {
    let alert_types = new.alert_types.unwrap_or_else(|| AlertType::ALL.to_vec());
    let log_types = new.log_types.unwrap_or_default();
    validate_fields(
        Some(&new.display_name),
        Some(&new.url),
        Some(&alert_types),
        Some(&new.custom_headers),
        Some(&log_types),
        new.auto_disable_after_failures,
        new.rate_limit_per_minute,
    )?;
    let severities = new.severities.unwrap_or_else(|| Severity::ALL.to_vec());
    let at = now();
    let enabled = new.enabled.unwrap_or(true);
    let id = ids::destination();
    let txn = super::begin_write(db).await?;
    let key = secrets.sealing_key(&txn).await?;
    let row = destination::ActiveModel {
        custom_headers: Set(seal_headers(&key, &id, &new.custom_headers)),
        signing_secret: Set(key.seal(slot("signing_secret", &id), &signing::generate_secret())),
        id: Set(id),
        display_name_key: Set(name_key(&new.display_name)),
        display_name: Set(new.display_name.clone()),
        url: Set(new.url),
        severity_mask: Set(Severity::mask_of(&severities)),
        alert_type_mask: Set(AlertType::mask_of(&alert_types)),
        log_types: Set(log_types_json(&log_types)),
        enabled: Set(enabled),
        auto_disable_after_failures: Set(new.auto_disable_after_failures),
        consecutive_failures: Set(0),
        disabled_reason: Set(None),
        disabled_at: Set((!enabled).then_some(at)),
        rate_limit_per_minute: Set(new.rate_limit_per_minute),
        rate_tokens: Set(None),
        rate_refilled_at: Set(None),
        previous_signing_secret: Set(None),
        previous_secret_expires_at: Set(None),
        created_at: Set(at),
        updated_at: Set(at),
    };
    let model = destination::Entity::insert(row)
        .exec_with_returning(&txn)
        .await
        .map_err(|e| map_write_error(e, &new.display_name))?;
    let created = Destination::open(secrets, model)?;
    audit::record(
        &txn,
        actor,
        Action::DestinationCreated,
        Some(&created.id),
        CREATED_FIELDS,
    )
    .await?;
    txn.commit().await?;
    Ok(created)
}

/// Changes the fields the patch gives. The other replicas hear of the change on commit (`origin`
/// is this process's worker id), and of the deliveries it releases when it enables the
/// destination again.
pub async fn update(
    db: &DatabaseConnection,
    secrets: &Secrets,
    actor: &Actor,
    origin: &str,
    id: &str,
    patch: DestinationPatch,
) -> Result<Destination, StoreError> {
    validate_fields(
        patch.display_name.as_deref(),
        patch.url.as_deref(),
        patch.alert_types.as_deref(),
        patch.custom_headers.as_deref(),
        patch.log_types.as_deref(),
        patch.auto_disable_after_failures.flatten(),
        patch.rate_limit_per_minute.flatten(),
    )?;
    let txn = super::begin_write(db).await?;
    let current = find_model(&txn, id).await?.ok_or_else(|| not_found(id))?;
    let mut changed = Vec::new();
    let mut row = current.clone().into_active_model();
    if let Some(name) = patch.display_name.filter(|n| *n != current.display_name) {
        row.display_name_key = Set(name_key(&name));
        row.display_name = Set(name);
        changed.push("displayName");
    }
    if let Some(url) = patch.url.filter(|u| *u != current.url) {
        row.url = Set(url);
        changed.push("url");
    }
    if let Some(mask) = patch
        .severities
        .map(|s| Severity::mask_of(&s))
        .filter(|m| *m != current.severity_mask)
    {
        row.severity_mask = Set(mask);
        changed.push("severities");
    }
    if let Some(mask) = patch
        .alert_types
        .map(|t| AlertType::mask_of(&t))
        .filter(|m| *m != current.alert_type_mask)
    {
        row.alert_type_mask = Set(mask);
        changed.push("alertTypes");
    }
    if let Some(headers) = patch.custom_headers {
        // Compared opened: the same headers sealed again never give the same ciphertext.
        if headers != open_headers(secrets, &current)? {
            let key = secrets.sealing_key(&txn).await?;
            row.custom_headers = Set(seal_headers(&key, id, &headers));
            changed.push("customHeaders");
        }
    }
    if let Some(log_types) = patch.log_types
        && log_types != parse_log_types(&current.log_types, &format!("destination {id}"))?
    {
        row.log_types = Set(log_types_json(&log_types));
        changed.push("logTypes");
    }
    if let Some(threshold) = patch
        .auto_disable_after_failures
        .filter(|t| *t != current.auto_disable_after_failures)
    {
        row.auto_disable_after_failures = Set(threshold);
        changed.push("autoDisableAfterFailures");
    }
    if let Some(limit) = patch
        .rate_limit_per_minute
        .filter(|l| *l != current.rate_limit_per_minute)
    {
        row.rate_limit_per_minute = Set(limit);
        // A new limit starts with a full bucket of its own size; tokens counted against the old
        // one mean nothing at the new rate.
        row.rate_tokens = Set(None);
        row.rate_refilled_at = Set(None);
        changed.push("rateLimitPerMinute");
    }
    if let Some(enabled) = patch.enabled.filter(|e| *e != current.enabled) {
        row.enabled = Set(enabled);
        if enabled {
            // A fresh start: the reason no longer holds, and the failures before it do not count
            // towards the next auto-disable.
            row.disabled_reason = Set(None);
            row.disabled_at = Set(None);
            row.consecutive_failures = Set(0);
        } else {
            row.disabled_at = Set(Some(now()));
        }
        changed.push("enabled");
    }
    if changed.is_empty() {
        // Nothing to write: an identical update keeps updatedAt, so declarative clients that
        // re-apply the same state see no drift.
        txn.commit().await?;
        return Destination::open(secrets, current);
    }
    row.updated_at = Set(now());
    let display_name = match &row.display_name {
        sea_orm::ActiveValue::Set(n) | sea_orm::ActiveValue::Unchanged(n) => n.clone(),
        sea_orm::ActiveValue::NotSet => current.display_name.clone(),
    };
    let model = row
        .update(&txn)
        .await
        .map_err(|e| map_write_error(e, &display_name))?;
    let updated = Destination::open(secrets, model)?;
    // A flip of `enabled` is its own event (`destination.enabled`/`disabled`), so filtering on
    // either action finds every such change; the other fields, if any, are `destination.updated`.
    let others: Vec<&str> = changed
        .iter()
        .copied()
        .filter(|f| *f != "enabled")
        .collect();
    if !others.is_empty() {
        audit::record(&txn, actor, Action::DestinationUpdated, Some(id), &others).await?;
    }
    if changed.contains(&"enabled") {
        let action = if updated.enabled {
            Action::DestinationEnabled
        } else {
            Action::DestinationDisabled
        };
        audit::record(&txn, actor, action, Some(id), &["enabled"]).await?;
        if updated.enabled {
            // Its held deliveries are due already.
            super::notify::queue(&txn, origin).await?;
        }
    }
    super::notify::destinations(&txn, origin, &[id.to_owned()]).await?;
    txn.commit().await?;
    Ok(updated)
}

/// Deletes a destination. Its deliveries stay (they carry the label it had), and those still
/// waiting end as FAILED with the message `destination deleted`; they are returned, and the other
/// replicas hear of them on commit (`origin` is this process's worker id).
pub async fn delete(
    db: &DatabaseConnection,
    actor: &Actor,
    origin: &str,
    id: &str,
) -> Result<Vec<Delivery>, StoreError> {
    let txn = super::begin_write(db).await?;
    find_model(&txn, id).await?.ok_or_else(|| not_found(id))?;
    let at = now();
    // The row goes first: on PostgreSQL its trigger moves `destination_epoch`, which waits for
    // any alert transaction that routed by the old destinations (it holds that row FOR SHARE),
    // so the next statement sees their deliveries too.
    destination::Entity::delete_by_id(id.to_owned())
        .exec(&txn)
        .await?;
    let ended = delivery::Entity::update_many()
        .col_expr(delivery::Column::State, Expr::value("FAILED"))
        .col_expr(
            delivery::Column::Message,
            Expr::value("destination deleted"),
        )
        .col_expr(
            delivery::Column::NextAttemptAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(delivery::Column::UpdatedAt, Expr::value(at))
        .filter(delivery::Column::DestinationId.eq(id))
        .filter(delivery::Column::State.is_in(["PENDING", "RETRYING"]))
        .exec_with_returning(&txn)
        .await?
        .into_iter()
        .map(Delivery::try_from)
        .collect::<Result<Vec<_>, _>>()?;
    audit::record(&txn, actor, Action::DestinationDeleted, Some(id), &[]).await?;
    let ids: Vec<String> = ended.iter().map(|d| d.id.clone()).collect();
    super::notify::deliveries(&txn, origin, &ids).await?;
    txn.commit().await?;
    Ok(ended)
}

/// Issues a new signing secret. For `grace` after now the previous secret signs too, so receivers
/// can switch over without rejecting a delivery. The other replicas hear of it on commit.
pub async fn rotate_secret(
    db: &DatabaseConnection,
    secrets: &Secrets,
    actor: &Actor,
    origin: &str,
    id: &str,
    grace: chrono::Duration,
) -> Result<Destination, StoreError> {
    let txn = super::begin_write(db).await?;
    let current = find_model(&txn, id).await?.ok_or_else(|| not_found(id))?;
    let at = now();
    let key = secrets.sealing_key(&txn).await?;
    let mut row = current.clone().into_active_model();
    row.signing_secret = Set(key.seal(slot("signing_secret", id), &signing::generate_secret()));
    if grace > chrono::Duration::zero() {
        // Opened and sealed again: the associated data binds a sealed value to its column.
        let previous = secrets.open(slot("signing_secret", id), &current.signing_secret)?;
        row.previous_signing_secret = Set(Some(
            key.seal(slot("previous_signing_secret", id), &previous),
        ));
        row.previous_secret_expires_at = Set(Some(at + grace));
    } else {
        row.previous_signing_secret = Set(None);
        row.previous_secret_expires_at = Set(None);
    }
    row.updated_at = Set(at);
    let updated = Destination::open(secrets, row.update(&txn).await?)?;
    audit::record(
        &txn,
        actor,
        Action::DestinationSigningSecretRotated,
        Some(id),
        &["signingSecret"],
    )
    .await?;
    super::notify::destinations(&txn, origin, &[id.to_owned()]).await?;
    txn.commit().await?;
    Ok(updated)
}

/// Counts one request that does not wait for the rate limit (the synchronous test alert) against
/// the destination's bucket, in the caller's transaction, so queued deliveries leave room for it.
/// Nothing to do for a destination without a limit.
pub(crate) async fn draw_unconditional(
    conn: &impl ConnectionTrait,
    id: &str,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut select = destination::Entity::find_by_id(id.to_owned())
        .select_only()
        .columns([
            destination::Column::RateLimitPerMinute,
            destination::Column::RateTokens,
            destination::Column::RateRefilledAt,
        ]);
    if conn.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
        // The same lock a claim takes, so the two cannot both spend the same tokens.
        select = select.lock_exclusive();
    }
    let Some((Some(per_minute), tokens, refilled_at)) = select
        .into_tuple::<(Option<i32>, Option<f64>, Option<DateTime<Utc>>)>()
        .one(conn)
        .await?
    else {
        return Ok(());
    };
    let bucket = super::rate_limit::Bucket::new(per_minute);
    let left = bucket.after_unconditional(bucket.available(tokens, refilled_at, at));
    destination::Entity::update_many()
        .col_expr(destination::Column::RateTokens, Expr::value(left))
        .col_expr(destination::Column::RateRefilledAt, Expr::value(at))
        .filter(destination::Column::Id.eq(id))
        .exec(conn)
        .await?;
    Ok(())
}

fn not_found(id: &str) -> StoreError {
    StoreError::NotFound {
        kind: "destination",
        id: id.to_owned(),
    }
}

async fn find_model(
    conn: &impl ConnectionTrait,
    id: &str,
) -> Result<Option<destination::Model>, StoreError> {
    Ok(destination::Entity::find_by_id(id.to_owned())
        .one(conn)
        .await?)
}

/// A destination's display name, for the label of a delivery queued to it; needs no key.
pub(crate) async fn display_name(
    conn: &impl ConnectionTrait,
    id: &str,
) -> Result<Option<String>, StoreError> {
    Ok(destination::Entity::find_by_id(id.to_owned())
        .select_only()
        .column(destination::Column::DisplayName)
        .into_tuple::<String>()
        .one(conn)
        .await?)
}

/// The destinations with these ids that exist.
pub async fn get_many(
    conn: &impl ConnectionTrait,
    secrets: &Secrets,
    ids: &[String],
) -> Result<Vec<Destination>, StoreError> {
    destination::Entity::find()
        .filter(destination::Column::Id.is_in(ids.iter().cloned()))
        .all(conn)
        .await?
        .into_iter()
        .map(|m| Destination::open(secrets, m))
        .collect()
}

pub async fn get(
    conn: &impl ConnectionTrait,
    secrets: &Secrets,
    id: &str,
) -> Result<Option<Destination>, StoreError> {
    find_model(conn, id)
        .await?
        .map(|m| Destination::open(secrets, m))
        .transpose()
}

/// Destinations in creation order, `first` at a time after the cursor `after` (a destination id),
/// optionally only the one whose name matches `display_name` case-insensitively.
pub async fn list(
    conn: &impl ConnectionTrait,
    secrets: &Secrets,
    first: u64,
    after: Option<&str>,
    display_name: Option<&str>,
) -> Result<Page<Destination>, StoreError> {
    let mut filter = Condition::all();
    if let Some(name) = display_name {
        filter = filter.add(destination::Column::DisplayNameKey.eq(name_key(name)));
    }
    let total_count = destination::Entity::find()
        .filter(filter.clone())
        .count(conn)
        .await?;
    if let Some(after) = after {
        filter = filter.add(destination::Column::Id.gt(after));
    }
    let rows = destination::Entity::find()
        .filter(filter)
        .order_by_asc(destination::Column::Id)
        .limit(first + 1)
        .all(conn)
        .await?;
    let has_next_page = rows.len() as u64 > first;
    Ok(Page {
        items: rows
            .into_iter()
            .take(first as usize)
            .map(|m| Destination::open(secrets, m))
            .collect::<Result<_, _>>()?,
        has_next_page,
        total_count,
    })
}
