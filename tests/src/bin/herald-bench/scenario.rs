//! The scenarios of issue 12's target table. Each runs its own `herald serve` on a fresh database
//! and its own receiver, warms both up with one alert, then measures one window: from the first
//! call to the moment the receiver has every delivery (or the drain timeout).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use herald_testkit::PgCluster;
use serde_json::json;

use crate::load::{self, Call, Outcome, now_us};
use crate::procstat::{self, Usage, Watched};
use crate::report::Row;
use crate::seed::{self, Db};
use crate::server::{Bins, Herald, Receiver, ReceiverStats};

/// Sizes and times of a run (the smoke run shrinks them).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Settings {
    pub throughput_duration: Duration,
    pub steady_duration: Duration,
    pub receiver_duration: Duration,
    pub drain_timeout: Duration,
    pub rate: f64,
    pub connections: usize,
    pub batch: usize,
    pub fanout: usize,
    pub large_db_deliveries: u64,
    pub large_db_destinations: u32,
    pub query_samples: usize,
    pub large_db_pause: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::Postgres => "PostgreSQL",
        }
    }
}

pub struct Ctx<'a> {
    pub bins: &'a Bins,
    pub pg: Option<&'a PgCluster>,
    pub settings: &'a Settings,
}

impl<'a> Ctx<'a> {
    pub fn database(&self, backend: Backend, dir: &Path) -> anyhow::Result<Db<'a>> {
        Ok(match backend {
            Backend::Sqlite => Db::Sqlite(dir.join("bench.db")),
            Backend::Postgres => {
                let pg = self.pg.context("no PostgreSQL cluster was started")?;
                let url = pg.create_database();
                let name = url.rsplit('/').next().unwrap_or_default().to_owned();
                Db::Postgres { pg, name }
            }
        })
    }

    fn watched(&self, herald: &Herald, receiver: &Receiver, backend: Backend) -> Watched {
        Watched {
            server: herald.pid(),
            receiver: receiver.pid(),
            postmaster: match backend {
                Backend::Postgres => self.pg.and_then(|pg| procstat::postmaster_pid(pg.port)),
                Backend::Sqlite => None,
            },
        }
    }
}

/// One measured window.
struct Measured {
    /// PostgreSQL's own count of commits and rows written over the window.
    db_activity: Option<seed::Activity>,
    outcome: Outcome,
    stats: ReceiverStats,
    usage: Usage,
    expected: u64,
    /// Wall clock (µs) when the load started.
    wall_start_us: u64,
    peak_rss_mb: Option<f64>,
}

impl Measured {
    fn row(&self, scenario: &str, backend: Backend) -> Row {
        let received = self.stats.ok;
        let span_s = self
            .stats
            .last_at_us
            .map(|last| last.saturating_sub(self.wall_start_us) as f64 / 1e6)
            .filter(|s| *s > 0.0);
        let per_core = |cpu: f64| Some(cpu / self.usage.wall);
        let mut row = Row {
            scenario: scenario.to_owned(),
            db: backend.name().to_owned(),
            alerts_per_s: Some(
                self.outcome.alerts_accepted as f64 / self.outcome.elapsed.as_secs_f64(),
            ),
            deliveries_per_s: span_s.map(|s| received as f64 / s),
            received,
            expected: self.expected,
            api_p50_ms: self.outcome.percentile_ms(0.50),
            api_p99_ms: self.outcome.percentile_ms(0.99),
            receipt_p50_ms: (self.stats.latency_count > 0)
                .then(|| self.stats.latency_p50_us as f64 / 1000.0),
            receipt_p99_ms: (self.stats.latency_count > 0)
                .then(|| self.stats.latency_p99_us as f64 / 1000.0),
            receipt_max_ms: (self.stats.latency_count > 0)
                .then(|| self.stats.latency_max_us as f64 / 1000.0),
            peak_rss_mb: self.peak_rss_mb,
            server_cpu_s_per_1k: (received > 0)
                .then(|| self.usage.server / (received as f64 / 1000.0)),
            postgres_cpu_s_per_1k: self
                .usage
                .postgres
                .filter(|_| received > 0)
                .map(|pg| pg / (received as f64 / 1000.0)),
            cores_server: per_core(self.usage.server),
            cores_postgres: self.usage.postgres.and_then(per_core),
            cores_receiver: per_core(self.usage.receiver),
            cores_generator: per_core(self.usage.generator),
            cores_other: per_core(self.usage.other),
            window_s: self.usage.wall,
            errors: self.outcome.errors,
            ..Row::default()
        };
        if let Some(e) = &self.outcome.first_error {
            row.notes
                .push(format!("{} calls failed, first: {e}", self.outcome.errors));
        }
        if received < self.expected {
            row.notes.push(format!(
                "drain cut after the timeout: {received} of {} deliveries received",
                self.expected
            ));
        }
        if let Some(a) = &self.db_activity
            && received > 0
        {
            let per = |v: f64| v / received as f64;
            row.notes.push(format!(
                "PostgreSQL per delivery: {:.2} commits, {:.2} rows inserted, {:.2} updated, {:.2} deleted",
                per(a.commits),
                per(a.inserted),
                per(a.updated),
                per(a.deleted)
            ));
            row.postgres_per_delivery = Some(seed::Activity {
                commits: per(a.commits),
                inserted: per(a.inserted),
                updated: per(a.updated),
                deleted: per(a.deleted),
            });
        }
        if self.outcome.late_starts > 0 {
            row.notes.push(format!(
                "{} calls started late (1,000 answers outstanding)",
                self.outcome.late_starts
            ));
        }
        row
    }
}

