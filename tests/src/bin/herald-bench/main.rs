//! Herald's benchmark suite (issue 12): every scenario of the target table on SQLite and on a
//! durable PostgreSQL 15, from one command, as one table. Each scenario runs a real `herald serve`
//! (the binary next to this one) on a fresh database, the receiver `herald-bench-receiver` in its
//! own process, and this process as the load generator; CPU is read per process from /proc, so the
//! table says which of the three was the bottleneck.
//!
//! cargo build --release -p herald-server -p herald-testkit -p terraform-provider-herald --bins
//! target/release/herald-bench                       # everything, both databases
//! target/release/herald-bench --db sqlite --scenario single,latency --duration 10s
//! cargo run -p herald-testkit --bin herald-bench -- --smoke   # seconds; asserts it runs, not speed

#![forbid(unsafe_code)]

mod load;
mod procstat;
mod report;
mod scenario;
mod seed;
mod server;
mod terraform;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::bail;
use clap::{Parser, ValueEnum};
use herald_testkit::PgCluster;

use report::Row;
use scenario::{Backend, Ctx, Settings, Throughput};
use server::Bins;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum DbChoice {
    Sqlite,
    Postgres,
    Both,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
enum ScenarioName {
    Receiver,
    Single,
    Batched,
    Fanout,
    Latency,
    RetryStorm,
    LargeDb,
    /// large-db's seeding and its four queries without the throughput load: for iterating on
    /// the queries (with `--large-db-pause` to EXPLAIN against the seeded database).
    LargeDbQueries,
    /// `terraform apply`/`destroy`/`plan` with the provider next to `terraform_data`.
    Terraform,
    All,
}

impl ScenarioName {
    /// The name as `--scenario` spells it.
    fn label(self) -> String {
        self.to_possible_value()
            .expect("every scenario has a name")
            .get_name()
            .to_owned()
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "herald-bench",
    about = "Runs issue 12's benchmark scenarios against a real herald serve and prints one table"
)]
struct Args {
    /// The database(s) to run on; PostgreSQL is a throwaway PostgreSQL 15 cluster with fsync on.
    #[arg(long, value_enum, default_value = "both")]
    db: DbChoice,

    /// Scenarios, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "all")]
    scenario: Vec<ScenarioName>,

    /// How long each scenario sends (e.g. 15s, 500ms, 2m). Default: 15s for the throughput
    /// scenarios, 30s for the steady-rate ones (latency, retry-storm).
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,

    /// A seconds-long run of every selected scenario at tiny sizes: checks that the suite runs
    /// and reports (no speed is asserted).
    #[arg(long)]
    smoke: bool,

    /// Also write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,

    /// Deliveries stored before the large-db scenario.
    #[arg(long, default_value_t = 1_000_000)]
    large_db_deliveries: u64,

    /// Destinations stored before the large-db scenario (at least 3).
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u32).range(3..))]
    large_db_destinations: u32,

    /// Alerts per second of the steady-rate scenarios.
    #[arg(long, default_value_t = 1_000.0)]
    rate: f64,

    /// Concurrent connections of the closed-loop scenarios.
    #[arg(long, default_value_t = 32)]
    connections: usize,

    /// How long to wait, after the load stops, for the receiver to get every delivery; past it
    /// the rate is of what arrived and the row says the drain was cut.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    drain_timeout: Duration,

    /// Calls per large-db query.
    #[arg(long, default_value_t = 200)]
    query_samples: usize,

    /// After the large-db queries, print the database's URL and the server's API token and keep
    /// both running this long (e.g. 10m), to EXPLAIN or profile against the seeded database.
    #[arg(long, value_parser = parse_duration)]
    large_db_pause: Option<Duration>,

    /// Resources per `terraform apply` and `destroy` in the terraform scenario.
    #[arg(long, default_value_t = 100)]
    tf_apply: usize,

    /// Destinations under the terraform scenario's no-change `terraform plan`.
    #[arg(long, default_value_t = 1_000)]
    tf_plan: usize,

    /// Runs of each Terraform command; the table shows the median.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    tf_repeat: u32,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: f64 = n
        .parse()
        .map_err(|_| format!("{s:?} is not a duration such as 15s, 500ms or 2m"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("{s:?} is not a duration such as 15s, 500ms or 2m")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("{s:?}: {e}"))
}

