//! Retention: finished history older than the cutoff goes, alert by alert, in bounded batches;
//! anything still open, or recent, stays with every row it has. Rows are made old by moving their
//! timestamps back with SQL.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use herald_server::config::{DEFAULT_RETENTION, Retention};
use herald_server::retention::{self, PrunerSettings};
use herald_server::store::retention::{Pruned, prune_batch};
use herald_testkit::{Backend, Receiver};
use sea_orm::{ConnectionTrait, FromQueryResult, Statement, Value as SqlValue};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::app::TestApp;

herald_testkit::on_both_backends!(
    old_finished_history_goes_and_open_or_recent_history_stays,
    a_batch_deletes_at_most_its_size,
    the_background_pruner_reports_each_batch_stops_on_cancel_and_off_keeps_all,
);

async fn within(test: impl Future<Output = ()>) {
    tokio::time::timeout(Duration::from_secs(90), test)
        .await
        .expect("the test finished in time");
}

const DAY: i64 = 86_400;

fn days_ago(days: i64) -> DateTime<Utc> {
    herald_server::store::now() - chrono::Duration::seconds(days * DAY)
}

fn cutoff() -> DateTime<Utc> {
    retention::cutoff(Retention::After(DEFAULT_RETENTION), Utc::now()).unwrap()
}

async fn exec(app: &TestApp, sql: &str, values: Vec<SqlValue>) {
    let db = app.store.db();
    db.execute_raw(Statement::from_sql_and_values(
        db.get_database_backend(),
        sql,
        values,
    ))
    .await
    .unwrap();
}

/// Moves an alert, its deliveries and their attempts `days` into the past.
async fn age(app: &TestApp, alert_id: &str, days: i64) {
    let at = days_ago(days);
    exec(
        app,
        "UPDATE alerts SET received_at = $1 WHERE id = $2",
        vec![at.into(), alert_id.into()],
    )
    .await;
    exec(
        app,
        "UPDATE deliveries SET created_at = $1, dispatched_at = $1, updated_at = $1 WHERE alert_id = $2",
        vec![at.into(), alert_id.into()],
    )
    .await;
    exec(
        app,
        "UPDATE delivery_attempts SET started_at = $1 \
         WHERE delivery_id IN (SELECT id FROM deliveries WHERE alert_id = $2)",
        vec![at.into(), alert_id.into()],
    )
    .await;
}

/// Puts a delivery in `state`; an open one is due tomorrow, so the dispatcher leaves it alone.
async fn set_state(app: &TestApp, delivery_id: &str, state: &str) {
    let next: Option<DateTime<Utc>> = matches!(state, "PENDING" | "RETRYING").then(|| days_ago(-1));
    exec(
        app,
        "UPDATE deliveries SET state = $1, next_attempt_at = $2 WHERE id = $3",
        vec![state.into(), next.into(), delivery_id.into()],
    )
    .await;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, FromQueryResult)]
struct Rows {
    alerts: i64,
    deliveries: i64,
    attempts: i64,
}

/// The rows an alert has: itself, its deliveries, their attempts.
async fn rows(app: &TestApp, alert_id: &str) -> Rows {
    let db = app.store.db();
    Rows::find_by_statement(Statement::from_sql_and_values(
        db.get_database_backend(),
        "SELECT (SELECT COUNT(*) FROM alerts WHERE id = $1) AS alerts, \
                (SELECT COUNT(*) FROM deliveries WHERE alert_id = $1) AS deliveries, \
                (SELECT COUNT(*) FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id \
                 WHERE d.alert_id = $1) AS attempts",
        [alert_id.into()],
    ))
    .one(db)
    .await
    .unwrap()
    .unwrap()
}

const GONE: Rows = Rows {
    alerts: 0,
    deliveries: 0,
    attempts: 0,
};

struct Sent {
    alert: String,
    deliveries: Vec<String>,
}

