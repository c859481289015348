//! Lists read their nested fields in batches (attempts, alert, destination, counts) and their
//! totals from counts the database keeps: every row must still show its own data, and every
//! total must match the rows, on pages that mix several alerts and destinations and after
//! deliveries change state or are pruned.

use std::collections::HashMap;
use std::time::Duration;

use herald_server::retention::{self, PrunerSettings};
use herald_testkit::{Backend, Receiver, Reply};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::app::TestApp;

herald_testkit::on_both_backends!(
    a_mixed_page_shows_each_rows_own_attempts_alert_and_destination,
    totals_and_counts_follow_new_deliveries_state_changes_and_pruning,
    the_counts_equal_the_stored_deliveries_after_every_kind_of_write,
);

const BOUND: Duration = Duration::from_secs(90);

/// Three destinations that answer differently (A: 200 at once; B: 500 twice, then 200; C: 500
/// always) and three alerts, each routed to two of them, all delivered to the end.
struct Mixed {
    app: TestApp,
    /// Destination id → display name.
    names: HashMap<String, String>,
    /// Destination ids in the order A, B, C.
    ids: Vec<String>,
    /// Alert id → title.
    titles: HashMap<String, String>,
    _receivers: Vec<Receiver>,
}

async fn mixed(backend: Backend) -> Mixed {
    let app = TestApp::spawn(backend).await;
    let (ra, rb, rc) = (
        Receiver::start().await,
        Receiver::start().await,
        Receiver::start().await,
    );
    rb.queue([Reply::status(500, "b1"), Reply::status(500, "b2")]);
    rc.always(Reply::status(500, "never"));
    let mut names = HashMap::new();
    let mut ids = Vec::new();
    for (name, r) in [("Alpha", &ra), ("Bravo", &rb), ("Charlie", &rc)] {
        let d = app
            .create_destination(json!({"displayName": name, "url": r.url}))
            .await;
        let id = d["id"].as_str().unwrap().to_owned();
        names.insert(id.clone(), name.to_owned());
        ids.push(id);
    }
    let mut titles = HashMap::new();
    let mut deliveries = Vec::new();
    for (title, to) in [
        ("first", [&ids[0], &ids[1]]),
        ("second", [&ids[1], &ids[2]]),
        ("third", [&ids[0], &ids[2]]),
    ] {
        let sent = app
            .send_alert(json!({
                "detectionId": format!("det.{title}"),
                "title": title,
                "severity": "HIGH",
                "destinationOverrides": to,
            }))
            .await;
        titles.insert(
            sent["alert"]["id"].as_str().unwrap().to_owned(),
            title.to_owned(),
        );
        deliveries.extend(sent["deliveries"].as_array().unwrap().clone());
    }
    assert_eq!(
        deliveries.len(),
        6,
        "each alert reaches its two destinations"
    );
    for d in &deliveries {
        app.wait_final(&d["id"]).await;
    }
    Mixed {
        app,
        names,
        ids,
        titles,
        _receivers: vec![ra, rb, rc],
    }
}

fn list(v: &Value) -> &Vec<Value> {
    v.as_array().unwrap_or_else(|| panic!("not a list: {v:#}"))
}