impl Args {
    fn settings(&self) -> Settings {
        let secs = Duration::from_secs;
        if self.smoke {
            let d = self.duration.unwrap_or(secs(1));
            return Settings {
                throughput_duration: d,
                steady_duration: d,
                receiver_duration: d.min(secs(1)),
                drain_timeout: self.drain_timeout.min(secs(30)),
                rate: self.rate.min(100.0),
                connections: self.connections.min(4),
                batch: 100,
                fanout: 10,
                large_db_deliveries: self.large_db_deliveries.min(2_000),
                large_db_destinations: self.large_db_destinations.min(20),
                query_samples: self.query_samples.min(5),
                large_db_pause: None,
            };
        }
        let throughput = self.duration.unwrap_or(secs(15));
        Settings {
            throughput_duration: throughput,
            steady_duration: self.duration.unwrap_or(secs(30)),
            receiver_duration: throughput.min(secs(10)),
            drain_timeout: self.drain_timeout,
            rate: self.rate,
            connections: self.connections,
            batch: 100,
            fanout: 10,
            large_db_deliveries: self.large_db_deliveries,
            large_db_destinations: self.large_db_destinations,
            query_samples: self.query_samples,
            large_db_pause: self.large_db_pause,
        }
    }

    fn terraform_sizes(&self) -> terraform::Sizes {
        if self.smoke {
            return terraform::Sizes {
                apply: self.tf_apply.min(3),
                plan: self.tf_plan.min(5),
                repeat: 1,
            };
        }
        terraform::Sizes {
            apply: self.tf_apply,
            plan: self.tf_plan,
            repeat: self.tf_repeat as usize,
        }
    }

    fn wants(&self, s: ScenarioName) -> bool {
        self.scenario.contains(&ScenarioName::All) || self.scenario.contains(&s)
    }
}

fn failed(scenario: &str, db: &str, e: &anyhow::Error) -> Row {
    Row {
        scenario: scenario.to_owned(),
        db: db.to_owned(),
        failure: Some(format!("{e:#}")),
        ..Row::default()
    }
}

