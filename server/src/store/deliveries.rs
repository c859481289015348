//! Deliveries and their attempts: the queue. A delivery row carries its state, the time of its next
//! attempt and a lease; workers claim due rows in batches and write results back in batches.

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseBackend, DatabaseConnection, EntityTrait,
    FromQueryResult, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Statement, Value,
};
use serde_json::Value as Json;

use super::audit::{self, Action, Actor};
use super::entities::{alert, delivery, delivery_attempt, destination};
use super::held::{HeldCounts, HeldGuard};
use super::rate_limit::Bucket;
use super::sql::{Params, execute_all};
use super::{Page, StoreError, ids, now};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryState {
    /// Not attempted yet.
    Pending,
    /// Failed at least once; another attempt is scheduled.
    Retrying,
    Succeeded,
    /// Final: retries used up, a failed test alert, or the destination was deleted.
    Failed,
}

impl DeliveryState {
    pub const ALL: [DeliveryState; 4] = [
        DeliveryState::Pending,
        DeliveryState::Retrying,
        DeliveryState::Succeeded,
        DeliveryState::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "PENDING",
            DeliveryState::Retrying => "RETRYING",
            DeliveryState::Succeeded => "SUCCEEDED",
            DeliveryState::Failed => "FAILED",
        }
    }

    pub fn parse(s: &str) -> Result<Self, StoreError> {
        Self::ALL
            .into_iter()
            .find(|v| v.as_str() == s)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown delivery state {s:?}")))
    }

    pub fn is_final(self) -> bool {
        matches!(self, DeliveryState::Succeeded | DeliveryState::Failed)
    }
}

/// The SQL list of unfinished states, for queries written by hand.
pub(crate) const OPEN_STATES: &str = "('PENDING', 'RETRYING')";

#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: String,
    pub alert_id: String,
    pub destination_id: String,
    pub label: String,
    pub state: DeliveryState,
    pub webhook_id: String,
    pub resend_of: Option<String>,
    pub test: bool,
    pub attempt_count: i32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub lease_owner: Option<String>,
    pub status_code: Option<i32>,
    pub response_body: Option<String>,
    pub message: String,
    pub created_at: DateTime<Utc>,
    pub dispatched_at: Option<DateTime<Utc>>,
    pub updated_at: DateTime<Utc>,
}

impl TryFrom<delivery::Model> for Delivery {
    type Error = StoreError;
    fn try_from(m: delivery::Model) -> Result<Self, StoreError> {
        Ok(Delivery {
            state: DeliveryState::parse(&m.state)?,
            id: m.id,
            alert_id: m.alert_id,
            destination_id: m.destination_id,
            label: m.label,
            webhook_id: m.webhook_id,
            resend_of: m.resend_of,
            test: m.test,
            attempt_count: m.attempt_count,
            next_attempt_at: m.next_attempt_at,
            lease_owner: m.lease_owner,
            status_code: m.status_code,
            response_body: m.response_body,
            message: m.message,
            created_at: m.created_at,
            dispatched_at: m.dispatched_at,
            updated_at: m.updated_at,
        })
    }
}

#[derive(Debug, Clone)]
pub struct Attempt {
    pub number: i32,
    pub started_at: DateTime<Utc>,
    pub duration_ms: i32,
    pub status_code: Option<i32>,
    pub response_body: Option<String>,
    pub response_truncated: bool,
    pub response_headers: Option<Json>,
    pub error: Option<String>,
    /// The URL used; a destination's URL can change between attempts.
    pub url: Option<String>,
    /// The request headers by lower-case name, custom header values already masked.
    pub request_headers: Option<Json>,
}

impl From<delivery_attempt::Model> for Attempt {
    fn from(m: delivery_attempt::Model) -> Self {
        Attempt {
            number: m.number,
            started_at: m.started_at,
            duration_ms: m.duration_ms,
            status_code: m.status_code,
            response_body: m.response_body,
            response_truncated: m.response_truncated,
            response_headers: m
                .response_headers
                .and_then(|h| serde_json::from_str(&h).ok()),
            error: m.error,
            url: m.url,
            request_headers: m
                .request_headers
                .and_then(|h| serde_json::from_str(&h).ok()),
        }
    }
}

/// A new delivery's row: queued, not yet attempted, due at `at`.
pub(crate) fn new_model(
    alert_id: &str,
    destination_id: &str,
    label: &str,
    webhook_id: String,
    resend_of: Option<String>,
    test: bool,
    at: DateTime<Utc>,
) -> delivery::Model {
    delivery::Model {
        id: ids::delivery(),
        alert_id: alert_id.to_owned(),
        destination_id: destination_id.to_owned(),
        label: label.to_owned(),
        state: DeliveryState::Pending.as_str().to_owned(),
        webhook_id,
        resend_of,
        test,
        attempt_count: 0,
        next_attempt_at: Some(at),
        lease_owner: None,
        lease_expires_at: None,
        status_code: None,
        response_body: None,
        message: String::new(),
        created_at: at,
        dispatched_at: None,
        updated_at: at,
    }
}

/// One multi-row INSERT of delivery rows, every column given.
pub(crate) fn insert_statement<'a>(
    backend: DatabaseBackend,
    rows: impl Iterator<Item = &'a delivery::Model>,
) -> Statement {
    let mut p = Params::new(backend);
    let values = p.table(rows.map(|m| -> [Value; 18] {
        [
            m.id.as_str().into(),
            m.alert_id.as_str().into(),
            m.destination_id.as_str().into(),
            m.label.as_str().into(),
            m.state.as_str().into(),
            m.webhook_id.as_str().into(),
            m.resend_of.clone().into(),
            m.test.into(),
            m.attempt_count.into(),
            m.next_attempt_at.into(),
            m.lease_owner.clone().into(),
            m.lease_expires_at.into(),
            m.status_code.into(),
            m.response_body.clone().into(),
            m.message.as_str().into(),
            m.created_at.into(),
            m.dispatched_at.into(),
            m.updated_at.into(),
        ]
    }));
    p.statement(format!(
        "INSERT INTO deliveries ({DELIVERY_COLUMNS}) {values}"
    ))
}

