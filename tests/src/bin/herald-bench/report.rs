//! The results: one row per scenario and database, checked against issue 12's targets, printed as
//! one markdown table (and optionally written as JSON).

use serde::Serialize;

/// One scenario on one database. `None` where a figure does not apply.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Row {
    pub scenario: String,
    pub db: String,
    pub alerts_per_s: Option<f64>,
    pub deliveries_per_s: Option<f64>,
    pub received: u64,
    pub expected: u64,
    pub api_p50_ms: Option<f64>,
    pub api_p99_ms: Option<f64>,
    pub receipt_p50_ms: Option<f64>,
    pub receipt_p99_ms: Option<f64>,
    pub receipt_max_ms: Option<f64>,
    pub peak_rss_mb: Option<f64>,
    pub server_cpu_s_per_1k: Option<f64>,
    pub postgres_cpu_s_per_1k: Option<f64>,
    /// CPU used over the measured window, in cores (CPU seconds / wall seconds).
    pub cores_server: Option<f64>,
    pub cores_postgres: Option<f64>,
    pub cores_receiver: Option<f64>,
    pub cores_generator: Option<f64>,
    /// Every other process on the machine (a shared machine's background load).
    pub cores_other: Option<f64>,
    /// PostgreSQL's commits and rows written per delivery received.
    pub postgres_per_delivery: Option<crate::seed::Activity>,
    pub window_s: f64,
    pub errors: u64,
    pub notes: Vec<String>,
    pub targets: Vec<Target>,
    /// Why the scenario could not run, when it could not.
    pub failure: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Target {
    pub what: String,
    pub met: bool,
}

fn check(row: &mut Row, what: String, met: Option<bool>) {
    if let Some(met) = met {
        row.targets.push(Target { what, met });
    }
}

/// Adds each row's targets (issue 12's table). Some compare rows: PostgreSQL against SQLite, the
/// large database against the empty one.
pub fn evaluate(rows: &mut [Row]) {
    let rate_of = |rows: &[Row], scenario: &str, db: &str| {
        rows.iter()
            .find(|r| r.scenario == scenario && r.db == db && r.failure.is_none())
            .and_then(|r| r.deliveries_per_s)
    };
    let snapshot = rows.to_vec();
    for row in rows.iter_mut().filter(|r| r.failure.is_none()) {
        let pg = row.db == "PostgreSQL";
        let floor = match row.scenario.as_str() {
            "single" => Some(5_000.0),
            "batched" | "fanout" => Some(20_000.0),
            _ => None,
        };
        if let Some(floor) = floor {
            if pg {
                if let Some(sqlite) = rate_of(&snapshot, &row.scenario, "SQLite") {
                    let want = sqlite / 2.0;
                    check(
                        row,
                        format!("≥ 50 % of SQLite ({}/s)", int(want)),
                        row.deliveries_per_s.map(|r| r >= want),
                    );
                }
            } else {
                check(
                    row,
                    format!("≥ {}/s", int(floor)),
                    row.deliveries_per_s.map(|r| r >= floor),
                );
            }
        }
        match row.scenario.as_str() {
            "single" => {
                let p99 = row.api_p99_ms;
                check(row, "API p99 ≤ 50 ms".into(), p99.map(|p| p <= 50.0));
            }
            "latency" | "retry-storm" => {
                let (c2r, api) = (row.receipt_p99_ms, row.api_p99_ms);
                let complete = row.received >= row.expected;
                // Latency of a drain cut short is of the deliveries that made it: not a pass.
                check(
                    row,
                    "receipt p99 ≤ 25 ms".into(),
                    c2r.map(|p| p <= 25.0 && complete),
                );
                check(row, "API p99 ≤ 10 ms".into(), api.map(|p| p <= 10.0));
            }
            "large-db" => {
                if let Some(empty) = rate_of(&snapshot, "single", &row.db) {
                    let want = empty * 0.8;
                    check(
                        row,
                        format!("≥ 80 % of empty ({}/s)", int(want)),
                        row.deliveries_per_s.map(|r| r >= want),
                    );
                }
            }
            s if s.starts_with("large-db query") => {
                let p99 = row.api_p99_ms;
                check(row, "p99 ≤ 20 ms".into(), p99.map(|p| p <= 20.0));
            }
            _ => {}
        }
        let rss = row.peak_rss_mb;
        check(row, "RSS ≤ 100 MB".into(), rss.map(|m| m <= 100.0));
    }
}