async fn a_mixed_page_shows_each_rows_own_attempts_alert_and_destination(backend: Backend) {
    tokio::time::timeout(BOUND, async {
        let m = mixed(backend).await;
        let resp = m
            .app
            .admin
            .query(
                "{ deliveries(first: 100) { totalCount nodes {
                    id alertId destinationId state attemptCount statusCode requestBody
                    alert { id title }
                    destination { id displayName }
                    attempts { number statusCode }
                } } }",
                json!({}),
            )
            .await;
        let page = &resp.data()["deliveries"];
        assert_eq!(page["totalCount"], 6);
        let nodes = list(&page["nodes"]);
        assert_eq!(nodes.len(), 6);
        for n in nodes {
            let alert_id = n["alertId"].as_str().unwrap();
            let dest_id = n["destinationId"].as_str().unwrap();
            assert_eq!(n["alert"]["id"], alert_id, "{n:#}");
            assert_eq!(n["alert"]["title"], m.titles[alert_id], "{n:#}");
            assert_eq!(n["destination"]["id"], dest_id, "{n:#}");
            assert_eq!(n["destination"]["displayName"], m.names[dest_id], "{n:#}");
            let body: Value = serde_json::from_str(n["requestBody"].as_str().unwrap()).unwrap();
            assert_eq!(body["title"], m.titles[alert_id], "{n:#}");

            // The attempts are this delivery's: as many as it counts, numbered from 1, the last
            // one's status is the delivery's.
            let attempts = list(&n["attempts"]);
            assert_eq!(attempts.len() as i64, n["attemptCount"].as_i64().unwrap(), "{n:#}");
            let numbers: Vec<i64> = attempts.iter().map(|a| a["number"].as_i64().unwrap()).collect();
            assert_eq!(numbers, (1..=attempts.len() as i64).collect::<Vec<_>>(), "{n:#}");
            assert_eq!(attempts.last().unwrap()["statusCode"], n["statusCode"], "{n:#}");
            let statuses: Vec<i64> =
                attempts.iter().map(|a| a["statusCode"].as_i64().unwrap()).collect();
            if dest_id == m.ids[0] {
                assert_eq!(statuses, [200], "Alpha answers 200 at once: {n:#}");
                assert_eq!(n["state"], "SUCCEEDED");
            } else if dest_id == m.ids[2] {
                assert_eq!(statuses, [500; 11], "Charlie always fails: {n:#}");
                assert_eq!(n["state"], "FAILED");
            } else {
                assert_eq!(n["state"], "SUCCEEDED", "{n:#}");
                assert_eq!(statuses.last(), Some(&200), "{n:#}");
            }
        }

        // From the alerts' side: each alert's deliveries are its own, to the destinations it
        // named, each with that destination.
        let resp = m
            .app
            .admin
            .query(
                "{ alerts(first: 10) { nodes { id title deliveries { alertId destinationId destination { id } attempts { number } attemptCount } } } }",
                json!({}),
            )
            .await;
        let alerts = list(&resp.data()["alerts"]["nodes"]);
        assert_eq!(alerts.len(), 3);
        for a in alerts {
            let want: Vec<&String> = match a["title"].as_str().unwrap() {
                "first" => vec![&m.ids[0], &m.ids[1]],
                "second" => vec![&m.ids[1], &m.ids[2]],
                _ => vec![&m.ids[0], &m.ids[2]],
            };
            let ds = list(&a["deliveries"]);
            let mut got: Vec<&str> = ds
                .iter()
                .map(|d| {
                    assert_eq!(d["alertId"], a["id"], "{a:#}");
                    assert_eq!(d["destination"]["id"], d["destinationId"], "{a:#}");
                    assert_eq!(
                        list(&d["attempts"]).len() as i64,
                        d["attemptCount"].as_i64().unwrap(),
                        "{a:#}"
                    );
                    d["destinationId"].as_str().unwrap()
                })
                .collect();
            got.sort_unstable();
            let mut want: Vec<&str> = want.into_iter().map(String::as_str).collect();
            want.sort_unstable();
            assert_eq!(got, want, "{a:#}");
        }

        // And from the destinations' side: each one's counts are its own.
        let resp = m
            .app
            .admin
            .query(
                "{ destinations(first: 10) { nodes { id deliveryCounts { pending retrying succeeded failed } } } }",
                json!({}),
            )
            .await;
        let counts: HashMap<String, Value> = list(&resp.data()["destinations"]["nodes"])
            .iter()
            .map(|d| (d["id"].as_str().unwrap().to_owned(), d["deliveryCounts"].clone()))
            .collect();
        let done = |succeeded: u64, failed: u64| {
            json!({"pending": 0, "retrying": 0, "succeeded": succeeded, "failed": failed})
        };
        assert_eq!(counts[&m.ids[0]], done(2, 0));
        assert_eq!(counts[&m.ids[1]], done(2, 0));
        assert_eq!(counts[&m.ids[2]], done(0, 2));
    })
    .await
    .expect("the test finished in time");
}

