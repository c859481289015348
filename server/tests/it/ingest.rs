//! Alerts in: `sendAlerts` batches, input rules, and `POST /v1/alerts` for automation.

use std::time::Duration;

use herald_testkit::{Backend, Receiver, Reply};
use serde_json::{Value, json};

use crate::app::TestApp;

herald_testkit::on_both_backends!(
    send_alerts_stores_a_batch_in_order,
    alert_input_rules_name_the_field,
    rest_endpoint_takes_panthers_payload,
    destinations_changed_by_another_process_route_the_next_alert,
    text_is_stored_exactly_as_sent,
);

async fn send_alerts_stores_a_batch_in_order(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let r = Receiver::start().await;
    app.create_destination(json!({"displayName": "Batch", "url": r.url}))
        .await;
    let alerts: Vec<Value> = (0..250)
        .map(|i| json!({"alertId": format!("batch-{i}"), "detectionId": "d", "title": format!("t{i}"), "severity": "MEDIUM"}))
        .collect();
    let resp = app
        .admin
        .query(
            "mutation($a: [SendAlertInput!]!) { sendAlerts(input: {alerts: $a}) { results { alert { id title } deliveries { id } warnings } } }",
            json!({"a": alerts}),
        )
        .await;
    let results = resp.data()["sendAlerts"]["results"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(results.len(), 250);
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r["alert"]["id"], format!("batch-{i}"));
        assert_eq!(r["deliveries"].as_array().unwrap().len(), 1);
    }
    r.wait_for(250, Duration::from_secs(30)).await;

    let too_many: Vec<Value> = (0..1001)
        .map(|_| json!({"detectionId": "d", "title": "t", "severity": "LOW"}))
        .collect();
    let resp = app
        .admin
        .query(
            "mutation($a: [SendAlertInput!]!) { sendAlerts(input: {alerts: $a}) { results { alert { id } } } }",
            json!({"a": too_many}),
        )
        .await;
    assert_eq!(resp.error()["extensions"]["field"], "alerts");
}

async fn alert_input_rules_name_the_field(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let big = "x".repeat(201 * 1024);
    let cases = [
        (
            json!({"detectionId": "", "title": "t", "severity": "LOW"}),
            "detectionId",
        ),
        (
            json!({"detectionId": "d", "title": "  ", "severity": "LOW"}),
            "title",
        ),
        (
            json!({"detectionId": "d", "title": "t", "severity": "LOW", "context": [1, 2]}),
            "context",
        ),
        (
            json!({"detectionId": "d", "title": "t", "severity": "LOW", "context": {"blob": big}}),
            "context",
        ),
        (
            json!({"detectionId": "d", "title": "t", "severity": "LOW", "alertId": "has space"}),
            "alertId",
        ),
        (
            json!({"detectionId": "d", "title": "t", "severity": "LOW", "dynamicDestinations": (0..11).map(|i| format!("dst_{i}")).collect::<Vec<_>>()}),
            "dynamicDestinations",
        ),
    ];
    for (input, field) in cases {
        let resp = app
            .admin
            .query(
                "mutation($i: SendAlertInput!) { sendAlert(input: $i) { alert { id } } }",
                json!({"i": input}),
            )
            .await;
        assert_eq!(
            resp.error_code(),
            "BAD_USER_INPUT",
            "{field}: {}",
            resp.body
        );
        assert_eq!(resp.error()["extensions"]["field"], field);
    }
    let batch = app
        .admin
        .query(
            "mutation($a: [SendAlertInput!]!) { sendAlerts(input: {alerts: $a}) { results { alert { id } } } }",
            json!({"a": [{"detectionId": "d", "title": "t", "severity": "LOW"}, {"detectionId": "d", "title": "t", "severity": "LOW", "context": "no"}]}),
        )
        .await;
    assert_eq!(batch.error()["extensions"]["field"], "alerts[1].context");
    let alerts = app
        .admin
        .query("{ alerts { totalCount } }", json!({}))
        .await;
    assert_eq!(
        alerts.data()["alerts"]["totalCount"],
        0,
        "a rejected batch stores nothing"
    );
}

