//! Alerts: accepted in batches, each with its deliveries, in one transaction. Once the transaction
//! commits, nothing may lose the alert; the deliveries are the queue entries the dispatcher works.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, Utc};
use herald_domain::{AlertType, Severity};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DatabaseBackend, DatabaseConnection,
    EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Statement, Value,
};
use serde::{Deserialize, Serialize};

use super::audit::{self, Action, Actor};
use super::deliveries::{self, Delivery, INSERT_CHUNK};
use super::entities::{alert, delivery};
use super::error::is_unique_violation;
use super::held::HeldGuard;
use super::snapshot::Snapshot;
use super::sql::{Params, execute_all};
use super::{Page, Store, StoreError, ids, now};
use crate::dispatch::payload::PantherPayload;
use crate::dispatch::routing::{self, RouteTarget, RoutingRequest};

#[derive(Debug, Clone)]
pub struct Alert {
    pub id: String,
    pub detection_id: String,
    pub title: String,
    pub severity: Severity,
    pub alert_type: AlertType,
    pub created_at: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    /// The exact JSON body sent to destinations.
    pub body: String,
    /// The log types it names; empty when none.
    pub log_types: Vec<String>,
}

/// A JSON list of log type names from a row; `what` names the row for the error.
pub(crate) fn parse_log_types(json: &str, what: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(json)
        .map_err(|_| StoreError::Corrupt(format!("log types of {what} are not a JSON list")))
}

pub(crate) fn log_types_json(names: &[String]) -> String {
    serde_json::to_string(names).expect("a list of strings serializes")
}

impl TryFrom<alert::Model> for Alert {
    type Error = StoreError;
    fn try_from(m: alert::Model) -> Result<Self, StoreError> {
        Ok(Alert {
            severity: m
                .severity
                .parse()
                .map_err(|e| StoreError::Corrupt(format!("alert {}: {e}", m.id)))?,
            alert_type: m
                .alert_type
                .parse()
                .map_err(|e| StoreError::Corrupt(format!("alert {}: {e}", m.id)))?,
            log_types: parse_log_types(&m.log_types, &format!("alert {}", m.id))?,
            id: m.id,
            detection_id: m.detection_id,
            title: m.title,
            created_at: m.created_at,
            received_at: m.received_at,
            body: m.body,
        })
    }
}

/// An alert to accept: its payload (whose `alertId` is the alert's id) and where it asks to go.
#[derive(Debug, Clone)]
pub struct IncomingAlert {
    pub payload: PantherPayload,
    pub routing: RoutingRequest,
}

/// What the routing decided, kept with the alert so a repeated `alertId` returns the first result.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredRouting {
    dynamic_severity: Option<Severity>,
    destination_overrides: Option<Vec<String>>,
    dynamic_destinations: Option<Vec<String>>,
    warnings: Vec<String>,
}

/// The result of accepting one alert.
#[derive(Debug, Clone)]
pub struct Accepted {
    pub alert: Alert,
    pub deliveries: Vec<Delivery>,
    pub warnings: Vec<String>,
    /// The alert id was seen before; nothing new was queued.
    pub duplicate: bool,
}

/// How many of the new deliveries the local dispatcher will send straight away, so that they are
/// stored already leased to it (`worker`) instead of queued for a claim. A delivery is leased at
/// insert only when its destination is enabled, has no rate limit (only a claim draws from the
/// token bucket), has room under `per_destination` (less what `held` says the worker holds for
/// it), and has no due delivery waiting in the queue: those were there first, and a new one must
/// not overtake them. The database stays the only truth: a process that dies leaves leases that
/// run out, as a claim's do.
#[derive(Debug, Clone)]
pub struct DirectLease {
    pub worker: String,
    pub lease: std::time::Duration,
    /// Deliveries that may be leased in all (the dispatcher's free capacity).
    pub total: usize,
    /// Deliveries one destination may have with the worker at once.
    pub per_destination: usize,
    /// What the worker already holds, by destination: read inside the transaction.
    pub held: super::held::HeldCounts,
}

/// What a batch of alerts became: one result per input, in order; the deliveries leased at insert
/// (with the body to send), which the caller hands to its dispatcher; and how many deliveries
/// went to the queue for a claim instead.
#[derive(Debug, Default)]
pub struct AcceptedBatch {
    pub results: Vec<Accepted>,
    pub leased: Vec<deliveries::Claimed>,
    pub queued: usize,
    /// With a [`DirectLease`], the gate its counts were read under: drop it once `leased` is
    /// counted as the worker's (see `store::held`).
    pub held_gate: Option<HeldGuard>,
}