/// Rows per multi-row INSERT: well under SQLite's 32,766 bound parameters for any of our tables.
pub(crate) const INSERT_CHUNK: usize = 500;

pub async fn get(conn: &impl ConnectionTrait, id: &str) -> Result<Option<Delivery>, StoreError> {
    delivery::Entity::find_by_id(id.to_owned())
        .one(conn)
        .await?
        .map(Delivery::try_from)
        .transpose()
}

/// The deliveries with these ids that exist, in one query per 500 ids (a replica reads what another
/// one announced it changed).
pub async fn get_many(
    conn: &impl ConnectionTrait,
    ids: &[String],
) -> Result<Vec<Delivery>, StoreError> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(INSERT_CHUNK) {
        for m in delivery::Entity::find()
            .filter(delivery::Column::Id.is_in(chunk.iter().cloned()))
            .order_by_asc(delivery::Column::Id)
            .all(conn)
            .await?
        {
            out.push(Delivery::try_from(m)?);
        }
    }
    Ok(out)
}

/// Every delivery of an alert, oldest first.
pub async fn for_alert(
    conn: &impl ConnectionTrait,
    alert_id: &str,
) -> Result<Vec<Delivery>, StoreError> {
    delivery::Entity::find()
        .filter(delivery::Column::AlertId.eq(alert_id))
        .order_by_asc(delivery::Column::Id)
        .all(conn)
        .await?
        .into_iter()
        .map(Delivery::try_from)
        .collect()
}

#[derive(Debug, Default, Clone)]
pub struct DeliveryFilter {
    pub destination_id: Option<String>,
    pub alert_id: Option<String>,
    pub state: Option<DeliveryState>,
}

/// Newest first; the cursor is a delivery id (ids sort by creation time). `with_total`: whether
/// the page needs `total_count` (0 when not): a client that does not ask for it pays nothing.
pub async fn list(
    conn: &impl ConnectionTrait,
    filter: &DeliveryFilter,
    first: u64,
    after: Option<&str>,
    with_total: bool,
) -> Result<Page<Delivery>, StoreError> {
    let mut cond = Condition::all();
    if let Some(d) = &filter.destination_id {
        cond = cond.add(delivery::Column::DestinationId.eq(d.as_str()));
    }
    if let Some(a) = &filter.alert_id {
        cond = cond.add(delivery::Column::AlertId.eq(a.as_str()));
    }
    if let Some(s) = filter.state {
        cond = cond.add(delivery::Column::State.eq(s.as_str()));
    }
    let total_count = if !with_total {
        0
    } else if let Some(n) = super::counts::total(conn, filter).await? {
        // From the maintained counts: a few rows instead of up to every delivery.
        n
    } else {
        // Filtered by alert: a handful of rows through `deliveries_alert`.
        delivery::Entity::find()
            .filter(cond.clone())
            .count(conn)
            .await?
    };
    if let Some(after) = after {
        cond = cond.add(delivery::Column::Id.lt(after));
    }
    let rows = delivery::Entity::find()
        .filter(cond)
        .order_by_desc(delivery::Column::Id)
        .limit(first + 1)
        .all(conn)
        .await?;
    Page::from_rows(rows, first, total_count)
}

/// Up to this many destinations are named in a claim; past it the claim excludes instead.
const MAX_CLAIM_LIST: usize = 100;

/// A claimed delivery with what an attempt needs: the exact body.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub delivery: Delivery,
    pub body: String,
}

/// What a claim took, and when a rate-limited destination it had to leave out next has a token:
/// an idle worker need not look again before then for that destination's sake.
#[derive(Debug, Default)]
pub struct Claim {
    pub claimed: Vec<Claimed>,
    pub throttled_until: Option<DateTime<Utc>>,
    /// The gate `held` was read under: drop it once `claimed` is counted as the worker's (see
    /// `store::held`).
    pub held_gate: Option<HeldGuard>,
}

/// A rate-limited destination's id, limit and bucket (tokens left, when).
type LimitedRow = (String, Option<i32>, Option<f64>, Option<DateTime<Utc>>);

/// A destination that may take work in this claim, and how much at most.
struct Eligible {
    id: String,
    cap: usize,
}