async fn totals(app: &TestApp, dest: &str) -> Value {
    app.admin
        .query(
            "query($d: ID!) {
                all: deliveries { totalCount }
                failed: deliveries(state: FAILED) { totalCount }
                succeeded: deliveries(state: SUCCEEDED) { totalCount }
                ofDest: deliveries(destinationId: $d) { totalCount }
                ofDestFailed: deliveries(destinationId: $d, state: FAILED) { totalCount }
                destination(id: $d) {
                    deliveries(state: SUCCEEDED) { totalCount }
                    deliveryCounts { pending retrying succeeded failed }
                }
            }",
            json!({"d": dest}),
        )
        .await
        .data()
        .clone()
}

async fn totals_and_counts_follow_new_deliveries_state_changes_and_pruning(backend: Backend) {
    tokio::time::timeout(BOUND, async {
        let m = mixed(backend).await;
        let charlie = m.ids[2].clone();
        let t = totals(&m.app, &charlie).await;
        assert_eq!(t["all"]["totalCount"], 6, "{t:#}");
        assert_eq!(t["failed"]["totalCount"], 2, "{t:#}");
        assert_eq!(t["succeeded"]["totalCount"], 4, "{t:#}");
        assert_eq!(t["ofDest"]["totalCount"], 2, "{t:#}");
        assert_eq!(t["ofDestFailed"]["totalCount"], 2, "{t:#}");
        assert_eq!(t["destination"]["deliveries"]["totalCount"], 0, "{t:#}");

        // Folding PostgreSQL's count deltas changes no total (a no-op on SQLite).
        herald_server::store::counts::compact(m.app.store.db())
            .await
            .unwrap();
        assert_eq!(totals(&m.app, &charlie).await, t);

        // A re-send is a new delivery: counted PENDING, then moved to its final state (Charlie
        // still fails).
        let alert = m
            .titles
            .iter()
            .find(|(_, t)| *t == "second")
            .map(|(id, _)| id.clone())
            .unwrap();
        let resent = m
            .app
            .admin
            .query(
                "mutation($a: ID!, $d: ID!) { resendAlert(input: {alertId: $a, destinationIds: [$d]}) { deliveries { id } } }",
                json!({"a": alert, "d": charlie}),
            )
            .await;
        let resent_id = resent.data()["resendAlert"]["deliveries"][0]["id"].clone();
        m.app.wait_final(&resent_id).await;
        let t = totals(&m.app, &charlie).await;
        assert_eq!(t["all"]["totalCount"], 7, "{t:#}");
        assert_eq!(t["ofDestFailed"]["totalCount"], 3, "{t:#}");
        assert_eq!(
            t["destination"]["deliveryCounts"],
            json!({"pending": 0, "retrying": 0, "succeeded": 0, "failed": 3}),
            "{t:#}"
        );

        // Pruning every finished delivery takes the totals down to zero.
        let stop = CancellationToken::new();
        let cutoff = chrono::Utc::now() + chrono::Duration::hours(1);
        retention::run_pass(
            &m.app.store,
            cutoff,
            &PrunerSettings::default(),
            &|_| {},
            &stop,
        )
        .await
        .unwrap();
        herald_server::store::counts::compact(m.app.store.db())
            .await
            .unwrap();
        let t = totals(&m.app, &charlie).await;
        for k in ["all", "failed", "succeeded", "ofDest", "ofDestFailed"] {
            assert_eq!(t[k]["totalCount"], 0, "{k}: {t:#}");
        }
        assert_eq!(
            t["destination"]["deliveryCounts"],
            json!({"pending": 0, "retrying": 0, "succeeded": 0, "failed": 0}),
            "{t:#}"
        );
    })
    .await
    .expect("the test finished in time");
}