/// Accepts a batch of alerts in one transaction on the store's writer: routes each, stores it
/// with its deliveries, and returns one result per input, in order. An alert id seen before (in
/// the database or earlier in the batch) returns the first result and queues nothing. With `direct`, some deliveries are
/// stored leased to the local dispatcher (see [`DirectLease`]). When deliveries were queued for a
/// claim, the other replicas hear of it on commit (`origin` is this process's worker id). While
/// another process holds SQLite's lock, it waits for it until `deadline` (see `begin_write_by`).
pub async fn accept(
    store: &Store,
    origin: &str,
    batch: Vec<IncomingAlert>,
    direct: Option<&DirectLease>,
    deadline: Instant,
) -> Result<AcceptedBatch, StoreError> {
    // Two writers racing on one new alert id (two replicas, say): the loser's transaction hits the
    // primary key, and a second pass finds the winner's alert and returns it.
    match accept_once(store, origin, &batch, direct, deadline).await {
        Err(StoreError::Database(e)) if is_unique_violation(&e) => {
            accept_once(store, origin, &batch, direct, deadline).await
        }
        other => other,
    }
}

/// Decides, delivery by delivery, which are leased at insert (see [`DirectLease`]).
struct LeaseBudget<'a> {
    direct: &'a DirectLease,
    /// What the worker holds, by destination, as read in this transaction.
    held: HashMap<String, usize>,
    lease_end: DateTime<Utc>,
    left: usize,
    /// Per destination looked at so far: how many more it may take; 0 once one of its
    /// deliveries went to the queue, so that none after it in this batch overtakes it.
    room: HashMap<String, usize>,
    /// The destinations asked about before (see [`look_up`]), and of those the ones with queued
    /// work due; any other is asked when it comes up.
    probed: HashSet<String>,
    due: HashSet<String>,
}

impl<'a> LeaseBudget<'a> {
    fn new(
        direct: &'a DirectLease,
        held: HashMap<String, usize>,
        at: DateTime<Utc>,
        probed: HashSet<String>,
        due: HashSet<String>,
    ) -> Self {
        LeaseBudget {
            direct,
            held,
            lease_end: at
                + chrono::Duration::from_std(direct.lease).unwrap_or(chrono::Duration::minutes(5)),
            left: direct.total,
            room: HashMap::new(),
            probed,
            due,
        }
    }

    /// Whether `destination_id` has queued work due, which a delivery leased at insert would
    /// overtake.
    async fn has_due(
        &self,
        conn: &impl ConnectionTrait,
        destination_id: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        if self.probed.contains(destination_id) {
            return Ok(self.due.contains(destination_id));
        }
        deliveries::has_due(conn, destination_id, at).await
    }

    /// Whether the next delivery to `target` is leased at insert; takes its place if so.
    async fn take(
        &mut self,
        conn: &impl ConnectionTrait,
        target: Option<&RouteTarget>,
        rate_limited: bool,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let Some(target) = target else {
            return Ok(false);
        };
        if !self.room.contains_key(&target.id) {
            let held = self.held.get(&target.id).copied().unwrap_or(0);
            let room =
                if !target.enabled || rate_limited || self.has_due(conn, &target.id, at).await? {
                    0
                } else {
                    self.direct.per_destination.saturating_sub(held)
                };
            self.room.insert(target.id.clone(), room);
        }
        let room = self.room.get_mut(&target.id).expect("inserted above");
        if self.left == 0 || *room == 0 {
            // The rest of this batch's deliveries to it queue behind this one.
            *room = 0;
            return Ok(false);
        }
        *room -= 1;
        self.left -= 1;
        Ok(true)
    }
}

/// An alert group's rows, built from the destinations as last read before its transaction
/// begins: on SQLite the transaction holds the one writer, and building a group of 2,000 alerts
/// (routing, bodies, the statements' values) inside it held the writer for most of its time while
/// the writer thread idled (BENCHMARKS.md). The transaction checks that the destinations have not
/// changed since, and builds again if they have.
struct Draft {
    snapshot: Arc<Snapshot>,
    /// Each alert id once, in the order of the batch.
    alerts: Vec<DraftAlert>,
}

