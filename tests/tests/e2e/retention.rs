//! `herald prune` and `herald backup` with the real binary, beside a running `herald serve`.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use herald_testkit::{Backend, GraphqlClient, Receiver, fresh_database_url};
use serde_json::{Value, json};

use crate::process::{HeraldProcess, herald, herald_with, sql, tokens_in};

herald_testkit::on_both_backends!(
    prune_deletes_old_finished_history_and_says_what_it_did,
    the_running_server_prunes_by_itself_and_counts_it_in_metrics
);

fn count(database_url: &str, table: &str) -> u64 {
    sql(database_url, &format!("SELECT COUNT(*) FROM {table}"))
        .parse()
        .unwrap()
}

/// 100 days ago, written the way each database stores its timestamps.
fn hundred_days_ago(database_url: &str) -> &'static str {
    if database_url.starts_with("sqlite") {
        "strftime('%Y-%m-%dT%H:%M:%f000+00:00', 'now', '-100 days')"
    } else {
        "now() - interval '100 days'"
    }
}

fn admin(server: &HeraldProcess) -> GraphqlClient {
    let token = tokens_in(&server.stdout()).remove(0);
    GraphqlClient::new(&server.base_url, Some(&token))
}

fn stdout_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

async fn send_alert(client: &GraphqlClient) -> Value {
    client
        .query(
            "mutation { sendAlert(input: {detectionId: \"d\", title: \"t\", severity: HIGH}) { alert { id } } }",
            json!({}),
        )
        .await
        .data()["sendAlert"]["alert"]["id"]
        .clone()
}

/// A destination for `receiver` and three alerts to it, delivered; returns the alert ids.
async fn three_delivered_alerts(
    client: &GraphqlClient,
    receiver: &Receiver,
    db: &str,
) -> Vec<Value> {
    client
        .query(
            "mutation($url: String!) { createDestination(input: {displayName: \"r\", url: $url}) { destination { id } } }",
            json!({"url": receiver.url}),
        )
        .await
        .data();
    let mut alerts = Vec::new();
    for _ in 0..3 {
        alerts.push(send_alert(client).await);
    }
    wait_all_finished(db);
    alerts
}

/// Moves these alerts and their deliveries 100 days into the past, past the default retention.
fn age_by_hundred_days(db: &str, alerts: &[Value]) {
    let old = hundred_days_ago(db);
    let ids: Vec<String> = alerts
        .iter()
        .map(|a| format!("'{}'", a.as_str().unwrap()))
        .collect();
    let ids = ids.join(", ");
    sql(
        db,
        &format!("UPDATE alerts SET received_at = {old} WHERE id IN ({ids})"),
    );
    sql(
        db,
        &format!("UPDATE deliveries SET updated_at = {old} WHERE alert_id IN ({ids})"),
    );
}

/// Waits (bounded) until no delivery is open.
fn wait_all_finished(database_url: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while count(
        database_url,
        "deliveries WHERE state IN ('PENDING', 'RETRYING')",
    ) > 0
    {
        assert!(Instant::now() < deadline, "deliveries never finished");
        std::thread::sleep(Duration::from_millis(50));
    }
}

async fn prune_deletes_old_finished_history_and_says_what_it_did(backend: Backend) {
    tokio::time::timeout(Duration::from_secs(120), prune_steps(backend))
        .await
        .expect("the test finished in time")
}