/// Every (destination, state) whose kept count differs from the rows in `deliveries`: the kept
/// counts (summed, as readers do) against a full count of the table.
async fn counts_off(app: &TestApp) -> Vec<String> {
    use sea_orm::{ConnectionTrait, Statement};
    let db = app.store.db();
    let backend = db.get_database_backend();
    let read = |sql: &'static str| async move {
        db.query_all_raw(Statement::from_string(backend, sql))
            .await
            .unwrap()
            .into_iter()
            .map(|r| {
                let d: String = r.try_get_by_index(0).unwrap();
                let s: String = r.try_get_by_index(1).unwrap();
                let n: i64 = r.try_get_by_index(2).unwrap();
                ((d, s), n)
            })
            .filter(|(_, n)| *n != 0)
            .collect::<HashMap<(String, String), i64>>()
    };
    let rows = read(
        "SELECT destination_id, state, CAST(COUNT(*) AS BIGINT) FROM deliveries \
         GROUP BY destination_id, state",
    )
    .await;
    let kept = read(
        "SELECT destination_id, state, CAST(SUM(n) AS BIGINT) FROM delivery_counts \
         GROUP BY destination_id, state",
    )
    .await;
    let mut off: Vec<String> = rows
        .keys()
        .chain(kept.keys())
        .filter(|k| rows.get(*k) != kept.get(*k))
        .map(|k| format!("{k:?}: {:?} stored, {:?} counted", rows.get(k), kept.get(k)))
        .collect();
    off.sort();
    off.dedup();
    off
}

/// After each kind of write that adds deliveries or moves their state (sent, retried, failed for
/// good, a test alert, a re-send, ended without an attempt, ended by deleting the destination),
/// the kept counts equal a count of the rows.
async fn the_counts_equal_the_stored_deliveries_after_every_kind_of_write(backend: Backend) {
    tokio::time::timeout(BOUND, async {
        // Sent, retried, succeeded and failed for good.
        let m = mixed(backend).await;
        let app = &m.app;
        assert_eq!(counts_off(app).await, Vec::<String>::new(), "after delivery");

        // A test alert, and a re-send.
        let tested = app
            .admin
            .query(
                "mutation($id: ID!) { sendTestAlert(input: {destinationId: $id}) { delivery { state } } }",
                json!({"id": m.ids[0]}),
            )
            .await;
        assert_eq!(tested.data()["sendTestAlert"]["delivery"]["state"], "SUCCEEDED");
        let page = app
            .admin
            .query("{ deliveries(first: 1) { nodes { id } } }", json!({}))
            .await;
        let resent = app
            .admin
            .query(
                "mutation($id: ID!) { resendDelivery(input: {deliveryId: $id}) { delivery { id } } }",
                json!({"id": page.data()["deliveries"]["nodes"][0]["id"]}),
            )
            .await;
        app.wait_final(&resent.data()["resendDelivery"]["delivery"]["id"])
            .await;
        assert_eq!(counts_off(app).await, Vec::<String>::new(), "after a test alert and a re-send");

        // Deliveries that wait for a rate-limited destination's next token, one ended without
        // an attempt, then the rest ended by deleting the destination.
        let r = Receiver::start().await;
        let paused = app
            .create_destination(json!({"displayName": "Paused", "url": r.url, "rateLimitPerMinute": 1}))
            .await;
        let mut sent_ids = Vec::new();
        for title in ["held-1", "held-2", "held-3"] {
            let sent = app
                .send_alert(json!({
                    "detectionId": "det.held",
                    "title": title,
                    "severity": "HIGH",
                    "destinationOverrides": [paused["id"]],
                }))
                .await;
            sent_ids.push(sent["deliveries"][0]["id"].clone());
        }
        // One token a minute: the first goes, the other two wait.
        app.wait_final(&sent_ids[0]).await;
        let waiting: Vec<String> = sent_ids[1..]
            .iter()
            .map(|id| id.as_str().unwrap().to_owned())
            .collect();
        for id in &waiting {
            assert_eq!(app.delivery(&json!(id)).await["state"], "PENDING");
        }
        assert_eq!(counts_off(app).await, Vec::<String>::new(), "with deliveries waiting");
        herald_server::store::deliveries::fail_without_attempt(
            app.store.writer(),
            "wrk_test",
            &waiting[0],
            "destination gone",
        )
        .await
        .unwrap();
        assert_eq!(counts_off(app).await, Vec::<String>::new(), "after one ended without an attempt");
        app.delete_destination(&paused["id"]).await;
        for id in &waiting {
            assert_eq!(app.delivery(&json!(id)).await["state"], "FAILED");
        }
        assert_eq!(counts_off(app).await, Vec::<String>::new(), "after the destination was deleted");
    })
    .await
    .expect("the test finished in time");
}