async fn rest_endpoint_takes_panthers_payload(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let r = Receiver::start().await;
    app.create_destination(json!({"displayName": "Rest", "url": r.url}))
        .await;
    let http = reqwest::Client::new();
    let url = app.url("/v1/alerts");
    let payload = json!({
        "id": "Okta.Brute.Force", "createdAt": "2024-02-03T04:05:06Z", "severity": "CRITICAL",
        "type": "RULE", "link": "https://panther.example/a/1", "title": "Brute force", "name": "Okta brute force",
        "alertId": "rest-1", "alertContext": {"user": "alice"}, "description": "many failures",
        "runbook": "lock the account", "tags": ["okta"], "version": "v1",
    });
    let resp = http
        .post(&url)
        .bearer_auth(&app.admin_token)
        .json(&payload)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["alertId"], "rest-1");
    assert_eq!(body["deliveryIds"].as_array().unwrap().len(), 1);
    let got = r.wait_for(1, Duration::from_secs(20)).await.remove(0);
    assert_eq!(
        got.json(),
        payload,
        "Panther's payload goes through unchanged"
    );
    assert_eq!(
        std::str::from_utf8(&got.body).unwrap(),
        serde_json::to_string(&payload).unwrap(),
        "and in Panther's key order"
    );

    let again = http
        .post(&url)
        .bearer_auth(&app.admin_token)
        .json(&payload)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 202);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["duplicate"], true);
    assert_eq!(again["deliveryIds"], body["deliveryIds"]);

    let no_token = http.post(&url).json(&payload).send().await.unwrap();
    assert_eq!(no_token.status(), 401);
    assert_eq!(
        no_token.json::<Value>().await.unwrap()["code"],
        "UNAUTHENTICATED"
    );

    let viewer_token = {
        let (_, t) = herald_server::store::tokens::create(
            app.store.db(),
            &herald_server::store::audit::Actor::cli(),
            "rest-viewer",
            herald_server::store::tokens::Role::Viewer,
        )
        .await
        .unwrap();
        t
    };
    let forbidden = http
        .post(&url)
        .bearer_auth(&viewer_token)
        .json(&payload)
        .send()
        .await
        .unwrap();
    assert_eq!(forbidden.status(), 403);

    let mut missing = payload.clone();
    missing.as_object_mut().unwrap().remove("severity");
    missing["alertId"] = json!("rest-2");
    let bad = http
        .post(&url)
        .bearer_auth(&app.admin_token)
        .json(&missing)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let bad: Value = bad.json().await.unwrap();
    assert_eq!(bad["field"], "severity");

    let mut unknown = payload.clone();
    unknown["severity"] = json!("SEVERE");
    let bad = http
        .post(&url)
        .bearer_auth(&app.admin_token)
        .json(&unknown)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    assert!(
        bad.json::<Value>().await.unwrap()["error"]
            .as_str()
            .unwrap()
            .contains("INFO, LOW")
    );

    let not_json = http
        .post(&url)
        .bearer_auth(&app.admin_token)
        .body("nope")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), 400);

    let mut huge = payload.clone();
    huge["alertId"] = json!("rest-3");
    huge["alertContext"] = json!({"blob": "x".repeat(400 * 1024)});
    let too_big = http
        .post(&url)
        .bearer_auth(&app.admin_token)
        .json(&huge)
        .send()
        .await
        .unwrap();
    assert_eq!(too_big.status(), 413);
    let mut big_context = payload.clone();
    big_context["alertId"] = json!("rest-4");
    big_context["alertContext"] = json!({"blob": "x".repeat(220 * 1024)});
    let too_big = http
        .post(&url)
        .bearer_auth(&app.admin_token)
        .json(&big_context)
        .send()
        .await
        .unwrap();
    assert_eq!(too_big.status(), 413);
    assert_eq!(
        too_big.json::<Value>().await.unwrap()["field"],
        "alertContext"
    );

    let alerts = app
        .admin
        .query("{ alerts { totalCount } }", json!({}))
        .await;
    assert_eq!(alerts.data()["alerts"]["totalCount"], 1);
}

/// Another process (a second replica, or a script on the database) renames one destination and
/// deletes another between two alerts: the second alert is routed by the database as it now is.
/// On SQLite the write path keeps the destinations in memory between alert groups (`store::snapshot`);
/// this is what keeps that copy honest.
async fn destinations_changed_by_another_process_route_the_next_alert(backend: Backend) {
    use sea_orm::{ConnectionTrait, Database};

    let app = TestApp::spawn(backend).await;
    let r = Receiver::start().await;
    let kept = app
        .create_destination(json!({"displayName": "Before", "url": r.url}))
        .await;
    let dropped = app
        .create_destination(json!({"displayName": "Doomed", "url": r.url}))
        .await;
    let first = app
        .send_alert(json!({"detectionId": "d", "title": "first", "severity": "HIGH"}))
        .await;
    assert_eq!(first["deliveries"].as_array().unwrap().len(), 2);

    let other = Database::connect(app.database_url.as_str()).await.unwrap();
    other
        .execute_unprepared(&format!(
            "UPDATE destinations SET display_name = 'After' WHERE id = '{}'",
            kept["id"].as_str().unwrap()
        ))
        .await
        .unwrap();
    other
        .execute_unprepared(&format!(
            "DELETE FROM destinations WHERE id = '{}'",
            dropped["id"].as_str().unwrap()
        ))
        .await
        .unwrap();
    other.close().await.unwrap();

    let second = app
        .send_alert(json!({"detectionId": "d", "title": "second", "severity": "HIGH"}))
        .await;
    let deliveries = second["deliveries"].as_array().unwrap();
    assert_eq!(
        deliveries.len(),
        1,
        "a destination deleted elsewhere got a delivery: {deliveries:?}"
    );
    assert_eq!(deliveries[0]["destinationId"], kept["id"]);
    assert_eq!(
        deliveries[0]["label"], "After",
        "the delivery carries the name the destination had before the rename"
    );
}