/// Claims up to `limit` due deliveries for `worker`, in one transaction on the store's writer: at
/// most `per_destination` for any one destination, counting the ones the worker already holds for
/// it (`held`, read once the transaction has begun); none for destinations in `skip_destinations` (those already at their in-flight
/// bound) or for disabled destinations, whose deliveries wait.
///
/// A rate-limited destination gets no more than its token bucket holds (`store::rate_limit`),
/// and the tokens are taken in this transaction: the bucket is in the destination's row, which
/// PostgreSQL locks FOR UPDATE here (SQLite has one writer), so replicas claiming side by side
/// draw from one bucket and the limit holds for the destination as a whole. Its deliveries over
/// the rate are simply not claimed: they stay due, unattempted, and other destinations' claims
/// go on around them.
///
/// The lease is the next attempt time itself: a claimed row's `next_attempt_at` moves to the end
/// of the lease, so a worker that dies simply leaves rows that fall due again when the lease
/// expires, and the queue index stays the one on `next_attempt_at`.
pub async fn claim_due(
    store: &super::Store,
    worker: &str,
    limit: usize,
    per_destination: usize,
    held: &HeldCounts,
    lease: Duration,
    skip_destinations: &[String],
) -> Result<Claim, StoreError> {
    let db = store.writer();
    let backend = db.get_database_backend();
    let txn = super::begin_write(db).await?;
    let (held, held_gate) = held.read().await;
    let room = |id: &str| per_destination.saturating_sub(held.get(id).copied().unwrap_or(0));
    let at = now();
    let lease_end = at + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::minutes(5));
    let (unlimited, any_limited): (Vec<String>, bool) = if backend == DatabaseBackend::Postgres {
        // Not the snapshot: on PostgreSQL reading it holds off every change to a destination
        // until the commit, which a claim has no need for.
        let ids = destination::Entity::find()
            .select_only()
            .column(destination::Column::Id)
            .filter(destination::Column::Enabled.eq(true))
            .filter(destination::Column::RateLimitPerMinute.is_null())
            .into_tuple::<String>()
            .all(&txn)
            .await?;
        (ids, true)
    } else {
        let snapshot = store.snapshots().current(&txn).await?;
        (
            snapshot.unlimited().map(str::to_owned).collect(),
            snapshot.any_limited_enabled(),
        )
    };
    let mut limited_query = destination::Entity::find()
        .select_only()
        .columns([
            destination::Column::Id,
            destination::Column::RateLimitPerMinute,
            destination::Column::RateTokens,
            destination::Column::RateRefilledAt,
        ])
        .filter(destination::Column::Enabled.eq(true))
        .filter(destination::Column::RateLimitPerMinute.is_not_null())
        // Locked in id order, the order `count_failures` locks them in too, so replicas'
        // claims and result writes queue behind each other instead of deadlocking.
        .order_by_asc(destination::Column::Id);
    if backend == DatabaseBackend::Postgres {
        // Waits for another replica's claim of the same destinations, then reads the bucket as
        // that claim left it.
        limited_query = limited_query.lock_exclusive();
    }
    // The buckets change with every claim: always read, but only when there are any.
    let limited: Vec<LimitedRow> = if any_limited {
        limited_query.into_tuple().all(&txn).await?
    } else {
        Vec::new()
    };
    let mut throttled_until: Option<DateTime<Utc>> = None;
    let mut buckets: HashMap<String, (Bucket, f64)> = HashMap::new();
    let mut eligible: Vec<Eligible> = Vec::new();
    for (id, per_minute, tokens, refilled_at) in limited {
        if skip_destinations.contains(&id) {
            continue;
        }
        let bucket = Bucket::new(per_minute.unwrap_or(1));
        let available = bucket.available(tokens, refilled_at, at);
        let budget = Bucket::budget(available);
        if budget == 0 {
            let next = bucket.next_token_at(available, at);
            throttled_until = Some(throttled_until.map_or(next, |t| t.min(next)));
            continue;
        }
        eligible.push(Eligible {
            id: id.clone(),
            cap: budget.min(room(&id)),
        });
        buckets.insert(id, (bucket, available));
    }
    let limited_arms = eligible.len();
    let unlimited: Vec<String> = unlimited
        .into_iter()
        .filter(|d| !skip_destinations.contains(d))
        .collect();
    let list_unlimited = limited_arms + unlimited.len() <= MAX_CLAIM_LIST;
    if list_unlimited {
        eligible.extend(
            unlimited
                .iter()
                .map(|id| Eligible {
                    id: id.clone(),
                    cap: room(id),
                })
                .filter(|e| e.cap > 0),
        );
    }
    if eligible.is_empty() && (list_unlimited || unlimited.is_empty()) {
        txn.commit().await?;
        return Ok(Claim {
            claimed: Vec::new(),
            throttled_until,
            held_gate: None,
        });
    }
    // PostgreSQL: SKIP LOCKED lets replicas claim side by side without waiting on each other.
    // SQLite: one writer at a time, so the UPDATE with its subquery is atomic as it stands.
    let lock = if backend == DatabaseBackend::Postgres {
        "FOR UPDATE SKIP LOCKED"
    } else {
        ""
    };
    // Placeholders in the order of the text (see `sql::Params`). On SQLite a LIMIT is written
    // `+?`: SQLite plans with the value bound to a plain `LIMIT ?` and prepares the statement
    // again whenever it changes, which it does from one claim to the next.
    let mut p = Params::new(backend);
    let limit_of = |p: &mut Params, n: usize| {
        let param = p.push(n as i64);
        if backend == DatabaseBackend::Sqlite {
            format!("+{param}")
        } else {
            param
        }
    };
    let set = format!(
        "lease_owner = {}, lease_expires_at = {}, next_attempt_at = {}",
        p.push(worker),
        p.push(lease_end),
        p.push(lease_end)
    );
    // One short index range per destination that may take work, each cut at what that
    // destination may have in flight (and, when rate-limited, at its tokens). Excluding the
    // saturated ones instead would make every claim step over all of their due rows (with one
    // busy receiver and a deep backlog, that scan was the dispatcher's main cost), and one claim
    // could fill the process with a single slow destination's work.
    let mut arms: Vec<String> = eligible
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let id = p.push(d.id.as_str());
            let due = p.push(at);
            let cap = limit_of(&mut p, d.cap);
            format!(
                "SELECT id, next_attempt_at FROM (SELECT id, next_attempt_at FROM deliveries \
                 WHERE destination_id = {id} AND state IN {OPEN_STATES} AND next_attempt_at <= {due} \
                 ORDER BY next_attempt_at LIMIT {cap} {lock}) AS d{i}"
            )
        })
        .collect();
    if !list_unlimited {
        // Too many destinations to name: the unlimited ones are claimed by exclusion, leaving out
        // the saturated, the disabled and the rate-limited (which have their own arms above).
        let due = p.push(at);
        let skip = if skip_destinations.is_empty() {
            String::new()
        } else {
            format!(
                "AND destination_id NOT IN ({})",
                p.list(skip_destinations.iter().map(String::as_str))
            )
        };
        let most = limit_of(&mut p, limit);
        arms.push(format!(
            "SELECT id, next_attempt_at FROM (SELECT id, next_attempt_at FROM deliveries \
             WHERE state IN {OPEN_STATES} AND next_attempt_at <= {due} {skip} \
             AND destination_id NOT IN (SELECT id FROM destinations \
               WHERE enabled = false OR rate_limit_per_minute IS NOT NULL) \
             ORDER BY next_attempt_at LIMIT {most} {lock}) AS rest"
        ));
    }
    let most = limit_of(&mut p, limit);
    // Each row comes back with its alert's body, which the worker sends: in the statement rather
    // than a query of its own after it, one round trip fewer in the claim's transaction.
    let sql = format!(
        "UPDATE deliveries SET {set} WHERE id IN (SELECT id FROM ({}) AS due \
         ORDER BY next_attempt_at LIMIT {most}) \
         RETURNING {DELIVERY_COLUMNS}, \
           (SELECT body FROM alerts WHERE alerts.id = deliveries.alert_id) AS alert_body",
        arms.join(" UNION ALL ")
    );
    let mut claimed: Vec<(delivery::Model, Option<String>)> = txn
        .query_all_raw(p.statement(sql))
        .await?
        .iter()
        .map(|row| {
            Ok((
                delivery::Model::from_query_result(row, "")?,
                row.try_get::<Option<String>>("", "alert_body")?,
            ))
        })
        .collect::<Result<_, sea_orm::DbErr>>()?;
    // RETURNING gives no order (PostgreSQL's is the rows' order on disk), and the worker starts
    // them in the order returned: oldest first, then by id, which is time-ordered too.
    claimed.sort_by(|(a, _), (b, _)| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    if !buckets.is_empty() {
        let mut taken: HashMap<&str, usize> = HashMap::new();
        for (m, _) in &claimed {
            if buckets.contains_key(&m.destination_id) {
                *taken.entry(m.destination_id.as_str()).or_default() += 1;
            }
        }
        for (id, n) in taken {
            let (bucket, available) = buckets[id];
            let left = available - n as f64;
            if left < 1.0 {
                // It may well have more due: look again when its next token is there.
                let next = bucket.next_token_at(left, at);
                throttled_until = Some(throttled_until.map_or(next, |t| t.min(next)));
            }
            destination::Entity::update_many()
                .col_expr(destination::Column::RateTokens, Expr::value(left))
                .col_expr(destination::Column::RateRefilledAt, Expr::value(at))
                .filter(destination::Column::Id.eq(id))
                .exec(&txn)
                .await?;
        }
    }
    txn.commit().await?;
    let claimed = claimed
        .into_iter()
        .map(|(m, body)| {
            let body = body
                .ok_or_else(|| StoreError::Corrupt(format!("alert {} has no body", m.alert_id)))?;
            Ok(Claimed {
                delivery: Delivery::try_from(m)?,
                body,
            })
        })
        .collect::<Result<_, StoreError>>()?;
    Ok(Claim {
        claimed,
        throttled_until,
        held_gate: Some(held_gate),
    })
}

