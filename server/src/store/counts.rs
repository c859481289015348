//! How many deliveries each destination has in each state, kept by the database itself
//! (`delivery_counts`, maintained by triggers on `deliveries`; see migration `m0008`), so a
//! `totalCount` or a destination's `deliveryCounts` reads a handful of rows instead of counting a
//! million. Triggers see every write, whoever makes it: the dispatcher, the API, the pruner, the
//! cascade from a deleted alert, or bulk SQL by an operator.
//!
//! SQLite has one writer at a time, so its triggers keep exactly one row per (destination, state)
//! up to date. PostgreSQL writers run side by side: updating a shared counter row would make every
//! transaction that touches a destination wait for the previous one's commit, so there the
//! triggers only append delta rows (one per destination and state a statement changed), and
//! [`compact`] folds them together now and then. Readers sum whatever rows there are, the same SQL
//! on both.

use std::collections::HashMap;

use sea_orm::{
    ConnectionTrait, DatabaseBackend, DatabaseConnection, FromQueryResult, Statement,
    TransactionTrait,
};

use super::StoreError;
use super::deliveries::{DeliveryFilter, DeliveryState};
use super::sql::Params;

#[derive(FromQueryResult)]
struct CountRow {
    destination_id: String,
    state: String,
    n: i64,
}

/// Counts by state for each of these destinations; a destination with no deliveries gets zeros.
pub async fn by_state(
    conn: &impl ConnectionTrait,
    destination_ids: &[String],
) -> Result<HashMap<String, Vec<(DeliveryState, u64)>>, StoreError> {
    let mut out: HashMap<String, Vec<(DeliveryState, u64)>> = destination_ids
        .iter()
        .map(|id| {
            (
                id.clone(),
                DeliveryState::ALL.iter().map(|s| (*s, 0)).collect(),
            )
        })
        .collect();
    let backend = conn.get_database_backend();
    // 500 ids a statement: well under SQLite's bound-parameter limit.
    for chunk in destination_ids.chunks(500) {
        let mut p = Params::new(backend);
        let list = p.list(chunk.iter().map(String::as_str));
        let rows = CountRow::find_by_statement(p.statement(format!(
            "SELECT destination_id, state, CAST(SUM(n) AS BIGINT) AS n FROM delivery_counts \
             WHERE destination_id IN ({list}) GROUP BY destination_id, state"
        )))
        .all(conn)
        .await?;
        for r in rows {
            let state = DeliveryState::parse(&r.state)?;
            if let Some(slot) = out
                .get_mut(&r.destination_id)
                .and_then(|v| v.iter_mut().find(|(s, _)| *s == state))
            {
                slot.1 = r.n.max(0) as u64;
            }
        }
    }
    Ok(out)
}

/// How many deliveries match `filter`, from the counts; `None` when the counts cannot say (a filter
/// by alert, which the caller counts itself: an alert has a handful of deliveries).
pub async fn total(
    conn: &impl ConnectionTrait,
    filter: &DeliveryFilter,
) -> Result<Option<u64>, StoreError> {
    if filter.alert_id.is_some() {
        return Ok(None);
    }
    let mut p = Params::new(conn.get_database_backend());
    let mut clauses = Vec::new();
    if let Some(d) = &filter.destination_id {
        clauses.push(format!("destination_id = {}", p.push(d.as_str())));
    }
    if let Some(s) = filter.state {
        clauses.push(format!("state = {}", p.push(s.as_str())));
    }
    let filter_sql = if clauses.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", clauses.join(" AND "))
    };
    #[derive(FromQueryResult)]
    struct Total {
        n: Option<i64>,
    }
    let row = Total::find_by_statement(p.statement(format!(
        "SELECT CAST(SUM(n) AS BIGINT) AS n FROM delivery_counts{filter_sql}"
    )))
    .one(conn)
    .await?;
    Ok(Some(row.and_then(|r| r.n).unwrap_or(0).max(0) as u64))
}

/// Folds PostgreSQL's delta rows into one row per destination and state; returns how many
/// (destination, state) pairs it folded. One replica at a time (an advisory lock; the others skip this round), so two never
/// fold the same rows. Rows written by transactions still open are not visible to it and stay for
/// the next round. Nothing to do on SQLite.
pub async fn compact(db: &DatabaseConnection) -> Result<u64, StoreError> {
    if db.get_database_backend() != DatabaseBackend::Postgres {
        return Ok(0);
    }
    let txn = db.begin().await?;
    #[derive(FromQueryResult)]
    struct Locked {
        locked: bool,
    }
    // The key is arbitrary but fixed: "counts" in ASCII.
    let locked = Locked::find_by_statement(Statement::from_string(
        DatabaseBackend::Postgres,
        "SELECT pg_try_advisory_xact_lock(99111117110116115) AS locked",
    ))
    .one(&txn)
    .await?
    .is_some_and(|l| l.locked);
    if !locked {
        return Ok(0);
    }
    let folded = txn
        .execute_unprepared(
            "WITH many AS ( \
                 SELECT destination_id, state FROM delivery_counts \
                 GROUP BY destination_id, state HAVING COUNT(*) > 1), \
             gone AS ( \
                 DELETE FROM delivery_counts c USING many m \
                 WHERE c.destination_id = m.destination_id AND c.state = m.state \
                 RETURNING c.destination_id, c.state, c.n) \
             INSERT INTO delivery_counts (destination_id, state, n) \
             SELECT destination_id, state, SUM(n) FROM gone GROUP BY destination_id, state",
        )
        .await?
        .rows_affected();
    txn.commit().await?;
    Ok(folded)
}

/// How often `herald serve` folds PostgreSQL's delta rows: at a few thousand deliveries a second
/// a reader then sums thousands of rows at most, not millions.
pub const COMPACT_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Runs [`compact`] every `every` until `stop` is cancelled (on PostgreSQL; on SQLite it returns
/// at once). A failed round is logged and the next one tries again: until then readers only sum
/// more rows.
pub fn spawn_compactor(
    db: DatabaseConnection,
    every: std::time::Duration,
    stop: tokio_util::sync::CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if db.get_database_backend() != DatabaseBackend::Postgres {
            return;
        }
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
            if let Err(e) = compact(&db).await {
                tracing::warn!(error = %e, "folding the delivery counts failed; retrying later");
            }
        }
    })
}
