//! The delivery engine as processes see it: `kill -9` with deliveries in flight loses nothing, and
//! several servers on one PostgreSQL share the queue without sending an attempt twice.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use herald_testkit::{Backend, GraphqlClient, Receiver, Reply, fresh_database_url};
use serde_json::{Value, json};

use crate::process::{HeraldProcess, create_token};

/// Fast retries and a short lease, so a dead worker's deliveries come back within seconds.
const ENGINE_ENV: &[(&str, &str)] = &[
    (
        "HERALD_RETRY_SCHEDULE",
        "50ms,50ms,50ms,50ms,50ms,50ms,50ms,50ms,50ms,50ms",
    ),
    ("HERALD_DELIVERY_LEASE", "3s"),
    ("HERALD_POLL_INTERVAL", "100ms"),
];

fn admin_token(db: &str, dir: &std::path::Path, name: &str) -> String {
    create_token(db, dir, name, "admin")
}

async fn create_destination(client: &GraphqlClient, url: &str) {
    client
        .query(
            "mutation($url: String!) { createDestination(input: {displayName: \"Sink\", url: $url}) { destination { id } } }",
            json!({"url": url}),
        )
        .await
        .data();
}

/// Sends `n` alerts in batches of 100; returns their ids.
async fn send_alerts(client: &GraphqlClient, prefix: &str, n: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for chunk in (0..n).collect::<Vec<_>>().chunks(100) {
        let alerts: Vec<Value> = chunk
            .iter()
            .map(|i| json!({"alertId": format!("{prefix}-{i}"), "detectionId": "Durable", "title": "t", "severity": "HIGH"}))
            .collect();
        let resp = client
            .query(
                "mutation($a: [SendAlertInput!]!) { sendAlerts(input: {alerts: $a}) { results { alert { id } } } }",
                json!({"a": alerts}),
            )
            .await;
        for r in resp.data()["sendAlerts"]["results"].as_array().unwrap() {
            ids.push(r["alert"]["id"].as_str().unwrap().to_owned());
        }
    }
    ids
}

async fn succeeded(client: &GraphqlClient) -> u64 {
    client
        .query("{ deliveries(state: SUCCEEDED) { totalCount } }", json!({}))
        .await
        .data()["deliveries"]["totalCount"]
        .as_u64()
        .unwrap()
}

async fn wait_succeeded(client: &GraphqlClient, n: u64, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let done = succeeded(client).await;
        if done == n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{done} of {n} deliveries succeeded"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every alert reached the receiver at least once (identified by its alertId).
fn received_alert_ids(r: &Receiver) -> HashSet<String> {
    r.received()
        .iter()
        .map(|g| g.json()["alertId"].as_str().unwrap().to_owned())
        .collect()
}

async fn kill_9_with_deliveries_in_flight_loses_nothing(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_database_url(backend, dir.path());
    let receiver = Receiver::start().await;
    // Slow answers, so that many deliveries are mid-request when the process dies.
    receiver.always(Reply::ok().delayed(Duration::from_millis(200)));
    let server = HeraldProcess::start_with(&db, dir.path(), ENGINE_ENV).await;
    let token = admin_token(&db, dir.path(), "durability");
    let client = GraphqlClient::new(&server.base_url, Some(&token));
    create_destination(&client, &receiver.url).await;
    let sent = send_alerts(&client, "k9", 300).await;
    receiver.wait_for(20, Duration::from_secs(30)).await;
    server.kill9();
    let before = receiver.count();
    assert!(
        before < 300,
        "the kill came too late to test anything ({before} delivered)"
    );

    receiver.always(Reply::ok());
    let restarted = HeraldProcess::start_with(&db, dir.path(), ENGINE_ENV).await;
    let client = GraphqlClient::new(&restarted.base_url, Some(&token));
    wait_succeeded(&client, 300, Duration::from_secs(60)).await;
    let got = received_alert_ids(&receiver);
    let missing: Vec<_> = sent.iter().filter(|id| !got.contains(*id)).collect();
    assert!(missing.is_empty(), "never delivered: {missing:?}");
}

herald_testkit::on_both_backends!(kill_9_with_deliveries_in_flight_loses_nothing);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_on_one_postgres_deliver_each_alert_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_database_url(Backend::Postgres, dir.path());
    let receiver = Receiver::start().await;
    receiver.always(Reply::ok().delayed(Duration::from_millis(5)));
    let a = HeraldProcess::start_with(&db, dir.path(), ENGINE_ENV).await;
    let b = HeraldProcess::start_with(&db, dir.path(), ENGINE_ENV).await;
    let token = admin_token(&db, dir.path(), "replicas");
    let ca = GraphqlClient::new(&a.base_url, Some(&token));
    let cb = GraphqlClient::new(&b.base_url, Some(&token));
    create_destination(&ca, &receiver.url).await;
    let (sa, sb) = tokio::join!(send_alerts(&ca, "ra", 300), send_alerts(&cb, "rb", 300));
    assert_eq!(sa.len() + sb.len(), 600);
    wait_succeeded(&ca, 600, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = receiver.received();
    let ids: HashSet<&str> = got
        .iter()
        .map(|g| g.header("webhook-id").unwrap())
        .collect();
    assert_eq!(ids.len(), 600, "every alert arrived");
    assert_eq!(got.len(), 600, "and none twice");

    assert!(a.stderr().contains("dispatcher started") && b.stderr().contains("dispatcher started"));

    // One replica dies mid-flight; the other finishes its work after the lease.
    receiver.always(Reply::ok().delayed(Duration::from_millis(200)));
    let more = send_alerts(&ca, "rc", 200).await;
    receiver.wait_for(610, Duration::from_secs(30)).await;
    a.kill9();
    receiver.always(Reply::ok());
    wait_succeeded(&cb, 800, Duration::from_secs(60)).await;
    let got = received_alert_ids(&receiver);
    assert!(more.iter().all(|id| got.contains(id)));
}