/// Whether `destination_id` has a delivery due now and not leased: queued work that a new delivery
/// must not overtake (see `alerts::DirectLease`). One probe of the partial queue index.
pub(crate) async fn has_due(
    conn: &impl ConnectionTrait,
    destination_id: &str,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let backend = conn.get_database_backend();
    let row = conn
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            format!(
                "SELECT 1 AS due FROM deliveries WHERE destination_id = $1 \
                 AND state IN {OPEN_STATES} AND next_attempt_at <= $2 LIMIT 1"
            ),
            [destination_id.into(), at.into()],
        ))
        .await?;
    Ok(row.is_some())
}

/// Hands deliveries claimed by `worker` back to the queue at once: their lease is cleared and they
/// are due now, so any worker (another replica, or this one after a restart) takes them without
/// waiting for the lease to run out. Only rows this worker still holds and that are still open
/// are touched; returns how many were handed back.
pub async fn release_leases(
    db: &DatabaseConnection,
    worker: &str,
    ids: &[String],
) -> Result<u64, StoreError> {
    let txn = super::begin_write(db).await?;
    let mut released = 0;
    for chunk in ids.chunks(INSERT_CHUNK) {
        let result = delivery::Entity::update_many()
            .col_expr(
                delivery::Column::LeaseOwner,
                Expr::value(Option::<String>::None),
            )
            .col_expr(
                delivery::Column::LeaseExpiresAt,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(delivery::Column::NextAttemptAt, Expr::value(now()))
            .filter(delivery::Column::Id.is_in(chunk.iter().map(String::as_str)))
            .filter(delivery::Column::LeaseOwner.eq(worker))
            .filter(delivery::Column::State.is_in(["PENDING", "RETRYING"]))
            .exec(&txn)
            .await?;
        released += result.rows_affected;
    }
    if released > 0 {
        // Other replicas take the handed-back work at once, not at their next poll.
        super::notify::queue(&txn, worker).await?;
    }
    txn.commit().await?;
    Ok(released)
}

/// The open deliveries leased to `worker` whose lease ends at or before `until`. Used only after a
/// database failure, to find leases the worker lost track of; it reads the open rows (the state
/// index), which is cheap next to an outage.
pub async fn leased_to(
    conn: &impl ConnectionTrait,
    worker: &str,
    until: DateTime<Utc>,
) -> Result<Vec<String>, StoreError> {
    Ok(delivery::Entity::find()
        .select_only()
        .column(delivery::Column::Id)
        .filter(delivery::Column::State.is_in(["PENDING", "RETRYING"]))
        .filter(delivery::Column::LeaseOwner.eq(worker))
        .filter(delivery::Column::LeaseExpiresAt.lte(until))
        .into_tuple::<String>()
        .all(conn)
        .await?)
}

/// The earliest time any unfinished delivery falls due, so an idle worker knows how long to sleep.
/// The states are spelled out, not bound: only then can the partial queue index apply.
pub async fn next_due(conn: &impl ConnectionTrait) -> Result<Option<DateTime<Utc>>, StoreError> {
    #[derive(FromQueryResult)]
    struct Row {
        next: Option<DateTime<Utc>>,
    }
    let backend = conn.get_database_backend();
    // Without statistics SQLite prefers the (state, id) index and reads every open delivery to
    // find the minimum; named, the partial queue index answers from its first entry.
    let index = if backend == DatabaseBackend::Sqlite {
        "INDEXED BY deliveries_due"
    } else {
        ""
    };
    let row = Row::find_by_statement(Statement::from_string(
        backend,
        format!(
            "SELECT MIN(next_attempt_at) AS next FROM deliveries {index} WHERE state IN {OPEN_STATES}"
        ),
    ))
    .one(conn)
    .await?;
    Ok(row.and_then(|r| r.next))
}

/// Unfinished deliveries by state, for the queue-depth gauges.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpenCounts {
    pub pending: u64,
    pub retrying: u64,
}