fn machine() -> serde_json::Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|m| m.trim().to_owned());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_kb: Option<u64> = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok());
    serde_json::json!({
        "nproc": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "cpu_model": model,
        "memory_gib": mem_kb.map(|kb| (kb as f64 / 1024.0 / 1024.0 * 10.0).round() / 10.0),
        "release_build": !cfg!(debug_assertions),
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let settings = args.settings();
    let bins = Bins::find()?;
    let backends: Vec<Backend> = match args.db {
        DbChoice::Sqlite => vec![Backend::Sqlite],
        DbChoice::Postgres => vec![Backend::Postgres],
        DbChoice::Both => vec![Backend::Sqlite, Backend::Postgres],
    };
    if cfg!(debug_assertions) && !args.smoke {
        eprintln!(
            "herald-bench: this is a debug build; figures for BENCHMARKS.md come from --release builds"
        );
    }
    // A missing provider binary fails the terraform rows, not the run: the other scenarios
    // still measure.
    let (tf_tools, tf_missing) = if args.wants(ScenarioName::Terraform) {
        match terraform::Tools::find() {
            Ok(tools) => (tools, None),
            Err(e) => (None, Some(e)),
        }
    } else {
        (None, None)
    };
    let started = Instant::now();
    // One durable cluster for the run; each scenario takes a new database in it.
    let pg = if backends.contains(&Backend::Postgres) {
        Some(PgCluster::start(true)?)
    } else {
        None
    };
    let ctx = Ctx {
        bins: &bins,
        pg: pg.as_ref(),
        settings: &settings,
    };
    let mut rows: Vec<Row> = Vec::new();
    let mut tf_rows: Vec<terraform::TfRow> = Vec::new();
    let progress = |what: &str, db: &str| {
        eprintln!(
            "herald-bench: [{:>4.0}s] {what} on {db}",
            started.elapsed().as_secs_f64()
        );
    };

    if args.wants(ScenarioName::Receiver) {
        progress("receiver", "no database");
        rows.push(
            scenario::receiver_alone(&ctx)
                .await
                .unwrap_or_else(|e| failed("receiver", "none", &e)),
        );
    }
    for &backend in &backends {
        let db = backend.name();
        for (name, kind) in [
            (ScenarioName::Single, Throughput::Single),
            (ScenarioName::Batched, Throughput::Batched),
            (ScenarioName::Fanout, Throughput::Fanout),
        ] {
            if args.wants(name) {
                let label = name.label();
                progress(&label, db);
                rows.push(
                    scenario::throughput(&ctx, backend, kind)
                        .await
                        .unwrap_or_else(|e| failed(&label, db, &e)),
                );
            }
        }
        for (name, storm) in [
            (ScenarioName::Latency, false),
            (ScenarioName::RetryStorm, true),
        ] {
            if args.wants(name) {
                let label = name.label();
                progress(&label, db);
                rows.push(
                    scenario::steady(&ctx, backend, storm)
                        .await
                        .unwrap_or_else(|e| failed(&label, db, &e)),
                );
            }
        }
        let with_load = args.wants(ScenarioName::LargeDb);
        if with_load || args.wants(ScenarioName::LargeDbQueries) {
            progress("large-db", db);
            match scenario::large_db(&ctx, backend, with_load).await {
                Ok(r) => rows.extend(r),
                Err(e) => rows.push(failed("large-db", db, &e)),
            }
        }
        if let Some(e) = &tf_missing {
            tf_rows.push(terraform::TfRow::failed(db, e));
        }
        if let Some(tools) = &tf_tools {
            progress("terraform", db);
            match terraform::run(&ctx, tools, backend, &args.terraform_sizes()).await {
                Ok(r) => tf_rows.extend(r),
                Err(e) => tf_rows.push(terraform::TfRow::failed(db, &e)),
            }
        }
    }
    report::evaluate(&mut rows);

    if !rows.is_empty() {
        println!("\n{}", report::markdown(&rows));
    }
    if !tf_rows.is_empty() {
        println!("\n{}", terraform::markdown(&tf_rows, tf_tools.as_ref()));
    }
    println!(
        "Settings: {}s per throughput scenario, {}s at {} alerts/s for the steady ones, {} connections, drain timeout {}s; whole run {:.0}s.",
        settings.throughput_duration.as_secs_f64(),
        settings.steady_duration.as_secs_f64(),
        settings.rate,
        settings.connections,
        settings.drain_timeout.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    if let Some(path) = &args.json {
        let doc = serde_json::json!({
            "machine": machine(),
            "settings": settings,
            "rows": rows,
            "terraform": tf_rows,
        });
        std::fs::write(path, serde_json::to_vec_pretty(&doc)?)?;
    }

    // The suite must run and report: a scenario that could not run fails the command, and in the
    // smoke run so does any failed call or a scenario that measured nothing; a missed target
    // never does (under overload, failed calls are a finding, reported in the row's notes).
    let mut broken: Vec<String> = rows
        .iter()
        .filter_map(|r| {
            if let Some(f) = &r.failure {
                Some(format!("{} on {}: {f}", r.scenario, r.db))
            } else if r.errors > 0 && args.smoke {
                Some(format!(
                    "{} on {}: {} calls failed",
                    r.scenario, r.db, r.errors
                ))
            } else if r.received == 0 {
                Some(format!("{} on {}: nothing measured", r.scenario, r.db))
            } else {
                None
            }
        })
        .collect();
    broken.extend(
        tf_rows
            .iter()
            .filter_map(|r| Some(format!("terraform on {}: {}", r.db, r.failure.as_ref()?))),
    );
    if !broken.is_empty() {
        bail!(
            "the benchmark did not run cleanly:\n  {}",
            broken.join("\n  ")
        );
    }
    Ok(())
}