struct DraftAlert {
    row: alert::Model,
    warnings: Vec<String>,
    /// Queued, due now; the transaction leases some of them at insert.
    deliveries: Vec<delivery::Model>,
}

impl Draft {
    /// The destinations this draft's deliveries could be leased to at insert: enabled, without a
    /// rate limit; each once.
    fn lease_candidates(&self) -> Vec<String> {
        let mut seen = HashSet::new();
        self.alerts
            .iter()
            .flat_map(|a| &a.deliveries)
            .map(|d| d.destination_id.as_str())
            .filter(|id| {
                self.snapshot.target(id).is_some_and(|t| t.enabled)
                    && !self.snapshot.rate_limited.contains(*id)
            })
            .filter(|id| seen.insert(*id))
            .map(str::to_owned)
            .collect()
    }
}

fn draft(snapshot: Arc<Snapshot>, batch: &[IncomingAlert], at: DateTime<Utc>) -> Draft {
    let mut seen = HashSet::new();
    let mut alerts = Vec::with_capacity(batch.len());
    for incoming in batch {
        let id = &incoming.payload.alert_id;
        if !seen.insert(id.as_str()) {
            continue;
        }
        let routed = routing::route(&incoming.routing, &snapshot.targets);
        let p = &incoming.payload;
        let stored = StoredRouting {
            dynamic_severity: incoming.routing.dynamic_severity,
            destination_overrides: incoming.routing.destination_overrides.clone(),
            dynamic_destinations: incoming.routing.dynamic_destinations.clone(),
            warnings: routed.warnings.clone(),
        };
        let row = alert::Model {
            id: id.clone(),
            detection_id: p.id.clone(),
            title: p.title.clone(),
            severity: p.severity.to_string(),
            alert_type: p.alert_type.to_string(),
            created_at: p.created_at,
            received_at: at,
            body: p.to_bytes(),
            routing: serde_json::to_string(&stored).expect("routing serializes"),
            log_types: log_types_json(&incoming.routing.log_types),
        };
        let deliveries = routed
            .destinations
            .iter()
            .map(|dest| {
                let label = snapshot
                    .target(dest)
                    .map(|t| t.display_name.as_str())
                    .unwrap_or_default();
                deliveries::new_model(id, dest, label, ids::webhook(), None, false, at)
            })
            .collect();
        alerts.push(DraftAlert {
            row,
            warnings: routed.warnings,
            deliveries,
        });
    }
    Draft { snapshot, alerts }
}