/// Counts the unfinished deliveries by state. Finished history is never read: the `(state, id)`
/// index gives the two ranges, so the cost grows with the backlog (about a millisecond per ten
/// thousand open rows), not with the years of deliveries behind it.
pub async fn open_counts(conn: &impl ConnectionTrait) -> Result<OpenCounts, StoreError> {
    #[derive(FromQueryResult)]
    struct Row {
        state: String,
        n: i64,
    }
    let backend = conn.get_database_backend();
    let index = if backend == DatabaseBackend::Sqlite {
        "INDEXED BY deliveries_state"
    } else {
        ""
    };
    let rows = Row::find_by_statement(Statement::from_string(
        backend,
        format!(
            "SELECT state, COUNT(*) AS n FROM deliveries {index} WHERE state IN {OPEN_STATES} \
             GROUP BY state"
        ),
    ))
    .all(conn)
    .await?;
    let mut out = OpenCounts::default();
    for r in rows {
        match DeliveryState::parse(&r.state)? {
            DeliveryState::Pending => out.pending = r.n as u64,
            DeliveryState::Retrying => out.retrying = r.n as u64,
            _ => {}
        }
    }
    Ok(out)
}

/// What one attempt did to its delivery.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The delivery as it was claimed for this attempt.
    pub delivery: Delivery,
    pub attempt: Attempt,
    pub state: DeliveryState,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub message: String,
}

impl Outcome {
    pub fn delivery_id(&self) -> &str {
        &self.delivery.id
    }

    /// The delivery as [`record_statement`] leaves its row, written at `at`: the same columns set
    /// to the same values; the others do not change after the insert.
    fn written(&self, at: DateTime<Utc>) -> Delivery {
        Delivery {
            state: self.state,
            attempt_count: self.attempt.number,
            next_attempt_at: self.next_attempt_at,
            lease_owner: None,
            status_code: self.attempt.status_code,
            response_body: self.attempt.response_body.clone(),
            message: self.message.clone(),
            dispatched_at: Some(self.attempt.started_at),
            updated_at: at,
            ..self.delivery.clone()
        }
    }
}

/// What a batch of results did: the deliveries as they now stand, and the destinations that it
/// auto-disabled.
#[derive(Debug, Default)]
pub struct Recorded {
    pub deliveries: Vec<Delivery>,
    pub disabled: Vec<String>,
}

/// Writes a batch of attempt results in one transaction. A result whose lease was lost meanwhile
/// (the destination was deleted, or the lease expired and another worker took over) is dropped.
/// The same transaction keeps each destination's count of consecutive failed deliveries and
/// auto-disables those that reach their threshold (see [`count_failures`]), and tells the other
/// replicas, on commit, which deliveries and destinations changed (`worker` is the origin).
///
/// One `UPDATE … FROM (VALUES …)` per chunk rather than one statement per delivery: on SQLite every
/// statement is a round trip to the connection's thread, and that, not SQLite, was the cost.
pub async fn record_outcomes(
    db: &DatabaseConnection,
    worker: &str,
    outcomes: &[Outcome],
) -> Result<Recorded, StoreError> {
    if outcomes.is_empty() {
        return Ok(Recorded::default());
    }
    let backend = db.get_database_backend();
    // Every statement is built before the transaction begins, so that building them (a few
    // microseconds a result) does not hold the one writer. The attempts' INSERT is built for all
    // results; in the rare batch with a lost lease it is built again for those written.
    let at = now();
    let updates: Vec<Statement> = outcomes
        .chunks(RECORD_CHUNK)
        .map(|chunk| record_statement(backend, worker, at, chunk))
        .collect();
    let all: Vec<&Outcome> = outcomes.iter().collect();
    let attempts_of_all = attempts_statements(backend, &all);
    let txn = super::begin_write(db).await?;
    // Only the ids come back: the rows as written are known here (`Outcome::written`).
    // Returning every column of each was about a fifth of the statement's time on the writer
    // while a backlog drained (BENCHMARKS.md).
    let mut recorded: std::collections::HashSet<String> = std::collections::HashSet::new();
    for update in updates {
        for row in txn.query_all_raw(update).await? {
            recorded.insert(row.try_get_by_index::<String>(0)?);
        }
    }
    let written: Vec<&Outcome> = outcomes
        .iter()
        .filter(|o| recorded.contains(o.delivery_id()))
        .collect();
    let updated: Vec<Delivery> = written.iter().map(|o| o.written(at)).collect();
    let attempts = if written.len() == outcomes.len() {
        attempts_of_all
    } else {
        attempts_statements(backend, &written)
    };
    execute_all(&txn, attempts).await?;
    let disabled = count_failures(&txn, &updated, at).await?;
    let changed: Vec<String> = updated.iter().map(|m| m.id.clone()).collect();
    super::notify::deliveries(&txn, worker, &changed).await?;
    super::notify::destinations(&txn, worker, &disabled).await?;
    txn.commit().await?;
    Ok(Recorded {
        deliveries: updated,
        disabled,
    })
}

/// The INSERTs of these results' attempts, [`INSERT_CHUNK`] rows each. An attempt already stored
/// (a batch written twice after a lost answer to its COMMIT) is left as it is.
fn attempts_statements(backend: DatabaseBackend, outcomes: &[&Outcome]) -> Vec<Statement> {
    outcomes
        .chunks(INSERT_CHUNK)
        .map(|chunk| {
            let mut p = Params::new(backend);
            let rows = p.table(chunk.iter().map(|o| -> [Value; 11] {
                let a = &o.attempt;
                [
                    o.delivery.id.as_str().into(),
                    a.number.into(),
                    a.started_at.into(),
                    a.duration_ms.into(),
                    a.status_code.into(),
                    a.response_body.clone().into(),
                    a.response_truncated.into(),
                    a.response_headers.as_ref().map(Json::to_string).into(),
                    a.error.clone().into(),
                    a.url.clone().into(),
                    a.request_headers.as_ref().map(Json::to_string).into(),
                ]
            }));
            p.statement(format!(
                "INSERT INTO delivery_attempts (delivery_id, number, started_at, duration_ms, \
                   status_code, response_body, response_truncated, response_headers, error, url, \
                   request_headers) {rows} \
                 ON CONFLICT (delivery_id, number) DO NOTHING"
            ))
        })
        .collect()
}

