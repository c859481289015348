//! The large-database scenario's history: a million deliveries, written in minutes instead of the
//! hours the API would take, yet in the exact shape Herald writes. Herald itself writes one
//! template of each kind (a delivered alert with its attempt, a failed one with its eleven
//! attempts, real destinations with encrypted secrets); bulk SQL then copies the template rows
//! under new ids, column by column as the live schema has them, so a new column in a later
//! migration is copied too instead of being left out.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use herald_testkit::PgCluster;
use serde_json::json;

use crate::server::{Bins, Herald, Receiver};

/// The database a scenario runs on, reachable by its shell client for bulk SQL.
pub enum Db<'a> {
    Sqlite(PathBuf),
    Postgres { pg: &'a PgCluster, name: String },
}

impl Db<'_> {
    pub fn url(&self) -> String {
        match self {
            Db::Sqlite(path) => format!("sqlite://{}", path.display()),
            Db::Postgres { pg, name } => pg.url(name),
        }
    }

    /// Runs a script; returns stdout (one row a line, columns separated by `|`).
    pub fn sql(&self, script: &str) -> anyhow::Result<String> {
        let mut cmd = match self {
            Db::Sqlite(path) => {
                let mut c = Command::new("sqlite3");
                c.args(["-bail", "-noheader", "-list"]).arg(path);
                c
            }
            Db::Postgres { pg, name } => {
                let mut c = Command::new("psql");
                c.args([
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &pg.port.to_string(),
                    "-U",
                    "postgres",
                ])
                .args(["-d", name, "-v", "ON_ERROR_STOP=1", "-qAt", "-1"]);
                c
            }
        };
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("run the database's shell client (sqlite3 or psql)")?;
        child
            .stdin
            .take()
            .context("client stdin")?
            .write_all(script.as_bytes())?;
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!(
                "bulk SQL failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// PostgreSQL's counters for this database; `None` on SQLite, which keeps none.
    pub fn activity(&self) -> Option<Activity> {
        if matches!(self, Db::Sqlite(_)) {
            return None;
        }
        let line = self
            .sql(
                "SELECT xact_commit, tup_inserted, tup_updated, tup_deleted FROM pg_stat_database \
                 WHERE datname = current_database();",
            )
            .ok()?;
        let v: Vec<f64> = line
            .split('|')
            .filter_map(|f| f.trim().parse().ok())
            .collect();
        (v.len() == 4).then(|| Activity {
            commits: v[0],
            inserted: v[1],
            updated: v[2],
            deleted: v[3],
        })
    }

    fn columns(&self, table: &str) -> anyhow::Result<Vec<String>> {
        let query = match self {
            Db::Sqlite(_) => format!("SELECT name FROM pragma_table_info('{table}');"),
            Db::Postgres { .. } => format!(
                "SELECT column_name FROM information_schema.columns \
                 WHERE table_schema = 'public' AND table_name = '{table}' ORDER BY ordinal_position;"
            ),
        };
        let cols: Vec<String> = self.sql(&query)?.lines().map(str::to_owned).collect();
        if cols.is_empty() {
            bail!("table {table} has no columns: was the database migrated?");
        }
        Ok(cols)
    }

    /// `INSERT INTO table (every column but `skip`) SELECT <override or t.column> FROM <from>`.
    fn copy_rows(
        &self,
        table: &str,
        skip: &[&str],
        overrides: &[(&str, String)],
        from: &str,
    ) -> anyhow::Result<String> {
        let cols: Vec<String> = self
            .columns(table)?
            .into_iter()
            .filter(|c| !skip.contains(&c.as_str()))
            .collect();
        let exprs: Vec<String> = cols
            .iter()
            .map(|c| {
                overrides
                    .iter()
                    .find(|(name, _)| name == c)
                    .map(|(_, e)| e.clone())
                    .unwrap_or_else(|| format!("t.{c}"))
            })
            .collect();
        Ok(format!(
            "INSERT INTO {table} ({}) SELECT {} FROM {from};\n",
            cols.join(", "),
            exprs.join(", ")
        ))
    }
}

/// Commits and rows written, from `pg_stat_database`.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct Activity {
    pub commits: f64,
    pub inserted: f64,
    pub updated: f64,
    pub deleted: f64,
}