async fn prune_steps(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_database_url(backend, dir.path());
    // The server's own pruner is off, so only `herald prune` deletes here.
    let server = HeraldProcess::start_with(&db, dir.path(), &[("HERALD_RETENTION", "off")]).await;
    let client = admin(&server);
    let receiver = Receiver::start().await;
    let alerts = three_delivered_alerts(&client, &receiver, &db).await;
    age_by_hundred_days(&db, &alerts[..2]);
    let attempts = count(&db, "delivery_attempts");
    assert_eq!(attempts, 3);

    let off = herald_with(&db, dir.path(), &[("HERALD_RETENTION", "off")], &["prune"]);
    assert!(off.status.success(), "{}", stderr_of(&off));
    assert_eq!(
        stdout_of(&off).trim(),
        "HERALD_RETENTION is off: nothing was deleted."
    );
    assert_eq!(count(&db, "alerts"), 3);

    let bad = herald_with(
        &db,
        dir.path(),
        &[("HERALD_RETENTION", "forever")],
        &["prune"],
    );
    assert!(!bad.status.success());
    assert!(
        stderr_of(&bad).contains("HERALD_RETENTION must be `off` or a duration"),
        "{}",
        stderr_of(&bad)
    );

    let pruned = herald(&db, dir.path(), &["prune"]);
    assert!(pruned.status.success(), "{}", stderr_of(&pruned));
    let said = stdout_of(&pruned);
    assert!(
        said.starts_with("Deleted 2 alerts, 2 deliveries and 2 attempts finished before ")
            && said.trim_end().ends_with("Z (HERALD_RETENTION=90d)."),
        "{said}"
    );
    assert_eq!(count(&db, "alerts"), 1);
    assert_eq!(count(&db, "deliveries"), 1);
    assert_eq!(count(&db, "delivery_attempts"), 1);
    // The running server still answers for what is left and no longer knows the rest.
    let left = client
        .query("{ alerts(first: 10) { totalCount } }", json!({}))
        .await;
    assert_eq!(left.data()["alerts"]["totalCount"], 1);

    let again = herald(&db, dir.path(), &["prune"]);
    assert!(
        stdout_of(&again).starts_with("Deleted 0 alerts, 0 deliveries and 0 attempts"),
        "{}",
        stdout_of(&again)
    );
}