async fn accept_once(
    store: &Store,
    origin: &str,
    batch: &[IncomingAlert],
    direct: Option<&DirectLease>,
    deadline: Instant,
) -> Result<AcceptedBatch, StoreError> {
    let mut prepared = store
        .snapshots()
        .last()
        .map(|snapshot| draft(snapshot, batch, now()));
    // The destinations whose deliveries may be leased at insert, by the draft: asked about in the
    // transaction's first statement rather than one statement each as they come up.
    let probe: Vec<String> = match (&prepared, direct) {
        (Some(d), Some(_)) => d.lease_candidates(),
        _ => Vec::new(),
    };
    let txn = super::begin_write_by(store.writer(), deadline).await?;
    // Read once the transaction has the writer, never while waiting for it (see `store::held`).
    let (held, held_gate) = match direct {
        Some(d) => {
            let (counts, guard) = d.held.read().await;
            (counts, Some(guard))
        }
        None => (HashMap::new(), None),
    };
    // What is due in the queue is asked as of now, so that a delivery queued since the draft (by
    // another replica, or a re-send) is not overtaken.
    let at = now();
    let wanted: Vec<&str> = batch.iter().map(|a| a.payload.alert_id.as_str()).collect();
    let looked = look_up(&txn, &wanted, &probe, at).await?;
    let snapshot = store.snapshots().at_epoch(&txn, looked.epoch).await?;
    let known = looked.known;
    let draft = match prepared.take() {
        Some(d) if Arc::ptr_eq(&d.snapshot, &snapshot) => d,
        // The destinations changed since (or were never read): route again by what holds now.
        _ => draft(snapshot, batch, now()),
    };
    let mut budget =
        direct.map(|d| LeaseBudget::new(d, held, at, probe.into_iter().collect(), looked.due));
    let mut leased = Vec::new();
    let mut queued = 0;
    let Draft { snapshot, alerts } = draft;
    let mut fresh: Vec<DraftAlert> = Vec::with_capacity(alerts.len());
    for mut a in alerts {
        if known.contains(&a.row.id) {
            continue;
        }
        for d in &mut a.deliveries {
            let lease = match budget.as_mut() {
                Some(b) => {
                    let target = snapshot.target(&d.destination_id);
                    let limited = snapshot.rate_limited.contains(&d.destination_id);
                    b.take(&txn, target, limited, at).await?
                }
                None => false,
            };
            if lease {
                let b = budget.as_ref().expect("leased with a budget");
                // As a claim leaves it: due again at the lease's end, should this process die.
                d.lease_owner = Some(b.direct.worker.clone());
                d.lease_expires_at = Some(b.lease_end);
                d.next_attempt_at = Some(b.lease_end);
                leased.push(deliveries::Claimed {
                    delivery: Delivery::try_from(d.clone())?,
                    body: a.row.body.clone(),
                });
            } else {
                queued += 1;
            }
        }
        fresh.push(a);
    }
    // Alert rows are wide (the body); fewer per statement. All in one round trip on SQLite.
    let backend = txn.get_database_backend();
    let mut inserts: Vec<Statement> = fresh
        .chunks(ALERTS_PER_INSERT)
        .map(|chunk| insert_statement(backend, chunk.iter().map(|a| &a.row)))
        .collect();
    let rows: Vec<&delivery::Model> = fresh.iter().flat_map(|a| &a.deliveries).collect();
    inserts.extend(
        rows.chunks(INSERT_CHUNK)
            .map(|chunk| deliveries::insert_statement(backend, chunk.iter().copied())),
    );
    execute_all(&txn, inserts).await?;
    if queued > 0 {
        // Leased rows are this process's; only queued ones are news to the other replicas.
        super::notify::queue(&txn, origin).await?;
    }
    // Alerts stored before (by an earlier call, or another replica) answer as they were then.
    let mut before: HashMap<String, Accepted> = HashMap::new();
    for id in &known {
        before.insert(id.clone(), load_accepted(&txn, id, true).await?);
    }
    txn.commit().await?;

    // Results of the alerts this call stored, from the rows it wrote: reading them back would
    // cost two queries per alert.
    let mut results: HashMap<String, Accepted> = before;
    for a in fresh {
        let accepted = Accepted {
            deliveries: a
                .deliveries
                .into_iter()
                .map(Delivery::try_from)
                .collect::<Result<_, _>>()?,
            warnings: a.warnings,
            duplicate: false,
            alert: Alert::try_from(a.row)?,
        };
        results.insert(accepted.alert.id.clone(), accepted);
    }
    let mut answered = HashSet::new();
    let results = batch
        .iter()
        .map(|incoming| {
            let id = &incoming.payload.alert_id;
            let first_time = answered.insert(id.as_str());
            let a = results.get(id).ok_or_else(|| StoreError::NotFound {
                kind: "alert",
                id: id.clone(),
            })?;
            Ok(Accepted {
                duplicate: a.duplicate || !first_time,
                ..a.clone()
            })
        })
        .collect::<Result<_, StoreError>>()?;
    Ok(AcceptedBatch {
        results,
        leased,
        queued,
        held_gate,
    })
}

/// Alert rows per INSERT: each carries its body (a few KiB at most, `MAX_CONTEXT_BYTES`).
const ALERTS_PER_INSERT: usize = 250;

/// What an alert group's transaction reads before it writes.
struct LookedUp {
    /// Which of the group's alert ids are stored already.
    known: HashSet<String>,
    /// `destination_epoch`, to check the draft's destinations against.
    epoch: i64,
    /// Which of the destinations asked about have queued work due.
    due: HashSet<String>,
}

