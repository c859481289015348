//! Deleting old history: finished deliveries, their attempts, and alerts, in small batches.
//!
//! An alert's history goes as a whole. A delivery is deleted only when it finished (SUCCEEDED or
//! FAILED) before the cutoff *and* every other delivery of its alert did too; an alert is deleted
//! once it was received before the cutoff and has no delivery left. So an alert with an open
//! delivery (PENDING or RETRYING), or one that was re-sent recently, keeps every row: its
//! deliveries' `resend_of` never points at a deleted row, and re-sending it still finds its
//! original delivery (same webhook id). "Finished" is `updated_at`: the last write to a delivery
//! is the one that ended it, and a finished delivery is never written again.
//!
//! Audit events are not pruned (they are the record of who did what, and hold no payload); they
//! keep the ids of deleted deliveries as plain text, with no foreign key.
//!
//! Several replicas may prune one PostgreSQL database at once: the alerts of a batch are locked
//! `FOR UPDATE SKIP LOCKED`, so two pruners share out the work instead of waiting on each other,
//! and every delete is conditional, so running one twice deletes nothing the second time. The
//! lock also closes the one race with writers: a re-send inserting a delivery for an alert that is
//! being pruned waits for the alert row (its foreign key check), then finds it gone and fails,
//! rather than the cascade deleting the new delivery.

use chrono::{DateTime, Utc};
use sea_orm::{
    ConnectionTrait, DatabaseBackend, DatabaseConnection, FromQueryResult, Statement, Value,
};

use super::{StoreError, begin_write};

/// What one batch (or a whole pass) deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub alerts: u64,
    pub deliveries: u64,
    pub attempts: u64,
}

impl Pruned {
    pub fn total(&self) -> u64 {
        self.alerts + self.deliveries + self.attempts
    }

    pub fn is_empty(&self) -> bool {
        self.total() == 0
    }
}

impl std::ops::AddAssign for Pruned {
    fn add_assign(&mut self, o: Pruned) {
        self.alerts += o.alerts;
        self.deliveries += o.deliveries;
        self.attempts += o.attempts;
    }
}

/// A delivery is prunable when it finished before the cutoff ($1) and no delivery of its alert is
/// open or finished since. `d` is the delivery's alias. The literal state list matches the
/// partial index `deliveries_finished` (m0007), which both databases then use.
const PRUNABLE: &str = "d.state IN ('SUCCEEDED', 'FAILED') AND d.updated_at < $1 \
    AND NOT EXISTS (SELECT 1 FROM deliveries o WHERE o.alert_id = d.alert_id \
        AND (o.state IN ('PENDING', 'RETRYING') OR o.updated_at >= $1))";

#[derive(Debug, FromQueryResult)]
struct IdRow {
    id: String,
}

#[derive(Debug, FromQueryResult)]
struct CandidateRow {
    id: String,
    alert_id: String,
}

/// `$first, $first+1, …` for `n` values.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn params(cutoff: DateTime<Utc>, ids: &[String]) -> Vec<Value> {
    let mut v: Vec<Value> = vec![cutoff.into()];
    v.extend(ids.iter().map(|id| Value::from(id.as_str())));
    v
}

/// What one batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Batch {
    pub pruned: Pruned,
    /// Another transaction (a pruner on another replica, a re-send) held every alert this batch
    /// picked: there may be more to delete once it is done.
    pub contended: bool,
}

impl Batch {
    /// Whether the pass should go on: it deleted something, or someone else held what it picked.
    pub fn more(&self) -> bool {
        !self.pruned.is_empty() || self.contended
    }
}