/// The `UPDATE … FROM (VALUES …)` that writes one chunk of results (8 parameters a row, 2 more for
/// the statement: far below both databases' limits).
///
/// The unary `+` keeps SQLite from using an index for the state test. Without it SQLite plans the
/// open deliveries as the outer loop (the `(state, id)` index on the state alone) and the VALUES
/// list as the inner one: every chunk then read every open delivery, and draining a backlog of
/// 150,000 cost 33 ms per 50 results (BENCHMARKS.md). With only the id to join on, it takes the
/// list in order and finds each delivery by its primary key. (PostgreSQL has no unary `+` for
/// text, and plans this join from its statistics.)
fn record_statement(
    backend: DatabaseBackend,
    worker: &str,
    at: DateTime<Utc>,
    chunk: &[Outcome],
) -> Statement {
    let state = if backend == DatabaseBackend::Sqlite {
        "+deliveries.state"
    } else {
        "deliveries.state"
    };
    // Placeholders in the order of the text (see `sql::Params`).
    let mut p = Params::new(backend);
    let updated_at = p.push(at);
    let rows = p.values(chunk.iter().map(|o| -> [Value; 8] {
        [
            o.delivery.id.as_str().into(),
            o.state.as_str().into(),
            o.attempt.number.into(),
            o.next_attempt_at.into(),
            o.attempt.status_code.into(),
            o.attempt.response_body.clone().into(),
            o.message.clone().into(),
            o.attempt.started_at.into(),
        ]
    }));
    let owner = p.push(worker);
    // VALUES columns are column1…column8 on both databases.
    p.statement(format!(
        "UPDATE deliveries SET state = v.column2, attempt_count = v.column3, \
           next_attempt_at = v.column4, lease_owner = NULL, lease_expires_at = NULL, \
           status_code = v.column5, response_body = v.column6, message = v.column7, \
           dispatched_at = v.column8, updated_at = {updated_at} \
         FROM ({}) AS v \
         WHERE deliveries.id = v.column1 AND deliveries.lease_owner = {owner} \
           AND {state} IN {OPEN_STATES} \
         RETURNING deliveries.id",
        rows
    ))
}

/// One destination's share of a batch, in the order the results arrived.
#[derive(Default)]
struct Tally {
    /// A delivery succeeded: the count starts again from the failures after it.
    reset: bool,
    /// Deliveries that ended FAILED after the last success in the batch (or all of them).
    failures: i32,
    /// The message of the last of them, for the reason.
    last: String,
}

/// The longest part of a failure message quoted in `disabledReason`: a receiver's error page can be
/// large, and the reason is for a person to read at a glance.
const REASON_MESSAGE_CHARS: usize = 300;

/// Keeps each destination's count of consecutive FAILED deliveries (test alerts aside; a success
/// resets it) and disables the destinations that reach `auto_disable_after_failures`. Returns
/// their ids. `recorded` are the deliveries as this batch wrote them, in the order their results
/// arrived.
///
/// The count is added to in SQL (`consecutive_failures + n`) inside the transaction that records
/// the results, so several results for one destination in one batch, and batches written by
/// several replicas at once, all land on the same number: the row lock (PostgreSQL) or the single
/// writer (SQLite) orders them.
async fn count_failures(
    txn: &impl ConnectionTrait,
    recorded: &[Delivery],
    at: DateTime<Utc>,
) -> Result<Vec<String>, StoreError> {
    use std::collections::BTreeMap;
    // Ordered by destination id: PostgreSQL then locks the rows in one order on every replica.
    let mut tallies: BTreeMap<&str, Tally> = BTreeMap::new();
    for m in recorded {
        if m.test {
            continue;
        }
        match m.state {
            DeliveryState::Succeeded => {
                let t = tallies.entry(m.destination_id.as_str()).or_default();
                t.reset = true;
                t.failures = 0;
            }
            DeliveryState::Failed => {
                let t = tallies.entry(m.destination_id.as_str()).or_default();
                t.failures += 1;
                t.last.clone_from(&m.message);
            }
            DeliveryState::Pending | DeliveryState::Retrying => {}
        }
    }
    if tallies.is_empty() {
        return Ok(Vec::new());
    }
    let backend = txn.get_database_backend();
    let mut disabled = Vec::new();
    let entries: Vec<(&str, Tally)> = tallies.into_iter().collect();
    for chunk in entries.chunks(RECORD_CHUNK) {
        if backend == DatabaseBackend::Postgres {
            // Replicas whose batches share destinations lock them in the same (id) order, so they
            // queue behind each other instead of deadlocking.
            let mut p = Params::new(backend);
            let ids = p.list(chunk.iter().map(|(id, _)| *id));
            txn.execute_raw(p.statement(format!(
                "SELECT id FROM destinations WHERE id IN ({ids}) ORDER BY id FOR UPDATE"
            )))
            .await?;
        }
        let mut p = Params::new(backend);
        let rows =
            p.values(chunk.iter().map(|(id, t)| -> [Value; 3] {
                [(*id).into(), t.reset.into(), t.failures.into()]
            }));
        // A success on a destination whose count is already 0 changes nothing, and is left out so
        // that the common case writes no destination row.
        let sql = format!(
            "UPDATE destinations SET consecutive_failures = CASE WHEN v.column2 THEN v.column3 \
               ELSE destinations.consecutive_failures + v.column3 END \
             FROM ({}) AS v \
             WHERE destinations.id = v.column1 \
               AND (v.column3 > 0 OR destinations.consecutive_failures <> 0) \
             RETURNING destinations.id AS id, destinations.consecutive_failures AS count, \
               destinations.auto_disable_after_failures AS threshold, destinations.enabled AS enabled",
            rows
        );
        #[derive(FromQueryResult)]
        struct Counted {
            id: String,
            count: i32,
            threshold: Option<i32>,
            enabled: bool,
        }
        let counted = Counted::find_by_statement(p.statement(sql))
            .all(txn)
            .await?;
        for c in counted {
            let Some(threshold) = c.threshold else {
                continue;
            };
            if !c.enabled || c.count < threshold {
                continue;
            }
            let last = chunk
                .iter()
                .find(|(id, _)| *id == c.id)
                .map(|(_, t)| t.last.as_str())
                .unwrap_or_default();
            let mut quoted: String = last.chars().take(REASON_MESSAGE_CHARS).collect();
            if quoted.len() < last.len() {
                quoted.push('…');
            }
            let reason = format!(
                "auto-disabled after {} consecutive failed deliveries; last: {quoted}",
                c.count
            );
            // `enabled = true` again: a manual disable since the count was read wins.
            let result = destination::Entity::update_many()
                .col_expr(destination::Column::Enabled, Expr::value(false))
                .col_expr(destination::Column::DisabledReason, Expr::value(reason))
                .col_expr(destination::Column::DisabledAt, Expr::value(at))
                .col_expr(destination::Column::UpdatedAt, Expr::value(at))
                .filter(destination::Column::Id.eq(c.id.as_str()))
                .filter(destination::Column::Enabled.eq(true))
                .exec(txn)
                .await?;
            if result.rows_affected == 1 {
                audit::record(
                    txn,
                    &Actor::herald(),
                    Action::DestinationDisabled,
                    Some(&c.id),
                    &["enabled", "disabledReason"],
                )
                .await?;
                disabled.push(c.id);
            }
        }
    }
    Ok(disabled)
}

