//! The benchmark's webhook receiver, in its own process so `herald-bench` can measure its CPU apart
//! from the server's and the load generator's. It answers every delivery at once, counts arrivals
//! per path and takes the call-to-receipt latency from the send time (`alertContext.benchSentUs`,
//! microseconds since the Unix epoch) that the load generator put into each alert: both processes
//! read the same wall clock.
//!
//! herald-bench-receiver [--fail-prefix /f]
//!
//! It prints `listening 127.0.0.1:PORT` on its first line of stdout. Paths that start with
//! `--fail-prefix` answer 500 (the retry storm's failing destinations); their requests are counted
//! but never enter the latency figures. `GET /__stats` answers the figures as JSON
//! (`GET /__count` only the counts, cheap enough to poll), `POST /__reset` clears them.

#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use clap::Parser;
use serde::Serialize;

#[derive(Parser)]
#[command(about = "The webhook receiver that herald-bench measures Herald against")]
struct Args {
    /// Requests to paths that start with this answer 500.
    #[arg(long)]
    fail_prefix: Option<String>,
    /// Worker threads of the receiver's runtime (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
}

#[derive(Default)]
struct Figures {
    /// Requests answered 200, per path.
    ok: BTreeMap<String, u64>,
    /// Requests answered 500, per path.
    failed: BTreeMap<String, u64>,
    /// Call-to-receipt latency of every 200 answer that carried a send time, in microseconds.
    latency_us: Vec<u64>,
    /// First and last 200 answer, microseconds since the epoch.
    first_at_us: Option<u64>,
    last_at_us: Option<u64>,
    /// Bodies that were not JSON or carried no send time (the warm-up and setup deliveries).
    untimed: u64,
}

#[derive(Serialize)]
struct Stats {
    ok: u64,
    failed: u64,
    untimed: u64,
    per_path: BTreeMap<String, u64>,
    failed_per_path: BTreeMap<String, u64>,
    first_at_us: Option<u64>,
    last_at_us: Option<u64>,
    latency_count: usize,
    latency_p50_us: u64,
    latency_p99_us: u64,
    latency_max_us: u64,
}

#[derive(Clone)]
struct Shared {
    fail_prefix: Option<Arc<str>>,
    figures: Arc<Mutex<Figures>>,
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// The send time, without building a full JSON tree: the body is Herald's payload, whose
/// `alertContext` is the one the bench sent.
fn sent_at_us(body: &[u8]) -> Option<u64> {
    #[derive(serde::Deserialize)]
    struct Payload {
        #[serde(rename = "alertContext")]
        alert_context: Option<Context>,
    }
    #[derive(serde::Deserialize)]
    struct Context {
        #[serde(rename = "benchSentUs")]
        bench_sent_us: Option<u64>,
    }
    serde_json::from_slice::<Payload>(body)
        .ok()?
        .alert_context?
        .bench_sent_us
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn handle(State(s): State<Shared>, method: Method, uri: Uri, body: Bytes) -> Response {
    let path = uri.path();
    match (method, path) {
        (Method::GET, "/__stats") => {
            let (mut sorted, mut stats) = {
                let f = s.figures.lock().expect("figures lock");
                let stats = Stats {
                    ok: f.ok.values().sum(),
                    failed: f.failed.values().sum(),
                    untimed: f.untimed,
                    per_path: f.ok.clone(),
                    failed_per_path: f.failed.clone(),
                    first_at_us: f.first_at_us,
                    last_at_us: f.last_at_us,
                    latency_count: 0,
                    latency_p50_us: 0,
                    latency_p99_us: 0,
                    latency_max_us: 0,
                };
                (f.latency_us.clone(), stats)
            };
            // Sorted outside the lock, so deliveries are not held up by it.
            sorted.sort_unstable();
            stats = Stats {
                latency_count: sorted.len(),
                latency_p50_us: percentile(&sorted, 0.50),
                latency_p99_us: percentile(&sorted, 0.99),
                latency_max_us: sorted.last().copied().unwrap_or(0),
                ..stats
            };
            axum::Json(stats).into_response()
        }
        (Method::GET, "/__count") => {
            let f = s.figures.lock().expect("figures lock");
            axum::Json(serde_json::json!({
                "ok": f.ok.values().sum::<u64>(),
                "failed": f.failed.values().sum::<u64>(),
                "last_at_us": f.last_at_us,
            }))
            .into_response()
        }
        (Method::POST, "/__reset") => {
            *s.figures.lock().expect("figures lock") = Figures::default();
            StatusCode::NO_CONTENT.into_response()
        }
        _ => {
            let at = now_us();
            if s.fail_prefix
                .as_deref()
                .is_some_and(|p| path.starts_with(p))
            {
                let mut f = s.figures.lock().expect("figures lock");
                *f.failed.entry(path.to_owned()).or_default() += 1;
                return (StatusCode::INTERNAL_SERVER_ERROR, "failing on purpose").into_response();
            }
            // Parsed outside the lock: the lock is held only to record.
            let sent = sent_at_us(&body);
            let mut f = s.figures.lock().expect("figures lock");
            match f.ok.get_mut(path) {
                Some(n) => *n += 1,
                None => {
                    f.ok.insert(path.to_owned(), 1);
                }
            }
            match sent {
                Some(sent) => f.latency_us.push(at.saturating_sub(sent)),
                None => f.untimed += 1,
            }
            f.first_at_us.get_or_insert(at);
            f.last_at_us = Some(at);
            (StatusCode::OK, "ok").into_response()
        }
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = args.threads {
        rt.worker_threads(n);
    }
    rt.enable_all().build()?.block_on(async move {
        let shared = Shared {
            fail_prefix: args.fail_prefix.map(Arc::from),
            figures: Arc::default(),
        };
        let app = Router::new().fallback(handle).with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        {
            let mut out = std::io::stdout().lock();
            writeln!(out, "listening {addr}")?;
            out.flush()?;
        }
        axum::serve(listener, app).await?;
        Ok(())
    })
}
