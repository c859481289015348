//! Log types: a destination that lists some receives, by severity, only alerts that name one of
//! them; explicit destinations bypass the filter; alerts keep the names they were sent with.

use std::future::Future;
use std::time::Duration;

use herald_server::store::migrations::Migrator;
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Alias, Query};
use sea_orm_migration::MigratorTrait;

use herald_testkit::{Backend, Receiver};
use serde_json::{Value, json};

use crate::app::{TestApp, test_dispatch};

herald_testkit::on_both_backends!(
    routes_by_log_type_through_every_tier,
    log_type_rules_name_the_field_on_every_alert_input,
    destination_log_types_read_back_update_and_audit,
    rows_from_before_the_migration_take_every_log_type,
);

/// Every test here finishes well within this, or fails.
async fn within(test: impl Future<Output = ()>) {
    tokio::time::timeout(Duration::from_secs(90), test)
        .await
        .expect("the test finished in time");
}

const SEND: &str = "mutation($i: SendAlertInput!) { sendAlert(input: $i) { alert { id logTypes } deliveries { destinationId } warnings } }";

/// The destination ids an alert was queued for, sorted.
fn routed(payload: &Value) -> Vec<String> {
    let mut ids: Vec<String> = payload["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["destinationId"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

fn sorted(ids: &[&Value]) -> Vec<String> {
    let mut v: Vec<String> = ids.iter().map(|i| i.as_str().unwrap().to_owned()).collect();
    v.sort();
    v
}

async fn routes_by_log_type_through_every_tier(backend: Backend) {
    within(routes_by_log_type_through_every_tier_body(backend)).await;
}

async fn routes_by_log_type_through_every_tier_body(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let cloud_rx = Receiver::start().await;
    let other_rx = Receiver::start().await;
    let cloud = app
        .create_destination(json!({"displayName": "Cloud", "url": cloud_rx.url, "logTypes": ["AWS.CloudTrail", "AWS.S3ServerAccess"]}))
        .await;
    let okta = app
        .create_destination(
            json!({"displayName": "Okta", "url": other_rx.url, "logTypes": ["Okta.SystemLog"]}),
        )
        .await;
    let any = app
        .create_destination(json!({"displayName": "Any", "url": other_rx.url}))
        .await;
    let high_cloud = app
        .create_destination(json!({"displayName": "High cloud", "url": other_rx.url, "severities": ["HIGH"], "logTypes": ["AWS.CloudTrail"]}))
        .await;
    let (cloud, okta, any, high_cloud) = (&cloud["id"], &okta["id"], &any["id"], &high_cloud["id"]);
    let send = |input: Value| {
        let app = &app;
        async move { app.admin.query(SEND, json!({"i": input})).await.data()["sendAlert"].clone() }
    };

    // Severity tier: the log-type filter beside the severity filter.
    let r = send(json!({"alertId": "ct-high", "detectionId": "d", "title": "t", "severity": "HIGH", "logTypes": ["AWS.CloudTrail"]})).await;
    assert_eq!(routed(&r), sorted(&[cloud, any, high_cloud]));
    assert_eq!(r["alert"]["logTypes"], json!(["AWS.CloudTrail"]));
    let r = send(json!({"alertId": "ct-low", "detectionId": "d", "title": "t", "severity": "LOW", "logTypes": ["AWS.CloudTrail"]})).await;
    assert_eq!(routed(&r), sorted(&[cloud, any]));
    let r = send(json!({"alertId": "okta", "detectionId": "d", "title": "t", "severity": "HIGH", "logTypes": ["Okta.SystemLog"]})).await;
    assert_eq!(routed(&r), sorted(&[okta, any]));
    // One match among several names is enough; names compare exactly.
    let r = send(json!({"alertId": "two", "detectionId": "d", "title": "t", "severity": "LOW", "logTypes": ["GitHub.Audit", "AWS.S3ServerAccess"]})).await;
    assert_eq!(routed(&r), sorted(&[cloud, any]));
    let r = send(json!({"alertId": "case", "detectionId": "d", "title": "t", "severity": "HIGH", "logTypes": ["aws.cloudtrail"]})).await;
    assert_eq!(routed(&r), sorted(&[any]));
    // An alert that names no log type (a policy, a system error) passes every filter.
    let r = send(json!({"alertId": "policy", "detectionId": "p", "title": "t", "severity": "HIGH", "type": "POLICY"})).await;
    assert_eq!(routed(&r), sorted(&[cloud, okta, any, high_cloud]));
    assert_eq!(r["alert"]["logTypes"], json!([]));
    let r = send(json!({"alertId": "empty", "detectionId": "p", "title": "t", "severity": "HIGH", "logTypes": []})).await;
    assert_eq!(routed(&r), sorted(&[cloud, okta, any, high_cloud]));

    // dynamicSeverity routes, and the log-type filter still applies to that tier.
    let r = send(json!({"alertId": "dynsev", "detectionId": "d", "title": "t", "severity": "LOW", "dynamicSeverity": "HIGH", "logTypes": ["AWS.CloudTrail"]})).await;
    assert_eq!(routed(&r), sorted(&[cloud, any, high_cloud]));

    // Explicit tiers bypass the filter, as they bypass severities.
    let r = send(json!({"alertId": "dyn", "detectionId": "d", "title": "t", "severity": "LOW", "logTypes": ["GitHub.Audit"], "dynamicDestinations": [okta, high_cloud]})).await;
    assert_eq!(routed(&r), sorted(&[okta, high_cloud]));
    let r = send(json!({"alertId": "ovr", "detectionId": "d", "title": "t", "severity": "LOW", "logTypes": ["GitHub.Audit"], "destinationOverrides": [cloud]})).await;
    assert_eq!(routed(&r), sorted(&[cloud]));
    // A tier that names only unknown ids falls back to the filtered severity tier.
    let r = send(json!({"alertId": "fallback", "detectionId": "d", "title": "t", "severity": "LOW", "logTypes": ["GitHub.Audit"], "destinationOverrides": ["dst_gone"]})).await;
    assert_eq!(routed(&r), sorted(&[any]));
    let r = send(json!({"alertId": "skip", "detectionId": "d", "title": "t", "severity": "HIGH", "logTypes": ["AWS.CloudTrail"], "destinationOverrides": ["SKIP"]})).await;
    assert!(routed(&r).is_empty());

    // sendAlerts routes each alert by its own log types.
    let batch = app
        .admin
        .query(
            "mutation($a: [SendAlertInput!]!) { sendAlerts(input: {alerts: $a}) { results { alert { logTypes } deliveries { destinationId } } } }",
            json!({"a": [
                {"alertId": "b-okta", "detectionId": "d", "title": "t", "severity": "MEDIUM", "logTypes": ["Okta.SystemLog"]},
                {"alertId": "b-s3", "detectionId": "d", "title": "t", "severity": "MEDIUM", "logTypes": ["AWS.S3ServerAccess"]},
            ]}),
        )
        .await;
    let results = batch.data()["sendAlerts"]["results"].clone();
    assert_eq!(routed(&results[0]), sorted(&[okta, any]));
    assert_eq!(routed(&results[1]), sorted(&[cloud, any]));

    // POST /v1/alerts takes `logTypes` beside Panther's keys, and the payload sent on is
    // Panther's 13 keys, in order, without it.
    let panther = json!({
        "id": "AWS.Root.Login", "createdAt": "2024-02-03T04:05:06Z", "severity": "LOW",
        "type": "RULE", "link": "", "title": "Root login", "name": "Root login",
        "alertId": "rest-ct", "alertContext": {}, "description": "", "runbook": "",
        "tags": [], "version": "",
    });
    let mut body = panther.clone();
    body["logTypes"] = json!(["AWS.CloudTrail"]);
    let resp = reqwest::Client::new()
        .post(app.url("/v1/alerts"))
        .bearer_auth(&app.admin_token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let accepted: Value = resp.json().await.unwrap();
    assert_eq!(
        accepted["deliveryIds"].as_array().unwrap().len(),
        2,
        "Cloud and Any"
    );
    let read = app
        .admin
        .query(
            "{ alert(id: \"rest-ct\") { logTypes deliveries { destinationId } } }",
            json!({}),
        )
        .await;
    assert_eq!(read.data()["alert"]["logTypes"], json!(["AWS.CloudTrail"]));
    let read = app
        .admin
        .query("{ alert(id: \"policy\") { logTypes } }", json!({}))
        .await;
    assert_eq!(read.data()["alert"]["logTypes"], json!([]));

    // Cloud's receiver got exactly the alerts routed to it: ct-high, ct-low, two, policy, empty,
    // dynsev, ovr, b-s3, rest-ct.
    let got = cloud_rx.wait_for(9, Duration::from_secs(30)).await;
    let mut ids: Vec<String> = got
        .iter()
        .map(|g| g.json()["alertId"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        [
            "b-s3", "ct-high", "ct-low", "dynsev", "empty", "ovr", "policy", "rest-ct", "two"
        ]
    );
    let rest = got
        .iter()
        .find(|g| g.json()["alertId"] == "rest-ct")
        .unwrap();
    assert_eq!(
        std::str::from_utf8(&rest.body).unwrap(),
        serde_json::to_string(&panther).unwrap(),
        "the webhook payload is Panther's 13 keys in order; log types are not added"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(cloud_rx.count(), 9, "nothing else arrived at Cloud");
}

async fn log_type_rules_name_the_field_on_every_alert_input(backend: Backend) {
    within(log_type_rules_name_the_field_on_every_alert_input_body(
        backend,
    ))
    .await;
}

async fn log_type_rules_name_the_field_on_every_alert_input_body(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let bad = json!(["AWS.CloudTrail", "Okta.SystemLog", "AWS CloudTrail"]);
    let resp = app
        .admin
        .query(
            SEND,
            json!({"i": {"detectionId": "d", "title": "t", "severity": "LOW", "logTypes": bad}}),
        )
        .await;
    assert_eq!(resp.error_code(), "BAD_USER_INPUT", "{}", resp.body);
    assert_eq!(resp.error()["extensions"]["field"], "logTypes[2]");
    let message = resp.error()["message"].as_str().unwrap();
    assert!(message.contains("letters, digits"), "{message}");
    assert!(message.contains("\"AWS CloudTrail\""), "{message}");

    let resp = app
        .admin
        .query(
            SEND,
            json!({"i": {"detectionId": "d", "title": "t", "severity": "LOW", "logTypes": ["A.B", "A.B"]}}),
        )
        .await;
    assert_eq!(resp.error()["extensions"]["field"], "logTypes[1]");
    let too_many: Vec<String> = (0..101).map(|i| format!("Custom.T{i}")).collect();
    let resp = app
        .admin
        .query(
            SEND,
            json!({"i": {"detectionId": "d", "title": "t", "severity": "LOW", "logTypes": too_many}}),
        )
        .await;
    assert_eq!(resp.error()["extensions"]["field"], "logTypes");

    let batch = app
        .admin
        .query(
            "mutation($a: [SendAlertInput!]!) { sendAlerts(input: {alerts: $a}) { results { alert { id } } } }",
            json!({"a": [
                {"detectionId": "d", "title": "t", "severity": "LOW", "logTypes": ["AWS.CloudTrail"]},
                {"detectionId": "d", "title": "t", "severity": "LOW", "logTypes": bad},
            ]}),
        )
        .await;
    assert_eq!(
        batch.error()["extensions"]["field"],
        "alerts[1].logTypes[2]"
    );

    let resp = reqwest::Client::new()
        .post(app.url("/v1/alerts"))
        .bearer_auth(&app.admin_token)
        .json(&json!({"id": "d", "title": "t", "severity": "LOW", "logTypes": bad}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["field"], "logTypes[2]");
    assert_eq!(body["code"], "BAD_USER_INPUT");

    let alerts = app
        .admin
        .query("{ alerts { totalCount } }", json!({}))
        .await;
    assert_eq!(
        alerts.data()["alerts"]["totalCount"],
        0,
        "nothing was stored"
    );
}

async fn destination_log_types_read_back_update_and_audit(backend: Backend) {
    within(destination_log_types_read_back_update_and_audit_body(
        backend,
    ))
    .await;
}

async fn destination_log_types_read_back_update_and_audit_body(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let rx = Receiver::start().await;
    let created = app
        .admin
        .query(
            "mutation { createDestination(input: {displayName: \"D\", url: \"https://example.com/\"}) { destination { id logTypes } } }",
            json!({}),
        )
        .await;
    let d = created.data()["createDestination"]["destination"].clone();
    assert_eq!(
        d["logTypes"],
        json!([]),
        "omitted: every log type, shown as []"
    );
    let update = "mutation($i: UpdateDestinationInput!) { updateDestination(input: $i) { destination { logTypes url updatedAt } } }";
    let updated = app
        .admin
        .query(
            update,
            json!({"i": {"id": d["id"], "url": rx.url, "logTypes": ["Okta.SystemLog", "AWS.CloudTrail"]}}),
        )
        .await;
    let u = updated.data()["updateDestination"]["destination"].clone();
    assert_eq!(u["logTypes"], json!(["Okta.SystemLog", "AWS.CloudTrail"]));
    let r = app
        .admin
        .query(
            SEND,
            json!({"i": {"detectionId": "d", "title": "t", "severity": "LOW", "logTypes": ["GitHub.Audit"]}}),
        )
        .await;
    assert!(routed(&r.data()["sendAlert"]).is_empty(), "filtered out");

    // The same list again changes nothing (declarative clients re-apply state).
    let again = app
        .admin
        .query(
            update,
            json!({"i": {"id": d["id"], "logTypes": ["Okta.SystemLog", "AWS.CloudTrail"]}}),
        )
        .await;
    assert_eq!(
        again.data()["updateDestination"]["destination"]["updatedAt"],
        u["updatedAt"]
    );
    // [] receives every log type again.
    let cleared = app
        .admin
        .query(update, json!({"i": {"id": d["id"], "logTypes": []}}))
        .await;
    assert_eq!(
        cleared.data()["updateDestination"]["destination"]["logTypes"],
        json!([])
    );
    let r = app
        .admin
        .query(
            SEND,
            json!({"i": {"detectionId": "d", "title": "t", "severity": "LOW", "logTypes": ["GitHub.Audit"]}}),
        )
        .await;
    assert_eq!(routed(&r.data()["sendAlert"]).len(), 1);

    let events = app.audit_events(&d["id"]).await;
    // Newest first: the clearing, the first change, the creation (the no-op wrote nothing).
    assert_eq!(events.len(), 3, "{events:#?}");
    assert_eq!(events[0]["action"], "destination.updated");
    assert_eq!(events[0]["changedFields"], json!(["logTypes"]));
    assert_eq!(events[1]["changedFields"], json!(["url", "logTypes"]));
    assert!(
        events[2]["changedFields"]
            .as_array()
            .unwrap()
            .contains(&json!("logTypes"))
    );
}

/// A destination and an alert written before `m0003_log_types` read back with `[]` and route as
/// before: the old destination takes every log type.
async fn rows_from_before_the_migration_take_every_log_type(backend: Backend) {
    within(async {
        let dir = tempfile::tempdir().unwrap();
        let url = herald_testkit::fresh_database_url(backend, dir.path());
        let rx = Receiver::start().await;
        let at = chrono::Utc::now();
        {
            let store = herald_server::store::Store::connect(&url, 2).await.unwrap();
            Migrator::up(store.db(), Some(2)).await.unwrap();
            let destination = Query::insert()
                .into_table(Alias::new("destinations"))
                .columns(
                    [
                        "id", "display_name", "display_name_key", "url", "severity_mask",
                        "alert_type_mask", "custom_headers", "enabled", "signing_secret",
                        "created_at", "updated_at",
                    ]
                    .map(Alias::new),
                )
                .values_panic([
                    "dst_old".into(), "Old".into(), "old".into(), rx.url.clone().into(),
                    31.into(), 63.into(), "[]".into(), true.into(),
                    format!("whsec_{}", "A".repeat(43)).into(), at.into(), at.into(),
                ])
                .to_owned();
            store.db().execute(&destination).await.unwrap();
            let alert = Query::insert()
                .into_table(Alias::new("alerts"))
                .columns(
                    [
                        "id", "detection_id", "title", "severity", "alert_type", "created_at",
                        "received_at", "body", "routing",
                    ]
                    .map(Alias::new),
                )
                .values_panic([
                    "alert-old".into(), "d".into(), "t".into(), "HIGH".into(), "RULE".into(),
                    at.into(), at.into(), "{}".into(), "{}".into(),
                ])
                .to_owned();
            store.db().execute(&alert).await.unwrap();
        }
        let app = TestApp::spawn_on(dir, url, test_dispatch()).await;
        let read = app
            .admin
            .query(
                "{ destination(id: \"dst_old\") { logTypes } alert(id: \"alert-old\") { logTypes } }",
                json!({}),
            )
            .await;
        assert_eq!(read.data()["destination"]["logTypes"], json!([]));
        assert_eq!(read.data()["alert"]["logTypes"], json!([]));
        let r = app
            .admin
            .query(
                SEND,
                json!({"i": {"detectionId": "d", "title": "t", "severity": "LOW", "logTypes": ["AWS.CloudTrail"]}}),
            )
            .await;
        assert_eq!(routed(&r.data()["sendAlert"]), ["dst_old"]);
    })
    .await;
}