/// Results per `UPDATE … FROM (VALUES …)`.
const RECORD_CHUNK: usize = 256;

/// Every column of `deliveries`, unqualified, for RETURNING clauses (SQLite's may only name the
/// updated table's columns, and `*` would bring the VALUES columns along on PostgreSQL).
const DELIVERY_COLUMNS: &str = "id, alert_id, destination_id, label, state, webhook_id, resend_of, \
    test, attempt_count, next_attempt_at, lease_owner, lease_expires_at, status_code, \
    response_body, message, created_at, dispatched_at, updated_at";

/// The original delivery of an alert to a destination, if there is one.
pub async fn original_for(
    conn: &impl ConnectionTrait,
    alert_id: &str,
    destination_id: &str,
) -> Result<Option<Delivery>, StoreError> {
    delivery::Entity::find()
        .filter(delivery::Column::AlertId.eq(alert_id))
        .filter(delivery::Column::DestinationId.eq(destination_id))
        .filter(delivery::Column::ResendOf.is_null())
        .one(conn)
        .await?
        .map(Delivery::try_from)
        .transpose()
}

/// Queues a new delivery for `alert_id` to `destination_id` with the full retry schedule: a
/// re-send of `resend_of` (same webhook id) when given, else a fresh original.
pub async fn enqueue(
    conn: &impl ConnectionTrait,
    alert_id: &str,
    destination_id: &str,
    label: &str,
    webhook_id: String,
    resend_of: Option<String>,
    test: bool,
) -> Result<Delivery, StoreError> {
    let model = new_model(
        alert_id,
        destination_id,
        label,
        webhook_id,
        resend_of,
        test,
        now(),
    );
    conn.execute_raw(insert_statement(
        conn.get_database_backend(),
        [&model].into_iter(),
    ))
    .await?;
    Delivery::try_from(model)
}

/// Ends a delivery for good without an attempt (its destination is gone), and tells the other
/// replicas (`origin` is this process's worker id).
pub async fn fail_without_attempt(
    db: &DatabaseConnection,
    origin: &str,
    id: &str,
    message: &str,
) -> Result<(), StoreError> {
    let txn = super::begin_write(db).await?;
    let ended = delivery::Entity::update_many()
        .col_expr(delivery::Column::State, Expr::value("FAILED"))
        .col_expr(delivery::Column::Message, Expr::value(message))
        .col_expr(
            delivery::Column::NextAttemptAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(
            delivery::Column::LeaseOwner,
            Expr::value(Option::<String>::None),
        )
        .col_expr(delivery::Column::UpdatedAt, Expr::value(now()))
        .filter(delivery::Column::Id.eq(id))
        .filter(delivery::Column::State.is_in(["PENDING", "RETRYING"]))
        .exec(&txn)
        .await?;
    if ended.rows_affected > 0 {
        super::notify::deliveries(&txn, origin, &[id.to_owned()]).await?;
    }
    txn.commit().await?;
    Ok(())
}

/// Queues a re-send of a delivery: a new delivery with `resend_of` set, the same webhook id and
/// body, sent to the destination as it is now, with the full retry schedule. Recorded as
/// `delivery.resent` on the new delivery. The other replicas hear of it on commit.
pub async fn resend(
    db: &DatabaseConnection,
    actor: &Actor,
    origin: &str,
    delivery_id: &str,
) -> Result<Delivery, StoreError> {
    let txn = super::begin_write(db).await?;
    let original = get(&txn, delivery_id)
        .await?
        .ok_or_else(|| StoreError::NotFound {
            kind: "delivery",
            id: delivery_id.to_owned(),
        })?;
    let label = super::destinations::display_name(&txn, &original.destination_id)
        .await?
        .ok_or_else(|| StoreError::NotFound {
            kind: "destination",
            id: original.destination_id.clone(),
        })?;
    let resent = enqueue(
        &txn,
        &original.alert_id,
        &original.destination_id,
        &label,
        original.webhook_id.clone(),
        Some(original.id.clone()),
        false,
    )
    .await?;
    audit::record(&txn, actor, Action::DeliveryResent, Some(&resent.id), &[]).await?;
    super::notify::queue(&txn, origin).await?;
    txn.commit().await?;
    Ok(resent)
}

/// Queues an alert again for each destination: a re-send of its original delivery there, or a
/// first delivery where it never went. Every destination must exist; otherwise nothing is queued.
/// Each delivery queued is recorded as `delivery.resent`. The other replicas hear of it on commit.
pub async fn resend_alert(
    db: &DatabaseConnection,
    actor: &Actor,
    origin: &str,
    alert_id: &str,
    destination_ids: &[String],
) -> Result<Vec<Delivery>, StoreError> {
    let txn = super::begin_write(db).await?;
    if alert::Entity::find_by_id(alert_id.to_owned())
        .one(&txn)
        .await?
        .is_none()
    {
        return Err(StoreError::NotFound {
            kind: "alert",
            id: alert_id.to_owned(),
        });
    }
    let mut out = Vec::with_capacity(destination_ids.len());
    let mut seen = std::collections::HashSet::new();
    for id in destination_ids {
        if !seen.insert(id.as_str()) {
            continue;
        }
        let label = super::destinations::display_name(&txn, id)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                kind: "destination",
                id: id.clone(),
            })?;
        let delivery = match original_for(&txn, alert_id, id).await? {
            Some(original) => {
                enqueue(
                    &txn,
                    alert_id,
                    id,
                    &label,
                    original.webhook_id,
                    Some(original.id),
                    false,
                )
                .await?
            }
            None => enqueue(&txn, alert_id, id, &label, ids::webhook(), None, false).await?,
        };
        audit::record(&txn, actor, Action::DeliveryResent, Some(&delivery.id), &[]).await?;
        out.push(delivery);
    }
    if !out.is_empty() {
        super::notify::queue(&txn, origin).await?;
    }
    txn.commit().await?;
    Ok(out)
}