/// PostgreSQL: an alert group holds `destination_epoch` FOR SHARE from routing to commit, so a
/// destination's deletion (whose trigger moves the counter) waits for the groups that may have
/// routed to it, and then ends their deliveries too. Here the test holds that lock as an alert
/// group would, and the deletion must wait for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_deleting_a_destination_waits_for_alert_groups_in_flight() {
    use sea_orm::{ConnectionTrait, Database, TransactionTrait};

    let app = TestApp::spawn(Backend::Postgres).await;
    let r = Receiver::start().await;
    let doomed = app
        .create_destination(json!({"displayName": "Doomed", "url": r.url}))
        .await;
    let other = Database::connect(app.database_url.as_str()).await.unwrap();
    let group = other.begin().await.unwrap();
    group
        .execute_unprepared("SELECT n FROM destination_epoch WHERE id = 1 FOR SHARE")
        .await
        .unwrap();

    let admin = app.admin.clone();
    let id = doomed["id"].clone();
    let deletion = tokio::spawn(async move {
        admin
            .query(
                "mutation($id: ID!) { deleteDestination(input: {id: $id}) { deletedId } }",
                json!({"id": id}),
            )
            .await
    });
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        !deletion.is_finished(),
        "the deletion went ahead while an alert group held the destinations"
    );
    group.commit().await.unwrap();
    let resp = tokio::time::timeout(Duration::from_secs(10), deletion)
        .await
        .expect("the deletion finished once the group committed")
        .unwrap();
    assert_eq!(resp.data()["deleteDestination"]["deletedId"], doomed["id"]);
}

/// Quotes, backslashes, control characters, JSON-looking text and characters outside the BMP come
/// back as they went in: in the alert (stored with its deliveries in one multi-row insert), in
/// the body a receiver gets, and in an attempt's stored response. On PostgreSQL those rows go
/// to the database as JSON (`store::sql`), so this is also the check that nothing is lost there.
async fn text_is_stored_exactly_as_sent(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let r = Receiver::start().await;
    let tricky = "a \"quoted\" \\path\\ with\ttab\nnewline \u{1} é 中文 🚨 {\"json\": [1, null]} \u{202e}rtl";
    r.queue([Reply::status(500, tricky)]);
    app.create_destination(json!({"displayName": "Exact", "url": r.url}))
        .await;
    let alerts: Vec<Value> = (0..3)
        .map(|i| {
            json!({"alertId": format!("exact-{i}"), "detectionId": format!("Rule.{tricky}"),
                   "title": format!("{i} {tricky}"), "severity": "HIGH",
                   "context": {"text": tricky, "nested": {"k\"ey": [tricky, 1.5, true, null]}}})
        })
        .collect();
    let resp = app
        .admin
        .query(
            "mutation($a: [SendAlertInput!]!) { sendAlerts(input: {alerts: $a}) { results { alert { id } deliveries { id } } } }",
            json!({"a": alerts}),
        )
        .await;
    let results = resp.data()["sendAlerts"]["results"].clone();
    for (i, result) in results.as_array().unwrap().iter().enumerate() {
        let stored = app
            .admin
            .query(
                "query($id: ID!) { alert(id: $id) { detectionId title payload } }",
                json!({"id": result["alert"]["id"]}),
            )
            .await;
        let alert = &stored.data()["alert"];
        assert_eq!(alert["detectionId"], format!("Rule.{tricky}"));
        assert_eq!(alert["title"], format!("{i} {tricky}"));
        assert_eq!(alert["payload"]["alertContext"]["text"], tricky);
        assert_eq!(
            alert["payload"]["alertContext"]["nested"]["k\"ey"],
            json!([tricky, 1.5, true, null])
        );
        let d = app.wait_final(&result["deliveries"][0]["id"]).await;
        assert_eq!(d["state"], "SUCCEEDED", "{d:#}");
    }
    // The first attempt of all was answered 500 with the text as its body (and retried).
    let received = r.wait_for(4, Duration::from_secs(20)).await;
    let first = received[0].json();
    assert_eq!(first["alertContext"]["text"], tricky);
    let all_attempts = app
        .admin
        .query(
            "{ deliveries(first: 10) { nodes { attempts { statusCode responseBody } } } }",
            json!({}),
        )
        .await;
    let bodies: Vec<Value> = all_attempts.data()["deliveries"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|n| n["attempts"].as_array().unwrap().clone())
        .filter(|a| a["statusCode"] == 500)
        .map(|a| a["responseBody"].clone())
        .collect();
    assert_eq!(bodies, vec![json!(tricky)]);
}
