//! Throughput of the delivery engine, end to end: a real `herald serve` (the binary next to this
//! one, so build both with `--release`), a real receiver on 127.0.0.1, alerts sent over GraphQL.
//!
//! cargo build --release -p herald-server -p herald-testkit
//! target/release/herald-bench --db sqlite --mode single --alerts 20000 --concurrency 64
//! target/release/herald-bench --db postgres --mode batch --alerts 100000

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use herald_testkit::{GraphqlClient, PgCluster, Receiver, free_port, herald_bin};
use serde_json::{Value, json};
use tokio::sync::Mutex;

struct Args {
    db: String,
    mode: String,
    alerts: usize,
    concurrency: usize,
    destinations: usize,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut a = Args {
        db: "sqlite".into(),
        mode: "single".into(),
        alerts: 10_000,
        concurrency: 32,
        destinations: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--db" => a.db = value,
            "--mode" => a.mode = value,
            "--alerts" => a.alerts = value.parse()?,
            "--concurrency" => a.concurrency = value.parse()?,
            "--destinations" => a.destinations = value.parse()?,
            other => bail!("unknown flag {other}"),
        }
    }
    Ok(a)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let dir = tempfile::tempdir()?;
    let _pg;
    let db = match args.db.as_str() {
        "sqlite" => format!("sqlite://{}", dir.path().join("bench.db").display()),
        "postgres" => {
            let pg = PgCluster::start(true)?;
            let url = pg.create_database();
            _pg = pg;
            url
        }
        other => bail!("--db must be sqlite or postgres, not {other}"),
    };
    let out = Command::new(herald_bin())
        .args(["token", "create", "--name", "bench", "--role", "admin"])
        .env("HERALD_DATABASE_URL", &db)
        .output()?;
    let token = String::from_utf8(out.stdout)?
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_owned();
    let port = free_port();
    let mut server = Command::new(herald_bin())
        .arg("serve")
        .env("HERALD_DATABASE_URL", &db)
        .env("HERALD_LISTEN", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "warn")
        // The benchmark's receiver listens on loopback, which Herald refuses by default.
        .env("HERALD_ALLOW_NETWORKS", herald_testkit::LOOPBACK_NETWORKS)
        .env(
            "HERALD_ENCRYPTION_KEY",
            herald_testkit::test_encryption_key(),
        )
        .envs(std::env::vars().filter(|(k, _)| k.starts_with("HERALD_")))
        .stdout(Stdio::null())
        .spawn()?;
    let base = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while reqwest::get(format!("{base}/healthz")).await.is_err() {
        if started.elapsed() > Duration::from_secs(30) {
            bail!("herald did not start");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let client = GraphqlClient::new(&base, Some(&token));
    let receiver = Receiver::start().await;
    for i in 0..args.destinations {
        client
            .query(
                "mutation($n: String!, $u: String!) { createDestination(input: {displayName: $n, url: $u}) { destination { id } } }",
                json!({"n": format!("bench-{i}"), "u": receiver.url}),
            )
            .await
            .data();
    }

    let sent_at: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let latencies: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let per_call = if args.mode == "batch" { 1000 } else { 1 };
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency {
        let (client, sent_at, latencies, next) = (
            client.clone(),
            sent_at.clone(),
            latencies.clone(),
            next.clone(),
        );
        let total = args.alerts;
        tasks.push(tokio::spawn(async move {
            loop {
                let start = next.fetch_add(per_call, std::sync::atomic::Ordering::Relaxed);
                if start >= total {
                    break;
                }
                let ids: Vec<String> = (start..(start + per_call).min(total))
                    .map(|i| format!("bench-{i}"))
                    .collect();
                let call = Instant::now();
                sent_at.lock().await.extend(ids.iter().map(|i| (i.clone(), call)));
                let resp = if per_call == 1 {
                    client
                        .query(
                            "mutation($i: SendAlertInput!) { sendAlert(input: $i) { alert { id } } }",
                            json!({"i": {"alertId": ids[0], "detectionId": "Bench", "title": "t", "severity": "HIGH"}}),
                        )
                        .await
                } else {
                    let alerts: Vec<Value> = ids
                        .iter()
                        .map(|id| json!({"alertId": id, "detectionId": "Bench", "title": "t", "severity": "HIGH"}))
                        .collect();
                    client
                        .query(
                            "mutation($a: [SendAlertInput!]!) { sendAlerts(input: {alerts: $a}) { results { alert { id } } } }",
                            json!({"a": alerts}),
                        )
                        .await
                };
                resp.data();
                latencies.lock().await.push(call.elapsed());
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let accept_time = t0.elapsed();
    let expected = args.alerts * args.destinations;
    let got = receiver.wait_for(expected, Duration::from_secs(600)).await;
    let deliver_time = got.iter().map(|g| g.at).max().unwrap() - t0;

    let sent_at = sent_at.lock().await;
    let mut receipt: Vec<Duration> = got
        .iter()
        .filter_map(|g| {
            let id = g.json()["alertId"].as_str()?.to_owned();
            Some(g.at - *sent_at.get(&id)?)
        })
        .collect();
    receipt.sort();
    let mut calls = latencies.lock().await.clone();
    calls.sort();
    println!(
        "db={} mode={} alerts={} destinations={} concurrency={}\n  accepted: {:.0} alerts/s ({:.2}s)\n  delivered: {:.0} deliveries/s ({} in {:.2}s)\n  call latency p50 {:?} p99 {:?}\n  call-to-receipt p50 {:?} p99 {:?}",
        args.db,
        args.mode,
        args.alerts,
        args.destinations,
        args.concurrency,
        args.alerts as f64 / accept_time.as_secs_f64(),
        accept_time.as_secs_f64(),
        expected as f64 / deliver_time.as_secs_f64(),
        got.len(),
        deliver_time.as_secs_f64(),
        percentile(&calls, 0.5),
        percentile(&calls, 0.99),
        percentile(&receipt, 0.5),
        percentile(&receipt, 0.99),
    );
    let _ = server.kill();
    let _ = server.wait();
    Ok(())
}