/// The attempts of each of these deliveries, oldest first, in one query per 500 ids: a page of
/// deliveries reads its attempts together instead of one query a row. Deliveries without
/// attempts are absent from the map.
pub async fn attempts_of_many(
    conn: &impl ConnectionTrait,
    delivery_ids: &[String],
) -> Result<HashMap<String, Vec<Attempt>>, StoreError> {
    let mut out: HashMap<String, Vec<Attempt>> = HashMap::new();
    for chunk in delivery_ids.chunks(INSERT_CHUNK) {
        for m in delivery_attempt::Entity::find()
            .filter(delivery_attempt::Column::DeliveryId.is_in(chunk.iter().cloned()))
            .order_by_asc(delivery_attempt::Column::DeliveryId)
            .order_by_asc(delivery_attempt::Column::Number)
            .all(conn)
            .await?
        {
            out.entry(m.delivery_id.clone())
                .or_default()
                .push(Attempt::from(m));
        }
    }
    Ok(out)
}

/// Every delivery of each of these alerts, oldest first, in one query per 500 alerts. Alerts
/// without deliveries are absent from the map.
pub async fn for_alerts(
    conn: &impl ConnectionTrait,
    alert_ids: &[String],
) -> Result<HashMap<String, Vec<Delivery>>, StoreError> {
    let mut out: HashMap<String, Vec<Delivery>> = HashMap::new();
    for chunk in alert_ids.chunks(INSERT_CHUNK) {
        for m in delivery::Entity::find()
            .filter(delivery::Column::AlertId.is_in(chunk.iter().cloned()))
            .order_by_asc(delivery::Column::Id)
            .all(conn)
            .await?
        {
            let d = Delivery::try_from(m)?;
            out.entry(d.alert_id.clone()).or_default().push(d);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    /// SQLite's plan for `stmt`, one line per step.
    async fn sqlite_plan(store: &Store, stmt: Statement) -> Vec<String> {
        let explain = Statement {
            sql: format!("EXPLAIN QUERY PLAN {}", stmt.sql),
            ..stmt
        };
        store
            .db()
            .query_all_raw(explain)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.try_get::<String>("", "detail").unwrap())
            .collect()
    }

    fn outcome(n: usize) -> Outcome {
        let mut delivery = Delivery::try_from(new_model(
            "alr_test",
            "dst_test",
            "Test",
            String::new(),
            None,
            false,
            now(),
        ))
        .unwrap();
        delivery.id = format!("dlv_{n:032x}");
        Outcome {
            delivery,
            attempt: Attempt {
                number: 1,
                started_at: now(),
                duration_ms: 3,
                status_code: Some(200),
                response_body: Some("ok".into()),
                response_truncated: false,
                response_headers: None,
                error: None,
                url: None,
                request_headers: None,
            },
            state: DeliveryState::Succeeded,
            next_attempt_at: None,
            message: String::new(),
        }
    }

    /// Writing a batch of results must cost the same behind a backlog of a million as behind none:
    /// each result finds its delivery by id, and no step walks the open deliveries. SQLite chooses
    /// the plan without looking at the data, so the plan on an empty database is the plan at depth.
    #[tokio::test]
    async fn recording_results_finds_each_delivery_by_id_whatever_the_batch_size() {
        let store = Store::connect("sqlite::memory:", 1).await.unwrap();
        store.migrate().await.unwrap();
        for size in [1, 10, 50, 100, RECORD_CHUNK] {
            let chunk: Vec<Outcome> = (0..size).map(outcome).collect();
            let stmt = record_statement(DatabaseBackend::Sqlite, "wrk_test", now(), &chunk);
            let plan = sqlite_plan(&store, stmt).await;
            let steps: Vec<&String> = plan.iter().filter(|s| s.contains("deliveries")).collect();
            assert!(
                !steps.is_empty()
                    && steps
                        .iter()
                        .all(|s| s.starts_with("SEARCH") && s.contains("(id=?)")),
                "{size} results: deliveries must be searched by id alone, got {plan:?}"
            );
            let values = plan
                .iter()
                .position(|s| s.contains("VALUES") || s.contains("CONSTANT ROWS"));
            let search = plan.iter().position(|s| s.contains("(id=?)"));
            assert!(
                values < search,
                "{size} results: the list must be the outer loop, got {plan:?}"
            );
        }
    }
}