async fn send(app: &TestApp, severity: &str) -> Sent {
    let sent = app
        .send_alert(json!({"detectionId": "Rule.Retention", "title": "t", "severity": severity}))
        .await;
    let deliveries: Vec<String> = sent["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_owned())
        .collect();
    for d in &deliveries {
        let done = app.wait_final(&Value::from(d.as_str())).await;
        assert_eq!(done["state"], "SUCCEEDED", "{done:#}");
    }
    Sent {
        alert: sent["alert"]["id"].as_str().unwrap().to_owned(),
        deliveries,
    }
}

/// HIGH goes to A, CRITICAL to A and B, INFO nowhere.
async fn app_with_destinations(backend: Backend) -> (TestApp, Receiver) {
    let app = TestApp::spawn(backend).await;
    let receiver = Receiver::start().await;
    app.create_destination(
        json!({"displayName": "A", "url": receiver.url, "severities": ["HIGH", "CRITICAL"]}),
    )
    .await;
    app.create_destination(
        json!({"displayName": "B", "url": receiver.url, "severities": ["CRITICAL"]}),
    )
    .await;
    (app, receiver)
}

async fn old_finished_history_goes_and_open_or_recent_history_stays(backend: Backend) {
    within(async {
        let (app, _receiver) = app_with_destinations(backend).await;
        let succeeded = send(&app, "HIGH").await;
        let failed = send(&app, "HIGH").await;
        let recent = send(&app, "HIGH").await;
        let pending = send(&app, "HIGH").await;
        let retrying = send(&app, "HIGH").await;
        let mixed = send(&app, "CRITICAL").await;
        assert_eq!(mixed.deliveries.len(), 2);
        let bare_old = send(&app, "INFO").await;
        let bare_recent = send(&app, "INFO").await;
        assert!(bare_old.deliveries.is_empty());

        for s in [&succeeded, &failed, &pending, &retrying, &mixed, &bare_old] {
            age(&app, &s.alert, 100).await;
        }
        age(&app, &recent.alert, 30).await;
        set_state(&app, &failed.deliveries[0], "FAILED").await;
        set_state(&app, &pending.deliveries[0], "PENDING").await;
        set_state(&app, &retrying.deliveries[0], "RETRYING").await;
        set_state(&app, &mixed.deliveries[1], "RETRYING").await;

        let kept = [&recent, &pending, &retrying, &mixed, &bare_recent];
        let mut before = Vec::new();
        for s in kept {
            before.push(rows(&app, &s.alert).await);
        }
        let doomed = [
            rows(&app, &succeeded.alert).await,
            rows(&app, &failed.alert).await,
            rows(&app, &bare_old.alert).await,
        ];
        assert_eq!(doomed[0].attempts, 1);
        let expected = Pruned {
            alerts: 3,
            deliveries: 2,
            attempts: doomed.iter().map(|r| r.attempts as u64).sum(),
        };

        let stop = CancellationToken::new();
        let settings = PrunerSettings::default();
        let pruned = retention::run_pass(&app.store, cutoff(), &settings, &|_| {}, &stop)
            .await
            .unwrap();
        assert_eq!(pruned, expected);

        for s in [&succeeded, &failed, &bare_old] {
            assert_eq!(rows(&app, &s.alert).await, GONE, "alert {}", s.alert);
        }
        for (s, b) in kept.iter().zip(&before) {
            assert_eq!(rows(&app, &s.alert).await, *b, "alert {}", s.alert);
        }
        // The API agrees: the pruned delivery is gone, the open alert's finished one is not.
        assert_eq!(
            app.delivery(&Value::from(succeeded.deliveries[0].as_str()))
                .await,
            Value::Null
        );
        assert_eq!(
            app.delivery(&Value::from(mixed.deliveries[0].as_str()))
                .await["state"],
            "SUCCEEDED"
        );

        // A second pass finds nothing: deletes are idempotent.
        let again = retention::run_pass(&app.store, cutoff(), &settings, &|_| {}, &stop)
            .await
            .unwrap();
        assert_eq!(again, Pruned::default());
    })
    .await
}

async fn a_batch_deletes_at_most_its_size(backend: Backend) {
    within(async {
        let (app, _receiver) = app_with_destinations(backend).await;
        let mut alerts = Vec::new();
        for _ in 0..5 {
            let s = send(&app, "HIGH").await;
            age(&app, &s.alert, 100).await;
            alerts.push(s.alert);
        }
        let mut total = Pruned::default();
        let mut batches = 0;
        loop {
            let p = prune_batch(app.store.db(), cutoff(), 2).await.unwrap();
            assert!(!p.contended);
            let p = p.pruned;
            if p.is_empty() {
                break;
            }
            assert!(
                p.deliveries <= 2 && p.alerts <= 2,
                "batch of 2 deleted {p:?}"
            );
            total += p;
            batches += 1;
            assert!(batches < 10, "the batches never ended");
        }
        assert_eq!(
            total,
            Pruned {
                alerts: 5,
                deliveries: 5,
                attempts: 5
            }
        );
        assert_eq!(batches, 3);
        for a in &alerts {
            assert_eq!(rows(&app, a).await, GONE);
        }
    })
    .await
}

async fn the_background_pruner_reports_each_batch_stops_on_cancel_and_off_keeps_all(
    backend: Backend,
) {
    within(async {
        let (app, _receiver) = app_with_destinations(backend).await;
        let mut alerts = Vec::new();
        for _ in 0..3 {
            let s = send(&app, "HIGH").await;
            age(&app, &s.alert, 100).await;
            alerts.push(s.alert);
        }
        let fast = PrunerSettings {
            first_pass_after: Duration::ZERO,
            every: Duration::from_millis(50),
            batch: 1,
            pause: Duration::from_millis(10),
        };
        let seen = Arc::new(Mutex::new(Vec::<Pruned>::new()));
        let record = {
            let seen = seen.clone();
            Arc::new(move |p: &Pruned| seen.lock().unwrap().push(*p))
        };

        // Off: nothing goes, however long it runs.
        let stop = CancellationToken::new();
        let off = retention::spawn(
            app.store.clone(),
            Retention::Off,
            fast,
            stop.clone(),
            record.clone(),
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        for a in &alerts {
            assert_eq!(rows(&app, a).await.deliveries, 1);
        }
        stop.cancel();
        tokio::time::timeout(Duration::from_secs(5), off)
            .await
            .expect("the pruner stopped")
            .unwrap();
        assert!(seen.lock().unwrap().is_empty());

        let stop = CancellationToken::new();
        let on = retention::spawn(
            app.store.clone(),
            Retention::After(DEFAULT_RETENTION),
            fast,
            stop.clone(),
            record,
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut left = 0;
            for a in &alerts {
                left += rows(&app, a).await.alerts;
            }
            if left == 0 {
                break;
            }
            assert!(Instant::now() < deadline, "the pruner never deleted them");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        stop.cancel();
        tokio::time::timeout(Duration::from_secs(5), on)
            .await
            .expect("the pruner stopped on cancel")
            .unwrap();
        let seen = seen.lock().unwrap();
        assert!(seen.iter().all(|p| p.deliveries <= 1 && !p.is_empty()));
        let mut total = Pruned::default();
        for p in seen.iter() {
            total += *p;
        }
        assert_eq!(
            total,
            Pruned {
                alerts: 3,
                deliveries: 3,
                attempts: 3
            }
        );
    })
    .await
}