/// Reads what an alert group's transaction needs, in one statement: its alerts stored already,
/// `destination_epoch`, and for each destination in `probe` whether it has queued work due at
/// `at` (one probe of the queue index each). One round trip instead of three or more: on SQLite
/// each round trip holds the one writer while it waits for a tokio worker (BENCHMARKS.md).
async fn look_up(
    conn: &impl ConnectionTrait,
    ids: &[&str],
    probe: &[String],
    at: DateTime<Utc>,
) -> Result<LookedUp, StoreError> {
    let backend = conn.get_database_backend();
    let mut looked = LookedUp {
        known: HashSet::new(),
        epoch: 0,
        due: HashSet::new(),
    };
    // Ids beyond the first chunk (a group larger than any the ingest makes) are asked apart.
    let (first, rest) = ids.split_at(ids.len().min(ID_CHUNK));
    let mut p = Params::new(backend);
    let mut arms = Vec::new();
    if !first.is_empty() {
        let list = p.list(first.iter().copied());
        arms.push(format!(
            "SELECT 'alert' AS kind, id AS value FROM alerts WHERE id IN ({list})"
        ));
    }
    arms.push(format!(
        "SELECT 'epoch', CAST(n AS TEXT) FROM ({}) AS epoch",
        super::snapshot::epoch_select(backend)
    ));
    if !probe.is_empty() {
        let list = p.values(probe.iter().map(|id| [Value::from(id.as_str())]));
        let due = p.push(at);
        arms.push(format!(
            "SELECT 'due', v.column1 FROM ({list}) AS v WHERE EXISTS (\
               SELECT 1 FROM deliveries WHERE destination_id = v.column1 \
               AND state IN {} AND next_attempt_at <= {due})",
            deliveries::OPEN_STATES
        ));
    }
    let mut epoch = None;
    for row in conn
        .query_all_raw(p.statement(arms.join(" UNION ALL ")))
        .await?
    {
        let kind: String = row.try_get("", "kind")?;
        let value: String = row.try_get("", "value")?;
        match kind.as_str() {
            "alert" => {
                looked.known.insert(value);
            }
            "due" => {
                looked.due.insert(value);
            }
            _ => epoch = value.parse::<i64>().ok(),
        }
    }
    looked.epoch =
        epoch.ok_or_else(|| StoreError::Corrupt("destination_epoch has no row".into()))?;
    for chunk in rest.chunks(ID_CHUNK) {
        let mut p = Params::new(backend);
        let list = p.list(chunk.iter().copied());
        for row in conn
            .query_all_raw(p.statement(format!("SELECT id FROM alerts WHERE id IN ({list})")))
            .await?
        {
            looked.known.insert(row.try_get::<String>("", "id")?);
        }
    }
    Ok(looked)
}

/// Ids per `IN (…)` list: a whole alert group in one statement, far below both databases' bounds
/// on parameters (SQLite 32,766; PostgreSQL 65,535).
const ID_CHUNK: usize = 4000;

/// One multi-row INSERT of alert rows.
fn insert_statement<'a>(
    backend: DatabaseBackend,
    rows: impl Iterator<Item = &'a alert::Model>,
) -> Statement {
    let mut p = Params::new(backend);
    let values = p.table(rows.map(|m| -> [Value; 10] {
        [
            m.id.as_str().into(),
            m.detection_id.as_str().into(),
            m.title.as_str().into(),
            m.severity.as_str().into(),
            m.alert_type.as_str().into(),
            m.created_at.into(),
            m.received_at.into(),
            m.body.as_str().into(),
            m.routing.as_str().into(),
            m.log_types.as_str().into(),
        ]
    }));
    p.statement(format!(
        "INSERT INTO alerts (id, detection_id, title, severity, alert_type, created_at, \
         received_at, body, routing, log_types) {values}"
    ))
}

async fn load_accepted(
    conn: &impl ConnectionTrait,
    id: &str,
    duplicate: bool,
) -> Result<Accepted, StoreError> {
    let model = alert::Entity::find_by_id(id.to_owned())
        .one(conn)
        .await?
        .ok_or_else(|| StoreError::NotFound {
            kind: "alert",
            id: id.to_owned(),
        })?;
    let routing: StoredRouting = serde_json::from_str(&model.routing).unwrap_or_default();
    let deliveries = deliveries::for_alert(conn, id)
        .await?
        .into_iter()
        .filter(|d| d.resend_of.is_none())
        .collect();
    Ok(Accepted {
        alert: Alert::try_from(model)?,
        deliveries,
        warnings: routing.warnings,
        duplicate,
    })
}