/// `herald_pruned_total{kind="…"}` as the server reports it.
async fn pruned_total(server: &HeraldProcess, kind: &str) -> u64 {
    let text = reqwest::get(format!("{}/metrics", server.base_url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let series = format!("herald_pruned_total{{kind=\"{kind}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(series.as_str()))
        .unwrap_or_else(|| panic!("no {series} in /metrics:\n{text}"))
        .trim()
        .parse::<f64>()
        .unwrap() as u64
}

async fn the_running_server_prunes_by_itself_and_counts_it_in_metrics(backend: Backend) {
    tokio::time::timeout(Duration::from_secs(120), background_steps(backend))
        .await
        .expect("the test finished in time")
}

async fn background_steps(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_database_url(backend, dir.path());
    let server = HeraldProcess::start_with(
        &db,
        dir.path(),
        &[("HERALD_RETENTION", "90d"), ("HERALD_PRUNE_INTERVAL", "1s")],
    )
    .await;
    let client = admin(&server);
    let receiver = Receiver::start().await;
    let alerts = three_delivered_alerts(&client, &receiver, &db).await;
    // Passes have run meanwhile and found nothing old enough.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(count(&db, "alerts"), 3);
    assert_eq!(pruned_total(&server, "delivery").await, 0);

    age_by_hundred_days(&db, &alerts[..2]);
    let deadline = Instant::now() + Duration::from_secs(15);
    while count(&db, "alerts") > 1 {
        assert!(
            Instant::now() < deadline,
            "the server's pruner did not delete the old history"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(count(&db, "deliveries"), 1);
    assert_eq!(count(&db, "delivery_attempts"), 1);
    assert_eq!(pruned_total(&server, "alert").await, 2);
    assert_eq!(pruned_total(&server, "delivery").await, 2);
    assert_eq!(pruned_total(&server, "attempt").await, 2);
    // The pass logs what it deleted once it has run out of old rows.
    while !server
        .stderr()
        .contains("retention: deleted finished history")
    {
        assert!(
            Instant::now() < deadline,
            "no log line for the pass: {}",
            server.stderr()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

const DESTINATIONS: &str = "{ destinations(first: 50) { nodes { id displayName signingSecret customHeaders { name value } } } }";

fn key_lines(key_file: &Path) -> Vec<String> {
    std::fs::read_to_string(key_file)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_under_writes_is_whole_and_a_server_starts_on_it() {
    tokio::time::timeout(Duration::from_secs(180), backup_steps())
        .await
        .expect("the test finished in time")
}

async fn backup_steps() {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_database_url(Backend::Sqlite, dir.path());
    let server = HeraldProcess::start(&db, dir.path()).await;
    let token = tokens_in(&server.stdout()).remove(0);
    let client = GraphqlClient::new(&server.base_url, Some(&token));
    let receiver = Receiver::start().await;
    for name in ["one", "two"] {
        client
            .query(
                "mutation($name: String!, $url: String!) { createDestination(input: {displayName: $name, url: $url, customHeaders: [{name: \"X-Auth\", value: \"hdr-secret\"}]}) { destination { id } } }",
                json!({"name": name, "url": receiver.url}),
            )
            .await
            .data();
    }
    let before = client.query(DESTINATIONS, json!({})).await.data().clone();
    assert_eq!(before["destinations"]["nodes"].as_array().unwrap().len(), 2);

    // Alerts keep arriving while the backup is taken.
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (client, stop, sent) = (client.clone(), stop.clone(), sent.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                send_alert(&client).await;
                sent.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while sent.load(Ordering::Relaxed) < 20 {
        assert!(Instant::now() < deadline, "alerts were not accepted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let backup_path = dir.path().join("backup.db");
    let out = {
        let (db, d, p) = (db.clone(), dir.path().to_owned(), backup_path.clone());
        tokio::task::spawn_blocking(move || herald(&db, &d, &["backup", p.to_str().unwrap()]))
            .await
            .unwrap()
    };
    let during = sent.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    assert!(
        sent.load(Ordering::Relaxed) > during,
        "writes went on during and after the backup"
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    let said = stdout_of(&out);
    let key_file = dir.path().join("herald.db.key");
    assert!(said.contains(&key_file.display().to_string()), "{said}");
    assert!(said.contains("key id "), "{said}");
    assert!(!said.contains("none yet"), "{said}");
    for line in key_lines(&key_file) {
        assert!(!said.contains(&line), "the key was printed: {said}");
        assert!(!stderr_of(&out).contains(&line), "the key was logged");
    }

    // A whole database on its own: no WAL beside it, and SQLite finds nothing wrong.
    assert!(!dir.path().join("backup.db-wal").exists());
    let url = format!("sqlite://{}", backup_path.display());
    assert_eq!(sql(&url, "PRAGMA integrity_check"), "ok");
    assert_eq!(sql(&url, "PRAGMA journal_mode"), "delete");
    let copied_alerts = count(&url, "alerts");
    assert!(copied_alerts >= 20, "{copied_alerts} alerts in the copy");

    // An existing path is refused and left as it was.
    let bytes = std::fs::read(&backup_path).unwrap();
    let again = herald(&db, dir.path(), &["backup", backup_path.to_str().unwrap()]);
    assert!(!again.status.success());
    assert!(
        stderr_of(&again).contains("already exists"),
        "{}",
        stderr_of(&again)
    );
    assert_eq!(std::fs::read(&backup_path).unwrap(), bytes);

    // --with-key-file copies the key beside the copy, owner-only.
    let with_key = dir.path().join("with-key.db");
    let out = herald(
        &db,
        dir.path(),
        &["backup", "--with-key-file", with_key.to_str().unwrap()],
    );
    assert!(out.status.success(), "{}", stderr_of(&out));
    let copied_key = dir.path().join("with-key.db.key");
    assert_eq!(key_lines(&copied_key), key_lines(&key_file));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&copied_key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // Restore: the key beside the copy, and a server on it reads the same secrets.
    server.stop();
    std::fs::copy(&key_file, dir.path().join("backup.db.key")).unwrap();
    let restored = HeraldProcess::start(&url, dir.path()).await;
    let restored_client = GraphqlClient::new(&restored.base_url, Some(&token));
    let after = restored_client.query(DESTINATIONS, json!({})).await;
    assert_eq!(after.data(), &before);
    assert_eq!(
        restored_client
            .query("{ alerts(first: 1) { totalCount } }", json!({}))
            .await
            .data()["alerts"]["totalCount"],
        copied_alerts
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_on_postgres_points_at_pg_dump() {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_database_url(Backend::Postgres, dir.path());
    let migrated = herald(&db, dir.path(), &["migrate"]);
    assert!(migrated.status.success(), "{}", stderr_of(&migrated));
    let target = dir.path().join("backup.db");
    let out = herald(&db, dir.path(), &["backup", target.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(stderr_of(&out).contains("pg_dump"), "{}", stderr_of(&out));
    assert!(!target.exists());
}
