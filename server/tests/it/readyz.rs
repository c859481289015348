//! `/readyz`: 200 only while the database answers, every migration is applied and the dispatcher
//! runs; otherwise 503 saying which. `/healthz` stays the liveness check.

use std::time::{Duration, Instant};

use herald_server::dispatch::Dispatcher;
use herald_testkit::Backend;
use sea_orm::ConnectionTrait;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::app::{TestApp, test_dispatch};

async fn readyz(app: &TestApp) -> (u16, Value) {
    // No token: an orchestrator's probe has none.
    let resp = reqwest::Client::new()
        .get(app.url("/readyz"))
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

async fn readyz_until(app: &TestApp, status: u16) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (got, body) = readyz(app).await;
        if got == status {
            return body;
        }
        assert!(Instant::now() < deadline, "/readyz stayed {got}: {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn ready_when_everything_runs(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let body = readyz_until(&app, 200).await;
    assert_eq!(
        body,
        json!({"status": "ok", "checks": {"database": "ok", "migrations": "ok", "dispatcher": "ok"}})
    );
}

async fn a_missing_migration_makes_it_unready(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    readyz_until(&app, 200).await;
    // As if the database were older than the binary: its newest migration is not recorded.
    let newest = "m0006_auto_disable";
    app.store
        .db()
        .execute_unprepared(&format!(
            "DELETE FROM seaql_migrations WHERE version = '{newest}'"
        ))
        .await
        .unwrap();
    let (status, body) = readyz(&app).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["checks"]["database"], "ok");
    assert_eq!(body["checks"]["dispatcher"], "ok");
    assert_eq!(body["checks"]["migrations"], format!("pending: {newest}"));
    // The liveness check does not care: restarting would not help.
    let health = reqwest::get(app.url("/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);
}

/// PostgreSQL refuses every new connection to the database and ends the open ones: the server
/// is unready, naming the database, until the database takes connections again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_does_not_answer_makes_it_unready() {
    let app = TestApp::spawn(Backend::Postgres).await;
    readyz_until(&app, 200).await;
    app.cut_off_database();
    let body = readyz_until(&app, 503).await;
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["checks"]["database"], "unreachable", "{body}");
    assert_eq!(body["checks"]["dispatcher"], "ok", "{body}");

    app.reconnect_database();
    // Back by itself, without a restart.
    readyz_until(&app, 200).await;
}

/// `Dispatcher::is_running` (what `/readyz` reads) follows the claim loop's life.
#[tokio::test]
async fn the_dispatcher_says_whether_it_runs() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let dispatcher = Dispatcher::new(app.store.clone(), test_dispatch()).unwrap();
    assert!(!dispatcher.is_running(), "not started");
    let stop = CancellationToken::new();
    let handle = dispatcher.start(stop.clone());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !dispatcher.is_running() {
        assert!(Instant::now() < deadline, "never started");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(10), handle)
        .await
        .unwrap()
        .unwrap();
    assert!(!dispatcher.is_running(), "stopped");
}

herald_testkit::on_both_backends!(
    ready_when_everything_runs,
    a_missing_migration_makes_it_unready
);
