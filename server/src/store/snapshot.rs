//! What the write paths read of every destination: the fields routing decides by, whether it is
//! enabled, and whether it has a rate limit. An alert group reads them to route, and a claim on
//! SQLite to know which destinations may take work.
//!
//! They are kept in memory and read again only when `destination_epoch` (moved on by triggers
//! whenever one of these fields changes, from any process or replica; migration m0009) says so:
//! one row instead of every destination, read inside the transaction, so the copy used is exactly
//! what the database holds at that moment. At a thousand destinations the full read was 2–3 ms of
//! SQLite's single writer per alert group and per claim, and on PostgreSQL a thousand row locks
//! per alert group (BENCHMARKS.md).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use sea_orm::{
    ConnectionTrait, DatabaseBackend, EntityTrait, FromQueryResult, QueryOrder, QuerySelect,
    Statement,
};

use super::StoreError;
use super::alerts::parse_log_types;
use super::entities::destination;
use crate::dispatch::routing::RouteTarget;

/// Every destination as the write paths see it, at one moment.
#[derive(Debug, Default)]
pub struct Snapshot {
    /// `destination_epoch` when it was read.
    epoch: i64,
    /// Every destination, in id order.
    pub targets: Vec<RouteTarget>,
    /// Where each destination is in `targets`, by id.
    positions: HashMap<String, usize>,
    /// The destinations with a rate limit: only a claim draws from their token bucket, so their
    /// deliveries are never leased at insert, and claims read their bucket.
    pub rate_limited: HashSet<String>,
}

impl Snapshot {
    /// The destination with this id, if it exists.
    pub fn target(&self, id: &str) -> Option<&RouteTarget> {
        self.positions.get(id).map(|&i| &self.targets[i])
    }

    /// The enabled destinations without a rate limit, in id order.
    pub fn unlimited(&self) -> impl Iterator<Item = &str> {
        self.targets
            .iter()
            .filter(|t| t.enabled && !self.rate_limited.contains(&t.id))
            .map(|t| t.id.as_str())
    }

    /// Whether any enabled destination has a rate limit.
    pub fn any_limited_enabled(&self) -> bool {
        self.targets
            .iter()
            .any(|t| t.enabled && self.rate_limited.contains(&t.id))
    }
}

/// The last snapshot read; shared by every clone of a `Store`.
#[derive(Debug, Default)]
pub struct Snapshots {
    last: Mutex<Option<Arc<Snapshot>>>,
}

impl Snapshots {
    /// The copy last read, if any, without looking at the database: what an alert group builds
    /// its rows by before its transaction, where `current` then says whether it still holds.
    pub fn last(&self) -> Option<Arc<Snapshot>> {
        self.last.lock().expect("snapshot lock").clone()
    }

    /// The destinations as of now, read through `txn`, which must be the write transaction that
    /// acts on them.
    ///
    /// A destination cannot change or go between this read and the transaction's commit: on
    /// PostgreSQL the counter's row is held FOR SHARE until then, and every change to a
    /// destination moves the counter, so it waits (a deletion then sees the deliveries this
    /// transaction routed to it); on SQLite the transaction holds the write lock.
    pub async fn current(&self, txn: &impl ConnectionTrait) -> Result<Arc<Snapshot>, StoreError> {
        let epoch = epoch(txn).await?;
        self.at_epoch(txn, epoch).await
    }

    /// `current`, for a caller that read `destination_epoch` itself (with [`epoch_select`]) in
    /// a statement of its own, inside `txn`.
    pub async fn at_epoch(
        &self,
        txn: &impl ConnectionTrait,
        epoch: i64,
    ) -> Result<Arc<Snapshot>, StoreError> {
        if let Some(last) = self.last.lock().expect("snapshot lock").as_ref()
            && last.epoch == epoch
        {
            return Ok(last.clone());
        }
        let fresh = Arc::new(read(txn, epoch).await?);
        *self.last.lock().expect("snapshot lock") = Some(fresh.clone());
        Ok(fresh)
    }
}

/// The query that reads `destination_epoch` (column `n`), holding it on PostgreSQL until the
/// transaction ends (see [`Snapshots::current`]). It may stand as a subquery in FROM.
pub(crate) fn epoch_select(backend: DatabaseBackend) -> &'static str {
    if backend == DatabaseBackend::Postgres {
        "SELECT n FROM destination_epoch WHERE id = 1 FOR SHARE"
    } else {
        "SELECT n FROM destination_epoch WHERE id = 1"
    }
}

async fn epoch(conn: &impl ConnectionTrait) -> Result<i64, StoreError> {
    #[derive(FromQueryResult)]
    struct Row {
        n: i64,
    }
    let backend = conn.get_database_backend();
    let row = Row::find_by_statement(Statement::from_string(backend, epoch_select(backend)))
        .one(conn)
        .await?
        .ok_or_else(|| StoreError::Corrupt("destination_epoch has no row".into()))?;
    Ok(row.n)
}

async fn read(conn: &impl ConnectionTrait, epoch: i64) -> Result<Snapshot, StoreError> {
    let rows = destination::Entity::find()
        .select_only()
        .columns([
            destination::Column::Id,
            destination::Column::DisplayName,
            destination::Column::Enabled,
            destination::Column::SeverityMask,
            destination::Column::AlertTypeMask,
            destination::Column::LogTypes,
            destination::Column::RateLimitPerMinute,
        ])
        .order_by_asc(destination::Column::Id)
        .into_tuple::<(String, String, bool, i32, i32, String, Option<i32>)>()
        .all(conn)
        .await?;
    let mut snapshot = Snapshot {
        epoch,
        targets: Vec::with_capacity(rows.len()),
        positions: HashMap::with_capacity(rows.len()),
        rate_limited: HashSet::new(),
    };
    for (id, display_name, enabled, severity_mask, alert_type_mask, log_types, rate) in rows {
        if rate.is_some() {
            snapshot.rate_limited.insert(id.clone());
        }
        snapshot
            .positions
            .insert(id.clone(), snapshot.targets.len());
        snapshot.targets.push(RouteTarget {
            log_types: parse_log_types(&log_types, &format!("destination {id}"))?,
            id,
            display_name,
            enabled,
            severity_mask,
            alert_type_mask,
        });
    }
    Ok(snapshot)
}