/// Deletes at most `batch` deliveries (with their attempts) and at most `batch` alerts that the
/// rules above let go, in one short transaction. Nothing deleted and nothing contended means there
/// is nothing left to prune before `cutoff`.
pub async fn prune_batch(
    db: &DatabaseConnection,
    cutoff: DateTime<Utc>,
    batch: u64,
) -> Result<Batch, StoreError> {
    let batch = batch.max(1);
    let backend = db.get_database_backend();
    let txn = begin_write(db).await?;

    // Oldest first, so an interrupted pass has taken the oldest history. Without statistics
    // SQLite prefers `deliveries_state` and sorts every finished row; name the index it must use.
    let hint = if backend == DatabaseBackend::Sqlite {
        "INDEXED BY deliveries_finished"
    } else {
        ""
    };
    let deliveries = CandidateRow::find_by_statement(Statement::from_sql_and_values(
        backend,
        format!(
            "SELECT d.id, d.alert_id FROM deliveries d {hint} WHERE {PRUNABLE} \
             ORDER BY d.updated_at LIMIT {batch}"
        ),
        [cutoff.into()],
    ))
    .all(&txn)
    .await?;
    let mut alert_ids: Vec<String> = deliveries.iter().map(|d| d.alert_id.clone()).collect();
    alert_ids.sort();
    alert_ids.dedup();
    // Alerts that have no delivery at all (routed nowhere, or the rest of a big one's history).
    // A scalar subquery, not NOT EXISTS: PostgreSQL turns NOT EXISTS into a hash anti join that
    // reads all of `deliveries`; this way both databases walk `alerts_received` from the oldest
    // and probe `deliveries_alert` per alert, and old alerts that are left are few once pruned.
    let room = batch.saturating_sub(alert_ids.len() as u64);
    if room > 0 {
        let bare = IdRow::find_by_statement(Statement::from_sql_and_values(
            backend,
            format!(
                "SELECT a.id FROM alerts a WHERE a.received_at < $1 \
                 AND (SELECT d.id FROM deliveries d WHERE d.alert_id = a.id LIMIT 1) IS NULL \
                 ORDER BY a.received_at LIMIT {room}"
            ),
            [cutoff.into()],
        ))
        .all(&txn)
        .await?;
        alert_ids.extend(bare.into_iter().map(|r| r.id));
        alert_ids.sort();
        alert_ids.dedup();
    }
    if alert_ids.is_empty() {
        txn.commit().await?;
        return Ok(Batch::default());
    }

    if backend == DatabaseBackend::Postgres {
        // In id order, so two pruners never wait on each other in a cycle; SKIP LOCKED leaves
        // alerts another pruner (or a re-send) holds to that transaction.
        let locked = IdRow::find_by_statement(Statement::from_sql_and_values(
            backend,
            format!(
                "SELECT id FROM alerts WHERE id IN ({}) ORDER BY id FOR UPDATE SKIP LOCKED",
                placeholders(1, alert_ids.len())
            ),
            alert_ids.iter().map(|id| Value::from(id.as_str())),
        ))
        .all(&txn)
        .await?;
        alert_ids = locked.into_iter().map(|r| r.id).collect();
        // The database's collation need not be byte order; the lookup below needs byte order.
        alert_ids.sort();
        if alert_ids.is_empty() {
            txn.commit().await?;
            return Ok(Batch {
                pruned: Pruned::default(),
                contended: true,
            });
        }
    }
    // SQLite: the IMMEDIATE transaction holds the write lock, so nothing changed since the
    // selects. PostgreSQL: a new statement sees what committed before the lock was granted, and
    // no delivery can be added to a locked alert; checking again settles both.
    let mut ids: Vec<String> = deliveries
        .into_iter()
        .filter(|d| alert_ids.binary_search(&d.alert_id).is_ok())
        .map(|d| d.id)
        .collect();
    if backend == DatabaseBackend::Postgres && !ids.is_empty() {
        ids = IdRow::find_by_statement(Statement::from_sql_and_values(
            backend,
            format!(
                "SELECT d.id FROM deliveries d WHERE d.id IN ({}) AND {PRUNABLE}",
                placeholders(2, ids.len())
            ),
            params(cutoff, &ids),
        ))
        .all(&txn)
        .await?
        .into_iter()
        .map(|r| r.id)
        .collect();
    }

    let mut pruned = Pruned::default();
    if !ids.is_empty() {
        let list = placeholders(1, ids.len());
        let values: Vec<Value> = ids.iter().map(|id| Value::from(id.as_str())).collect();
        // Attempts first (the cascade would delete them too, without counting them).
        pruned.attempts = txn
            .execute_raw(Statement::from_sql_and_values(
                backend,
                format!("DELETE FROM delivery_attempts WHERE delivery_id IN ({list})"),
                values.clone(),
            ))
            .await?
            .rows_affected();
        pruned.deliveries = txn
            .execute_raw(Statement::from_sql_and_values(
                backend,
                format!("DELETE FROM deliveries WHERE id IN ({list})"),
                values,
            ))
            .await?
            .rows_affected();
    }
    pruned.alerts = txn
        .execute_raw(Statement::from_sql_and_values(
            backend,
            format!(
                "DELETE FROM alerts WHERE id IN ({}) AND received_at < $1 \
                 AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.alert_id = alerts.id)",
                placeholders(2, alert_ids.len())
            ),
            params(cutoff, &alert_ids),
        ))
        .await?
        .rows_affected();
    txn.commit().await?;
    Ok(Batch {
        pruned,
        contended: false,
    })
}
