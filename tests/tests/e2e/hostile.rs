//! Hostile receivers against the real binary: one that never answers, one that answers a 10 MB
//! body, one that drips its headers a byte a second, one that hangs up mid-headers, and ones that
//! redirect to an internal address. Each attempt ends with a record that says what happened, the
//! server's memory stays flat, and a healthy destination gets its alerts at once meanwhile.

use std::time::{Duration, Instant};

use herald_testkit::{
    Backend, GraphqlClient, HostileReceiver, Misbehaviour, Receiver, fresh_database_url,
};
use serde_json::{Value, json};

use crate::process::{HeraldProcess, tokens_in};

const ROUNDS: usize = 10;
const TEN_MB: usize = 10 * 1024 * 1024;

/// The server's resident and peak resident memory, in KiB, from /proc.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    };
    (field("VmRSS:"), field("VmHWM:"))
}

async fn deliveries_of(client: &GraphqlClient, destination: &Value) -> Vec<Value> {
    let resp = client
        .query(
            "query($id: ID!) { destination(id: $id) { deliveries(first: 100) { nodes { state statusCode message attemptCount attempts { statusCode error durationMs responseBody responseTruncated responseHeaders } } } } }",
            json!({"id": destination["id"]}),
        )
        .await;
    resp.data()["destination"]["deliveries"]["nodes"]
        .as_array()
        .unwrap()
        .clone()
}