/// 12345.6 → "12,346".
pub fn int(v: f64) -> String {
    let s = format!("{:.0}", v.max(0.0));
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn ms(v: Option<f64>) -> String {
    match v {
        None => "–".into(),
        Some(v) if v < 10.0 => format!("{v:.1}"),
        Some(v) => int(v),
    }
}

fn opt(v: Option<f64>, f: impl Fn(f64) -> String) -> String {
    v.map(f).unwrap_or_else(|| "–".into())
}

/// Which process used the most CPU over the window, and how busy the machine was.
fn bottleneck(row: &Row) -> String {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut users: Vec<(&str, f64)> = [
        ("server", row.cores_server),
        ("postgres", row.cores_postgres),
        ("receiver", row.cores_receiver),
        ("bench", row.cores_generator),
    ]
    .into_iter()
    .filter_map(|(n, c)| c.map(|c| (n, c)))
    .collect();
    if users.is_empty() {
        return "–".into();
    }
    users.sort_by(|a, b| b.1.total_cmp(&a.1));
    let busy: f64 = users.iter().map(|u| u.1).sum::<f64>() + row.cores_other.unwrap_or(0.0);
    format!("{} ({busy:.1} of {cores} cores busy)", users[0].0)
}

pub fn markdown(rows: &[Row]) -> String {
    let mut out = String::from(
        "| scenario | db | alerts/s accepted | deliveries/s received | API p50 / p99 ms | call-to-receipt p50 / p99 / max ms | server peak RSS MB | server CPU s / 1k deliveries | CPU cores: server / postgres / receiver / bench / other | most CPU | targets | notes |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---|---|---|\n",
    );
    for r in rows {
        if let Some(f) = &r.failure {
            out.push_str(&format!(
                "| {} | {} | – | – | – | – | – | – | – | – | – | FAILED: {} |\n",
                r.scenario,
                r.db,
                f.replace('\n', " ").replace('|', "/")
            ));
            continue;
        }
        let cpu_per_1k = match (r.server_cpu_s_per_1k, r.postgres_cpu_s_per_1k) {
            (Some(s), Some(p)) => format!("{s:.2} (+{p:.2} postgres)"),
            (Some(s), None) => format!("{s:.2}"),
            _ => "–".into(),
        };
        let cores = if r.cores_server.is_none() && r.cores_receiver.is_none() {
            "–".into()
        } else {
            [
                r.cores_server,
                r.cores_postgres,
                r.cores_receiver,
                r.cores_generator,
                r.cores_other,
            ]
            .iter()
            .map(|c| opt(*c, |c| format!("{c:.2}")))
            .collect::<Vec<_>>()
            .join(" / ")
        };
        let targets = if r.targets.is_empty() {
            "–".into()
        } else {
            r.targets
                .iter()
                .map(|t| format!("{}: {}", t.what, if t.met { "met" } else { "**missed**" }))
                .collect::<Vec<_>>()
                .join("; ")
        };
        let receipt = if r.receipt_p50_ms.is_none() {
            "–".into()
        } else {
            format!(
                "{} / {} / {}",
                ms(r.receipt_p50_ms),
                ms(r.receipt_p99_ms),
                ms(r.receipt_max_ms)
            )
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} / {} | {} | {} | {} | {} | {} | {} | {} |\n",
            r.scenario,
            r.db,
            opt(r.alerts_per_s, int),
            opt(r.deliveries_per_s, int),
            ms(r.api_p50_ms),
            ms(r.api_p99_ms),
            receipt,
            opt(r.peak_rss_mb, |m| format!("{m:.0}")),
            cpu_per_1k,
            cores,
            if r.cores_receiver.is_some() {
                bottleneck(r)
            } else {
                "–".into()
            },
            targets,
            r.notes.join("; ").replace('|', "/"),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(int(0.4), "0");
        assert_eq!(int(999.0), "999");
        assert_eq!(int(1_000.0), "1,000");
        assert_eq!(int(1_234_567.8), "1,234,568");
    }
}