/// Stores an alert with no routing (the synchronous test alert) and its one delivery, already
/// leased to `worker`: the caller sends it at once, and the queue must not send it as well.
/// Recorded as `alert.test_sent` on the destination.
pub async fn insert_test(
    db: &DatabaseConnection,
    actor: &Actor,
    payload: &PantherPayload,
    destination_id: &str,
    label: &str,
    worker: &str,
    lease: std::time::Duration,
) -> Result<(Alert, Delivery), StoreError> {
    let txn = super::begin_write(db).await?;
    let at = now();
    let model = alert::Entity::insert(alert::ActiveModel {
        id: Set(payload.alert_id.clone()),
        detection_id: Set(payload.id.clone()),
        title: Set(payload.title.clone()),
        severity: Set(payload.severity.to_string()),
        alert_type: Set(payload.alert_type.to_string()),
        created_at: Set(payload.created_at),
        received_at: Set(at),
        body: Set(payload.to_bytes()),
        routing: Set(serde_json::to_string(&StoredRouting::default()).expect("serializes")),
        log_types: Set(log_types_json(&[])),
    })
    .exec_with_returning(&txn)
    .await?;
    // The test alert goes at once whatever the destination's rate limit, but it counts: the
    // receiver sees it like any other request.
    super::destinations::draw_unconditional(&txn, destination_id, at).await?;
    let lease_end = at + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::minutes(5));
    let mut delivery = deliveries::new_model(
        &payload.alert_id,
        destination_id,
        label,
        ids::webhook(),
        None,
        true,
        at,
    );
    delivery.lease_owner = Some(worker.to_owned());
    delivery.lease_expires_at = Some(lease_end);
    delivery.next_attempt_at = Some(lease_end);
    txn.execute_raw(deliveries::insert_statement(
        txn.get_database_backend(),
        [&delivery].into_iter(),
    ))
    .await?;
    audit::record(
        &txn,
        actor,
        Action::AlertTestSent,
        Some(destination_id),
        &[],
    )
    .await?;
    txn.commit().await?;
    Ok((Alert::try_from(model)?, Delivery::try_from(delivery)?))
}

pub async fn get(conn: &impl ConnectionTrait, id: &str) -> Result<Option<Alert>, StoreError> {
    alert::Entity::find_by_id(id.to_owned())
        .one(conn)
        .await?
        .map(Alert::try_from)
        .transpose()
}

/// The alerts with these ids that exist, in one query per 500 ids.
pub async fn get_many(
    conn: &impl ConnectionTrait,
    ids: &[String],
) -> Result<Vec<Alert>, StoreError> {
    let mut out = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(INSERT_CHUNK) {
        for m in alert::Entity::find()
            .filter(alert::Column::Id.is_in(chunk.iter().cloned()))
            .all(conn)
            .await?
        {
            out.push(Alert::try_from(m)?);
        }
    }
    Ok(out)
}

/// Newest first. The cursor is `<received_at>|<id>`. `with_total`: whether the page needs
/// `total_count` (0 when not), a count over every matching alert.
pub async fn list(
    conn: &impl ConnectionTrait,
    first: u64,
    after: Option<&str>,
    severity: Option<Severity>,
    since: Option<DateTime<Utc>>,
    with_total: bool,
) -> Result<Page<Alert>, StoreError> {
    let mut cond = Condition::all();
    if let Some(s) = severity {
        cond = cond.add(alert::Column::Severity.eq(s.to_string()));
    }
    if let Some(t) = since {
        cond = cond.add(alert::Column::ReceivedAt.gte(t));
    }
    let total_count = if with_total {
        alert::Entity::find()
            .filter(cond.clone())
            .count(conn)
            .await?
    } else {
        0
    };
    if let Some((t, id)) = after.and_then(parse_cursor) {
        cond = cond.add(
            Condition::any().add(alert::Column::ReceivedAt.lt(t)).add(
                Condition::all()
                    .add(alert::Column::ReceivedAt.eq(t))
                    .add(alert::Column::Id.lt(id)),
            ),
        );
    }
    let rows = alert::Entity::find()
        .filter(cond)
        .order_by_desc(alert::Column::ReceivedAt)
        .order_by_desc(alert::Column::Id)
        .limit(first + 1)
        .all(conn)
        .await?;
    Page::from_rows(rows, first, total_count)
}

pub fn cursor(a: &Alert) -> String {
    format!("{}|{}", a.received_at.to_rfc3339(), a.id)
}

fn parse_cursor(c: &str) -> Option<(DateTime<Utc>, String)> {
    let (t, id) = c.split_once('|')?;
    Some((
        DateTime::parse_from_rfc3339(t).ok()?.with_timezone(&Utc),
        id.to_owned(),
    ))
}