/// Warm-up (one alert through every destination), then the load, then the drain.
async fn measure(
    ctx: &Ctx<'_>,
    herald: &Herald,
    receiver: &Receiver,
    watched: Watched,
    db: &Db<'_>,
    per_alert: u64,
    load: impl std::future::Future<Output = Outcome>,
) -> anyhow::Result<Measured> {
    herald
        .gql
        .call(
            "mutation($i: SendAlertInput!) { sendAlert(input: $i) { alert { id } } }",
            json!({"i": load::alert("warm-up", now_us())}),
        )
        .await?;
    let warm = receiver
        .wait_for(per_alert, Duration::from_secs(30))
        .await?;
    anyhow::ensure!(
        warm.ok >= per_alert,
        "the warm-up alert did not arrive within 30 s (server log:\n{})",
        herald.log_tail()
    );
    receiver.reset().await?;

    let db_before = db.activity();
    let before = watched.snapshot();
    let wall_start_us = now_us();
    let outcome = load.await;
    let expected = outcome.alerts_accepted * per_alert;
    receiver
        .wait_for(expected, ctx.settings.drain_timeout)
        .await?;
    let after = watched.snapshot();
    let stats = receiver.stats().await?;
    let db_activity = match db_before {
        Some(before) => {
            // PostgreSQL publishes a session's counters within a second of its commits.
            tokio::time::sleep(Duration::from_millis(1_100)).await;
            db.activity().map(|after| after.since(&before))
        }
        None => None,
    };
    Ok(Measured {
        db_activity,
        outcome,
        stats,
        usage: Usage::between(&before, &after),
        expected,
        wall_start_us,
        peak_rss_mb: procstat::peak_rss_mb(herald.pid()),
    })
}

/// The receiver alone: its ceiling in requests per second.
pub async fn receiver_alone(ctx: &Ctx<'_>) -> anyhow::Result<Row> {
    let receiver = Receiver::start(ctx.bins, None)?;
    let pid = receiver.pid();
    let before = (
        Instant::now(),
        procstat::cpu_seconds(pid).unwrap_or(0.0),
        procstat::self_cpu_seconds(),
        procstat::machine_busy_seconds(),
    );
    let outcome = load::receiver_ceiling(
        &receiver.url("/ceiling"),
        ctx.settings.connections,
        ctx.settings.receiver_duration,
    )
    .await;
    let wall = before.0.elapsed().as_secs_f64();
    let rcv_cpu = procstat::cpu_seconds(pid).unwrap_or(0.0) - before.1;
    let gen_cpu = procstat::self_cpu_seconds() - before.2;
    let other = (procstat::machine_busy_seconds() - before.3 - rcv_cpu - gen_cpu).max(0.0);
    let stats = receiver.stats().await?;
    let rate = stats.ok as f64 / outcome.elapsed.as_secs_f64();
    let mut row = Row {
        scenario: "receiver".into(),
        db: "none".into(),
        deliveries_per_s: Some(rate),
        received: stats.ok,
        expected: outcome.alerts_accepted,
        api_p50_ms: outcome.percentile_ms(0.50),
        api_p99_ms: outcome.percentile_ms(0.99),
        cores_receiver: Some(rcv_cpu / wall),
        cores_generator: Some(gen_cpu / wall),
        cores_other: Some(other / wall),
        window_s: wall,
        errors: outcome.errors,
        ..Row::default()
    };
    row.notes
        .push("requests/s straight from the bench; API columns: the receiver's answer time".into());
    if let Some(e) = outcome.first_error {
        row.notes
            .push(format!("{} requests failed, first: {e}", outcome.errors));
    }
    Ok(row)
}

