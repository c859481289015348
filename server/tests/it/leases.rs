//! Leases a worker lost track of in a database failure: a claim whose COMMIT took effect while
//! its answer was lost leaves deliveries leased to a worker that never got them. Once the
//! database answers again, that worker hands them back instead of letting them wait out the lease.

use std::time::{Duration, Instant};

use herald_server::dispatch::Dispatcher;
use herald_server::dispatch::retry::RetrySchedule;
use herald_testkit::{Backend, PgCluster, Receiver, Reply};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::app::{TestApp, test_dispatch};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_orphaned_by_a_database_failure_are_handed_back_when_it_returns() {
    // A failed first attempt leaves the delivery RETRYING, next due in ten minutes.
    let mut dispatch = test_dispatch();
    dispatch.retry_schedule = Some(RetrySchedule::parse(&["10m"; 10].join(",")).unwrap());
    let app = TestApp::spawn_with(Backend::Postgres, dispatch).await;
    let receiver = Receiver::start().await;
    receiver.queue([Reply::status(500, "not yet")]);
    app.create_destination(json!({"displayName": "Sink", "url": receiver.url}))
        .await;
    let sent = app
        .send_alert(json!({"detectionId": "d", "title": "orphan", "severity": "HIGH"}))
        .await;
    let delivery = sent["deliveries"][0]["id"].as_str().unwrap().to_owned();
    app.wait_delivery(&json!(delivery), Duration::from_secs(20), |d| {
        d["state"] == "RETRYING"
    })
    .await;
    assert_eq!(receiver.count(), 1);

    // A second worker beside the app's, whose id the test knows.
    let mut long_lease = test_dispatch();
    long_lease.lease = Duration::from_secs(600);
    let worker = Dispatcher::new(app.store.clone(), long_lease).unwrap();
    let stop = CancellationToken::new();
    let running = worker.start(stop.clone());

    // What a claim cut off by the failure leaves: the row leased to that worker for ten minutes,
    // and not in the worker's hands.
    let cluster = PgCluster::shared();
    let db = app.pg_database_name();
    cluster
        .psql(
            &db,
            &format!(
                "UPDATE deliveries SET lease_owner = '{}', \
                 lease_expires_at = now() + interval '10 minutes', \
                 next_attempt_at = now() + interval '10 minutes' WHERE id = '{delivery}'",
                worker.worker_id()
            ),
        )
        .unwrap();
    // The database goes away for a moment: the worker's claims fail.
    app.cut_off_database();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    app.reconnect_database();

    // Delivered within seconds, not after the ten-minute lease.
    let deadline = Instant::now() + Duration::from_secs(20);
    while receiver.count() < 2 {
        assert!(
            Instant::now() < deadline,
            "the orphaned delivery was not handed back after the database returned"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let d = app.wait_final(&json!(delivery)).await;
    assert_eq!(d["state"], "SUCCEEDED");
    assert_eq!(receiver.count(), 2, "the retry went out once");
    stop.cancel();
    let _ = running.await;
}