impl Activity {
    pub fn since(&self, before: &Activity) -> Activity {
        Activity {
            commits: self.commits - before.commits,
            inserted: self.inserted - before.inserted,
            updated: self.updated - before.updated,
            deleted: self.deleted - before.deleted,
        }
    }
}

/// What the seeded database holds, for the queries and the throughput run on it.
pub struct Seeded {
    /// A destination with failed deliveries among its history.
    pub failing_destination: String,
    /// Ids of the seeded alerts are `alert_id(n)` for n in 0..count.
    base_ms: u64,
    pub count: u64,
    pub token: String,
}

impl Seeded {
    /// Seeded ids look like the UUIDv7 hex Herald writes: a millisecond time (one per row,
    /// ending well before the run) and a counter; sorting by id is sorting by age, as for real
    /// rows.
    pub fn alert_id(&self, n: u64) -> String {
        format!("{:012x}{:020x}", self.base_ms + n, n)
    }
}

const TEMPLATE_ALERT: &str = "herald-bench-template-alert";
/// One delivery in 20 of the history failed (retries used up).
const FAILED_EVERY: u64 = 20;

/// Seeds `deliveries` deliveries (one per alert) over `destinations` destinations. Runs its own
/// server with a fast retry schedule to write the templates, and stops it before the bulk SQL.
pub async fn seed(
    bins: &Bins,
    db: &Db<'_>,
    dir: &std::path::Path,
    receiver: &Receiver,
    deliveries: u64,
    destinations: u32,
) -> anyhow::Result<Seeded> {
    let fast = "10ms,10ms,10ms,10ms,10ms,10ms,10ms,10ms,10ms,10ms";
    let herald = Herald::start(
        bins,
        &db.url(),
        dir,
        &[
            ("HERALD_RETRY_SCHEDULE", fast),
            ("HERALD_POLL_INTERVAL", "50ms"),
        ],
    )
    .await?;
    let gql = herald.gql.clone();
    let low = json!({"severities": ["LOW"]});
    let ok_dest = gql
        .create_destination("history-ok", &receiver.url("/s-ok"), low.clone())
        .await?;
    let failing_destination = gql
        .create_destination(
            "history-failing",
            &receiver.url("/fail-history"),
            low.clone(),
        )
        .await?;
    gql.call(
        "mutation($i: SendAlertInput!) { sendAlert(input: $i) { alert { id } } }",
        json!({"i": {"alertId": TEMPLATE_ALERT, "detectionId": "Bench.History", "title": "history", "severity": "LOW", "context": {"seeded": true}}}),
    )
    .await?;
    // Both template deliveries must be final (one SUCCEEDED, one FAILED after every retry).
    let deadline = Instant::now() + Duration::from_secs(60);
    let (ok_dlv, failed_dlv) = loop {
        let data = gql
            .call(
                "query($id: ID!) { alert(id: $id) { deliveries { id destinationId state } } }",
                json!({"id": TEMPLATE_ALERT}),
            )
            .await?;
        let list = data["alert"]["deliveries"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let find = |dest: &str, state: &str| {
            list.iter()
                .find(|d| d["destinationId"] == dest && d["state"] == state)
                .and_then(|d| d["id"].as_str().map(str::to_owned))
        };
        if let (Some(ok), Some(failed)) = (
            find(&ok_dest, "SUCCEEDED"),
            find(&failing_destination, "FAILED"),
        ) {
            break (ok, failed);
        }
        if Instant::now() > deadline {
            bail!("the template deliveries did not finish within 60 s: {list:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // The rest of the destinations, LOW only like the two above, 64 to a task.
    let rest: Vec<u32> = (2..destinations.saturating_sub(1)).collect();
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in rest.chunks(64) {
        let gql = gql.clone();
        let url = receiver.url("/s-history");
        let chunk = chunk.to_vec();
        let low = low.clone();
        tasks.spawn(async move {
            for i in chunk {
                gql.create_destination(&format!("history-{i}"), &url, low.clone())
                    .await?;
            }
            anyhow::Ok(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    // The one destination that takes the benchmark's HIGH alerts; every other one takes LOW only,
    // so the throughput run on this database sends to one destination as `single` does.
    let bench_destination = gql
        .create_destination("bench", &receiver.url("/d0"), json!({}))
        .await?;
    let token = herald.token().to_owned();
    herald.stop()?;

    let now_ms = crate::load::now_us() / 1000;
    // The history ends ten minutes before now, one millisecond per row.
    let base_ms = now_ms - deliveries - 600_000;
    let seq = match db {
        Db::Sqlite(_) => format!(
            "CREATE TEMP TABLE seed_seq AS WITH RECURSIVE s(n) AS \
             (SELECT 0 UNION ALL SELECT n + 1 FROM s WHERE n + 1 < {deliveries}) \
             SELECT n, printf('%012x%020x', {base_ms} + n, n) AS hex FROM s;\n"
        ),
        Db::Postgres { .. } => format!(
            "CREATE TEMP TABLE seed_seq AS SELECT n, \
             lpad(to_hex({base_ms} + n), 12, '0') || lpad(to_hex(n), 20, '0') AS hex \
             FROM generate_series(0::bigint, {deliveries} - 1) AS n;\n"
        ),
    };
    let pick =
        format!("CASE WHEN s.n % {FAILED_EVERY} = 0 THEN '{failed_dlv}' ELSE '{ok_dlv}' END");
    let mut script = String::new();
    if matches!(db, Db::Sqlite(_)) {
        script.push_str("BEGIN;\n");
    }
    script.push_str(&seq);
    script.push_str(&format!(
        "CREATE TEMP TABLE seed_dest AS SELECT (row_number() OVER (ORDER BY id)) - 1 AS k, id \
         FROM destinations WHERE id <> '{bench_destination}';\n"
    ));
    let others = destinations.saturating_sub(1).max(1);
    script.push_str(&db.copy_rows(
        "alerts",
        &[],
        &[
            ("id", "s.hex".into()),
            (
                "body",
                format!("replace(t.body, '{TEMPLATE_ALERT}', s.hex)"),
            ),
        ],
        &format!("seed_seq s CROSS JOIN alerts t WHERE t.id = '{TEMPLATE_ALERT}'"),
    )?);
    script.push_str(&db.copy_rows(
        "deliveries",
        &[],
        &[
            ("id", "'dlv_' || s.hex".into()),
            ("alert_id", "s.hex".into()),
            ("destination_id", "d.id".into()),
            ("webhook_id", "'msg_' || s.hex".into()),
        ],
        &format!(
            "seed_seq s JOIN seed_dest d ON d.k = s.n % {others} JOIN deliveries t ON t.id = {pick}"
        ),
    )?);
    script.push_str(&db.copy_rows(
        "delivery_attempts",
        &["id"],
        &[("delivery_id", "'dlv_' || s.hex".into())],
        &format!("seed_seq s JOIN delivery_attempts t ON t.delivery_id = {pick}"),
    )?);
    if let Db::Sqlite(_) = db {
        script.push_str("COMMIT;\n");
    }
    db.sql(&script)?;
    // PostgreSQL: VACUUM ANALYZE, as autovacuum does within a minute of such a load (insert
    // thresholds), so the queries are measured on the database as it settles rather than beside
    // autovacuum's passes over the new tables (with only ANALYZE here, autovacuum was seen working
    // through deliveries and alerts while the queries ran). VACUUM cannot run in the script's
    // transaction. SQLite keeps no statistics unless asked (Herald does not run ANALYZE), so it
    // gets none, as in production.
    if let Db::Postgres { pg, name } = db {
        pg.psql(name, "VACUUM ANALYZE")?;
    }
    let stored = db.sql("SELECT count(*) FROM deliveries;")?;
    let stored: u64 = stored.trim().parse().context("count deliveries")?;
    if stored < deliveries {
        bail!("seeding wrote {stored} deliveries, not {deliveries}");
    }
    Ok(Seeded {
        failing_destination,
        base_ms,
        count: deliveries,
        token,
    })
}