/// The closed-loop scenarios: `single`, `batched`, `fanout`.
#[derive(Debug, Clone, Copy)]
pub enum Throughput {
    Single,
    Batched,
    Fanout,
}

pub async fn throughput(ctx: &Ctx<'_>, backend: Backend, kind: Throughput) -> anyhow::Result<Row> {
    let dir = tempfile::tempdir()?;
    let db = ctx.database(backend, dir.path())?;
    let receiver = Receiver::start(ctx.bins, None)?;
    let herald = Herald::start(ctx.bins, &db.url(), dir.path(), &[]).await?;
    let (name, call, destinations) = match kind {
        Throughput::Single => ("single", Call::Single, 1),
        Throughput::Batched => ("batched", Call::Batch(ctx.settings.batch), 1),
        Throughput::Fanout => ("fanout", Call::Single, ctx.settings.fanout),
    };
    destinations_to(&herald, &receiver, "bench-", "/d", destinations).await?;
    let watched = ctx.watched(&herald, &receiver, backend);
    let gql = herald.gql.clone();
    let m = measure(
        ctx,
        &herald,
        &receiver,
        watched,
        &db,
        destinations as u64,
        load::closed_loop(
            &gql,
            call,
            ctx.settings.connections,
            ctx.settings.throughput_duration,
            name,
        ),
    )
    .await?;
    Ok(m.row(name, backend))
}

/// `n` destinations named `<name>0…` for the receiver's paths `<path>0…` (every severity and type).
async fn destinations_to(
    herald: &Herald,
    receiver: &Receiver,
    name: &str,
    path: &str,
    n: usize,
) -> anyhow::Result<()> {
    for d in 0..n {
        herald
            .gql
            .create_destination(
                &format!("{name}{d}"),
                &receiver.url(&format!("{path}{d}")),
                json!({}),
            )
            .await?;
    }
    Ok(())
}

/// The open-loop scenarios: `latency` (one destination) and `retry-storm` (half of 10
/// destinations answer 500 under a fast retry schedule; only the healthy half is timed).
pub async fn steady(ctx: &Ctx<'_>, backend: Backend, storm: bool) -> anyhow::Result<Row> {
    let dir = tempfile::tempdir()?;
    let db = ctx.database(backend, dir.path())?;
    let receiver = Receiver::start(ctx.bins, Some("/fail"))?;
    // The storm's schedule: every retry within seconds, so failed attempts keep coming during the
    // whole window instead of waiting minutes as the default schedule would.
    let schedule = [(
        "HERALD_RETRY_SCHEDULE",
        "100ms,200ms,500ms,1s,1s,2s,2s,5s,5s,5s",
    )];
    let env: &[(&str, &str)] = if storm { &schedule } else { &[] };
    let herald = Herald::start(ctx.bins, &db.url(), dir.path(), env).await?;
    let (name, healthy, failing) = if storm {
        (
            "retry-storm",
            ctx.settings.fanout / 2,
            ctx.settings.fanout - ctx.settings.fanout / 2,
        )
    } else {
        ("latency", 1, 0)
    };
    destinations_to(&herald, &receiver, "bench-", "/d", healthy).await?;
    destinations_to(&herald, &receiver, "failing-", "/fail-", failing).await?;
    let watched = ctx.watched(&herald, &receiver, backend);
    let gql = herald.gql.clone();
    let m = measure(
        ctx,
        &herald,
        &receiver,
        watched,
        &db,
        healthy as u64,
        load::open_loop(&gql, ctx.settings.rate, ctx.settings.steady_duration, name),
    )
    .await?;
    let mut row = m.row(name, backend);
    if storm {
        row.notes.push(format!(
            "{} attempts answered 500 in the window; deliveries/s and latency: the healthy half",
            m.stats.failed
        ));
    }
    Ok(row)
}

