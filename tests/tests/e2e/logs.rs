//! Log lines as a collector gets them from the real binary: stderr, one JSON object per line with
//! `HERALD_LOG_FORMAT=json`, no colour codes in a file, and one line per attempt that a
//! receiver's own logs can be matched to (by `webhook_id`). Logs do not depend on the database,
//! so these run on SQLite.

use std::time::{Duration, Instant};

use herald_testkit::{Backend, GraphqlClient, Receiver, Reply, free_port, fresh_database_url};
use serde_json::{Value, json};

use crate::process::{HeraldProcess, create_token, herald_with};

const FAST_RETRIES: (&str, &str) = (
    "HERALD_RETRY_SCHEDULE",
    "50ms,50ms,50ms,50ms,50ms,50ms,50ms,50ms,50ms,50ms",
);

fn admin_token(db: &str, dir: &std::path::Path) -> String {
    create_token(db, dir, "logs", "admin")
}

async fn create_destination(client: &GraphqlClient, input: Value) -> String {
    let resp = client
        .query(
            "mutation($i: CreateDestinationInput!) { createDestination(input: $i) { destination { id } } }",
            json!({"i": input}),
        )
        .await;
    resp.data()["createDestination"]["destination"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn send_alert(client: &GraphqlClient, severity: &str) -> Value {
    let resp = client
        .query(
            "mutation($i: SendAlertInput!) { sendAlert(input: $i) { deliveries { id destinationId webhookId } } }",
            json!({"i": {"detectionId": "Logs", "title": "t", "severity": severity}}),
        )
        .await;
    resp.data()["sendAlert"]["deliveries"][0].clone()
}

/// Waits until stderr holds `n` lines that satisfy `pick`; returns stderr.
async fn wait_for_lines(server: &HeraldProcess, n: usize, pick: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let err = server.stderr();
        if err.lines().filter(|l| pick(l)).count() >= n {
            return err;
        }
        assert!(
            Instant::now() < deadline,
            "never saw {n} such lines:\n{err}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn json_logs_are_one_object_per_line_with_every_attempt_matched_to_the_receiver() {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_database_url(Backend::Sqlite, dir.path());
    let receiver = Receiver::start().await;
    receiver.queue([Reply::status(500, "not yet"), Reply::ok()]);
    let server = HeraldProcess::start_with(
        &db,
        dir.path(),
        &[("HERALD_LOG_FORMAT", "json"), FAST_RETRIES],
    )
    .await;
    let token = admin_token(&db, dir.path());
    let client = GraphqlClient::new(&server.base_url, Some(&token));
    let url = format!("{}?sig=query-string-secret", receiver.url);
    let dest = create_destination(
        &client,
        json!({
            "displayName": "Logged", "url": url, "severities": ["HIGH"],
            "customHeaders": [{"name": "X-Api-Key", "value": "header-value-secret"}],
        }),
    )
    .await;
    // Nothing listens on this port: a network error, with no status.
    let closed = format!("http://127.0.0.1:{}/hook", free_port());
    let dead = create_destination(
        &client,
        json!({"displayName": "Dead", "url": closed, "severities": ["LOW"]}),
    )
    .await;
    let delivery = send_alert(&client, "HIGH").await;
    let dead_delivery = send_alert(&client, "LOW").await;
    let got = receiver.wait_for(2, Duration::from_secs(30)).await;
    let webhook_id = got[1].header("webhook-id").unwrap().to_owned();
    assert_eq!(got[0].header("webhook-id"), Some(webhook_id.as_str()));

    let is_attempt = |l: &str| l.contains("\"attempt ");
    // 2 attempts to the receiver, 11 to the closed port.
    let err = wait_for_lines(&server, 13, is_attempt).await;
    let lines: Vec<Value> = err
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON object ({e}): {l}")))
        .collect();
    assert!(lines.iter().all(Value::is_object));
    assert!(lines.iter().any(|l| l["message"] == "herald is listening"));

    let attempts_of =
        |id: &Value| -> Vec<&Value> { lines.iter().filter(|l| l["delivery_id"] == *id).collect() };
    let seen = attempts_of(&delivery["id"]);
    assert_eq!(seen.len(), 2, "{seen:#?}");
    for (line, (number, status, level)) in seen.iter().zip([(1, 500, "WARN"), (2, 200, "INFO")]) {
        assert_eq!(line["webhook_id"], webhook_id.as_str(), "{line}");
        assert_eq!(line["webhook_id"], delivery["webhookId"]);
        assert_eq!(line["destination_id"], dest.as_str());
        assert_eq!(line["attempt"], number, "{line}");
        assert_eq!(line["status"], status, "{line}");
        assert_eq!(line["level"], level, "{line}");
        assert!(line["duration_ms"].is_u64(), "{line}");
        assert!(line.get("error").is_none(), "{line}");
        assert!(line["timestamp"].is_string());
    }
    assert_eq!(seen[0]["message"], "attempt failed");
    assert_eq!(seen[1]["message"], "attempt succeeded");

    let failed = attempts_of(&dead_delivery["id"]);
    assert_eq!(failed.len(), 11, "{failed:#?}");
    for (n, line) in failed.iter().enumerate() {
        assert_eq!(line["destination_id"], dead.as_str());
        assert_eq!(line["attempt"], n + 1);
        assert_eq!(line["error"], "network", "{line}");
        assert!(line.get("status").is_none(), "{line}");
        assert_eq!(line["level"], "WARN");
    }
    assert_eq!(failed[10]["state"], "FAILED");

    for secret in [
        "query-string-secret",
        "header-value-secret",
        receiver.url.as_str(),
        closed.as_str(),
        token.as_str(),
    ] {
        assert!(!err.contains(secret), "{secret:?} is in the logs");
    }
}

#[tokio::test]
async fn text_logs_in_a_file_have_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_database_url(Backend::Sqlite, dir.path());
    let receiver = Receiver::start().await;
    // The default format: HERALD_LOG_FORMAT unset.
    let server =
        HeraldProcess::start_with(&db, dir.path(), &[("HERALD_LOG_FORMAT", ""), FAST_RETRIES])
            .await;
    let token = admin_token(&db, dir.path());
    let client = GraphqlClient::new(&server.base_url, Some(&token));
    create_destination(
        &client,
        json!({"displayName": "Plain", "url": receiver.url}),
    )
    .await;
    let delivery = send_alert(&client, "HIGH").await;
    let err = wait_for_lines(&server, 1, |l| l.contains("attempt succeeded")).await;
    assert!(!err.contains("\x1b["), "ANSI escapes in a file:\n{err:?}");
    let line = err
        .lines()
        .find(|l| l.contains("attempt succeeded"))
        .unwrap();
    let id = delivery["id"].as_str().unwrap();
    assert!(line.contains(&format!("delivery_id={id}")), "{line}");
    assert!(line.contains("status=200"), "{line}");
    assert!(line.contains(" INFO "), "{line}");
    assert!(
        serde_json::from_str::<Value>(line).is_err(),
        "text, not JSON"
    );
}

#[tokio::test]
async fn a_bad_log_format_stops_the_server_naming_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_database_url(Backend::Sqlite, dir.path());
    let out = herald_with(
        &db,
        dir.path(),
        &[("HERALD_LOG_FORMAT", "yaml")],
        &["serve"],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("HERALD_LOG_FORMAT"), "{err}");
    assert!(err.contains("`text` or `json`"), "{err}");
}