/// Waits until every delivery to `destination` has had its first attempt recorded.
async fn first_attempts(client: &GraphqlClient, destination: &Value, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ds = deliveries_of(client, destination).await;
        if ds.len() == n && ds.iter().all(|d| d["attemptCount"] == 1) {
            return ds;
        }
        assert!(
            Instant::now() < deadline,
            "attempts never recorded: {ds:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_receivers_are_recorded_bounded_and_isolated() {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_database_url(Backend::Sqlite, dir.path());
    let server = HeraldProcess::start_with(
        &db,
        dir.path(),
        &[
            ("HERALD_DELIVERY_TIMEOUT", "2s"),
            // One attempt per delivery within the test: the next is an hour away.
            ("HERALD_RETRY_SCHEDULE", &["1h"; 10].join(",")),
        ],
    )
    .await;
    let pid = server.child.id();
    let client = GraphqlClient::new(&server.base_url, Some(&tokens_in(&server.stdout())[0]));

    let canary = Receiver::start().await;
    let healthy = Receiver::start().await;
    let hostile = [
        (
            "Never answers",
            HostileReceiver::start(Misbehaviour::NeverAnswers).await,
        ),
        (
            "Huge body",
            HostileReceiver::start(Misbehaviour::HugeBody(TEN_MB)).await,
        ),
        (
            "Drips headers",
            HostileReceiver::start(Misbehaviour::DripsHeaders).await,
        ),
        (
            "Hangs up",
            HostileReceiver::start(Misbehaviour::ClosesMidHeaders).await,
        ),
        (
            "Redirects to metadata",
            HostileReceiver::start(Misbehaviour::RedirectsTo(
                "http://169.254.169.254/latest/meta-data/".into(),
            ))
            .await,
        ),
        (
            "Redirects to loopback",
            HostileReceiver::start(Misbehaviour::RedirectsTo(canary.url.clone())).await,
        ),
    ];
    let mut destinations = Vec::new();
    for (name, r) in &hostile {
        let resp = client
            .query(
                "mutation($n: String!, $u: String!) { createDestination(input: {displayName: $n, url: $u}) { destination { id } } }",
                json!({"n": name, "u": r.url}),
            )
            .await;
        destinations.push(resp.data()["createDestination"]["destination"].clone());
    }
    client
        .query(
            "mutation($u: String!) { createDestination(input: {displayName: \"Healthy\", url: $u}) { destination { id } } }",
            json!({"u": healthy.url}),
        )
        .await
        .data();

    // Round after round, every alert goes to all seven destinations. The healthy one hears of
    // each at once, while the hostile ones hold their connections for up to the timeout.
    let mut baseline = None;
    let mut slowest = Duration::ZERO;
    for round in 0..ROUNDS {
        let sent_at = Instant::now();
        client
            .query(
                "mutation($id: String!) { sendAlert(input: {alertId: $id, detectionId: \"Hostile\", title: \"t\", severity: \"HIGH\"}) { alert { id } } }",
                json!({"id": format!("round-{round}")}),
            )
            .await
            .data();
        let got = healthy.wait_for(round + 1, Duration::from_secs(10)).await;
        slowest = slowest.max(got[round].at - sent_at);
        if round == 0 {
            // Once the first round's attempts are over, the server is warm: measure from here.
            for d in &destinations {
                first_attempts(&client, d, 1).await;
            }
            baseline = Some(memory_kib(pid).0);
        }
    }
    for d in &destinations {
        first_attempts(&client, d, ROUNDS).await;
    }
    let (rss, peak) = memory_kib(pid);
    let baseline = baseline.unwrap();
    println!(
        "healthy receiver: slowest arrival {slowest:?}; server memory: baseline {baseline} KiB, now {rss} KiB, peak {peak} KiB, after {ROUNDS} 10 MB bodies"
    );
    assert!(
        slowest < Duration::from_secs(1),
        "the healthy destination was held up: {slowest:?}"
    );
    // 100 MB of bodies were offered: memory that followed them would grow by that much. What
    // growth there is comes from the database's page cache as the tables fill.
    assert!(
        rss < baseline + 24 * 1024,
        "memory grew from {baseline} KiB to {rss} KiB"
    );
    // One body held whole (10 MB, and its text copy) would spike the peak by 20 MB or more.
    assert!(
        peak < rss + 12 * 1024,
        "memory peaked at {peak} KiB (now {rss} KiB): a body was buffered whole"
    );

    for (d, (name, receiver)) in destinations.iter().zip(&hostile) {
        for delivery in deliveries_of(&client, d).await {
            let attempt = &delivery["attempts"][0];
            let error = attempt["error"].as_str().unwrap_or_default();
            let context = format!("{name}: {delivery:#}");
            match *name {
                "Never answers" | "Drips headers" => {
                    assert_eq!(delivery["state"], "RETRYING", "{context}");
                    assert_eq!(attempt["statusCode"], Value::Null, "{context}");
                    assert!(error.contains("timed out after 2s"), "{context}");
                    assert!(
                        delivery["message"]
                            .as_str()
                            .unwrap()
                            .starts_with("network error: timed out"),
                        "{context}"
                    );
                }
                "Huge body" => {
                    // The status decides; the body is kept up to its cap.
                    assert_eq!(delivery["state"], "SUCCEEDED", "{context}");
                    assert_eq!(attempt["statusCode"], 200, "{context}");
                    assert_eq!(attempt["responseTruncated"], true, "{context}");
                    assert_eq!(
                        attempt["responseBody"].as_str().unwrap().len(),
                        64 * 1024,
                        "{name}"
                    );
                }
                "Hangs up" => {
                    assert_eq!(delivery["state"], "RETRYING", "{context}");
                    assert_eq!(attempt["statusCode"], Value::Null, "{context}");
                    assert!(!error.is_empty(), "{context}");
                    assert!(!error.contains("timed out"), "{context}");
                    assert!(
                        attempt["durationMs"].as_f64().unwrap() < 2000.0,
                        "{context}"
                    );
                }
                _ => {
                    // Redirects are never followed: a 3XX is a failed attempt like any non-2XX.
                    assert_eq!(delivery["state"], "RETRYING", "{context}");
                    assert_eq!(attempt["statusCode"], 302, "{context}");
                    assert!(
                        delivery["message"]
                            .as_str()
                            .unwrap()
                            .starts_with("request failed: 302 Found"),
                        "{context}"
                    );
                    assert!(attempt["responseHeaders"]["location"].is_string());
                }
            }
            assert!(receiver.connections() >= 1, "{name}");
        }
    }
    assert_eq!(canary.count(), 0, "a redirect was followed");
    assert!(
        reqwest::get(format!("{}/healthz", server.base_url))
            .await
            .unwrap()
            .status()
            .is_success()
    );
}