/// The four list and detail queries a console runs, each timed `query_samples` times one after
/// the other on an idle server.
async fn time_queries(
    ctx: &Ctx<'_>,
    herald: &Herald,
    seeded: &seed::Seeded,
    backend: Backend,
) -> anyhow::Result<Vec<Row>> {
    let failed_page = (
        "large-db query: a destination's failed deliveries, first page",
        "query($d: ID!) { destination(id: $d) { deliveries(state: FAILED) { totalCount nodes { id state attemptCount message createdAt alertId } } } }",
    );
    let alert_detail = (
        "large-db query: an alert with its deliveries and attempts",
        "query($a: ID!) { alert(id: $a) { id title severity payload deliveries { id state attemptCount destination { displayName } attempts { number startedAt durationMs statusCode error } } } }",
    );
    let delivery_page = (
        "large-db query: a page of 100 deliveries with their attempts",
        "{ deliveries(first: 100) { totalCount nodes { id state alertId destinationId attemptCount createdAt attempts { number statusCode durationMs } } } }",
    );
    let destination_counts = (
        "large-db query: destinations with their counts",
        "{ destinations(first: 100) { totalCount nodes { id displayName enabled deliveryCounts { pending retrying succeeded failed } } } }",
    );
    let mut rows = Vec::new();
    for (label, query) in [failed_page, alert_detail, delivery_page, destination_counts] {
        let mut times = Vec::with_capacity(ctx.settings.query_samples);
        for i in 0..ctx.settings.query_samples + 3 {
            let vars = if query.contains("$d") {
                json!({"d": seeded.failing_destination})
            } else if query.contains("$a") {
                // A different alert each time, so the figure is not one cached page.
                json!({"a": seeded.alert_id(rand::random_range(0..seeded.count))})
            } else {
                json!({})
            };
            let t = Instant::now();
            let data = herald.gql.call(query, vars).await?;
            let took = t.elapsed();
            anyhow::ensure!(
                data.as_object()
                    .is_some_and(|o| o.values().all(|v| !v.is_null())),
                "{label} answered nothing: {data}"
            );
            if i >= 3 {
                times.push(took);
            }
        }
        times.sort_unstable();
        let ms = |p| load::percentile(&times, p).map(|d| d.as_secs_f64() * 1000.0);
        rows.push(Row {
            scenario: label.to_owned(),
            db: backend.name().to_owned(),
            api_p50_ms: ms(0.50),
            api_p99_ms: ms(0.99),
            received: times.len() as u64,
            expected: ctx.settings.query_samples as u64,
            notes: vec![format!(
                "{} calls one after another on an idle server",
                times.len()
            )],
            ..Row::default()
        });
    }
    Ok(rows)
}

/// `large-db`: a million deliveries and a thousand destinations stored, then the four queries and
/// (`with_load`) the `single` throughput.
pub async fn large_db(
    ctx: &Ctx<'_>,
    backend: Backend,
    with_load: bool,
) -> anyhow::Result<Vec<Row>> {
    let dir = tempfile::tempdir()?;
    let db = ctx.database(backend, dir.path())?;
    let receiver = Receiver::start(ctx.bins, Some("/fail"))?;
    let started = Instant::now();
    let seeded = seed::seed(
        ctx.bins,
        &db,
        dir.path(),
        &receiver,
        ctx.settings.large_db_deliveries,
        ctx.settings.large_db_destinations,
    )
    .await?;
    let seed_secs = started.elapsed().as_secs_f64();
    let herald = Herald::serve(ctx.bins, &db.url(), dir.path(), &[], &seeded.token).await?;
    let mut rows = time_queries(ctx, &herald, &seeded, backend).await?;
    if let Some(pause) = ctx.settings.large_db_pause {
        eprintln!(
            "herald-bench: pausing {:.0}s; database {}, GraphQL at {} (token {}), failing destination {}, an alert {}",
            pause.as_secs_f64(),
            db.url(),
            herald.gql.endpoint,
            seeded.token,
            seeded.failing_destination,
            seeded.alert_id(0),
        );
        tokio::time::sleep(pause).await;
    }
    if !with_load {
        return Ok(rows);
    }
    let watched = ctx.watched(&herald, &receiver, backend);
    let gql = herald.gql.clone();
    receiver.reset().await?;
    let m = measure(
        ctx,
        &herald,
        &receiver,
        watched,
        &db,
        1,
        load::closed_loop(
            &gql,
            Call::Single,
            ctx.settings.connections,
            ctx.settings.throughput_duration,
            "large-db",
        ),
    )
    .await?;
    let mut row = m.row("large-db", backend);
    row.notes.push(format!(
        "{} deliveries over {} destinations stored (seeded in {seed_secs:.0} s); single-scenario load to 1 destination",
        seeded.count, ctx.settings.large_db_destinations
    ));
    rows.insert(0, row);
    Ok(rows)
}
