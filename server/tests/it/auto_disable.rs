//! Auto-disable: a destination whose deliveries keep ending FAILED is disabled by Herald, says why,
//! is audited and streamed; its waiting deliveries are held until it is enabled again.

use std::future::Future;
use std::time::{Duration, Instant};

use futures::SinkExt;
use herald_server::store::migrations::Migrator;
use herald_testkit::{Backend, Receiver, Reply};
use sea_orm::ConnectionTrait;
use sea_orm::sea_query::{Alias, Query};
use sea_orm_migration::MigratorTrait;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::app::{DELIVERY_FIELDS, TestApp, test_dispatch};
use crate::subscription::{Ws, connect, next_json};

herald_testkit::on_both_backends!(
    failures_in_one_batch_reach_the_threshold_and_disable_with_reason_and_audit,
    test_alerts_do_not_count_and_a_success_resets_the_count,
    held_deliveries_go_out_when_reenabled_and_both_changes_stream,
    threshold_is_validated_and_clearable,
    destinations_from_before_the_migration_count_from_zero,
);

/// Every test here ends within 90 s, whatever the waits inside it do.
async fn within(test: impl Future<Output = ()>) {
    tokio::time::timeout(Duration::from_secs(90), test)
        .await
        .expect("the test finished in time");
}

async fn failures_in_one_batch_reach_the_threshold_and_disable_with_reason_and_audit(
    backend: Backend,
) {
    within(
        failures_in_one_batch_reach_the_threshold_and_disable_with_reason_and_audit_steps(backend),
    )
    .await
}

async fn test_alerts_do_not_count_and_a_success_resets_the_count(backend: Backend) {
    within(test_alerts_do_not_count_and_a_success_resets_the_count_steps(backend)).await
}

async fn held_deliveries_go_out_when_reenabled_and_both_changes_stream(backend: Backend) {
    within(held_deliveries_go_out_when_reenabled_and_both_changes_stream_steps(backend)).await
}

async fn threshold_is_validated_and_clearable(backend: Backend) {
    within(threshold_is_validated_and_clearable_steps(backend)).await
}

const FIELDS: &str = "id enabled autoDisableAfterFailures disabledReason disabledAt";

async fn destination(app: &TestApp, id: &Value) -> Value {
    app.admin
        .query(
            &format!("query($id: ID!) {{ destination(id: $id) {{ {FIELDS} }} }}"),
            json!({"id": id}),
        )
        .await
        .data()["destination"]
        .clone()
}

async fn wait_destination(app: &TestApp, id: &Value, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let d = destination(app, id).await;
        if done(&d) {
            return d;
        }
        assert!(
            Instant::now() < deadline,
            "destination never changed: {d:#}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn update(app: &TestApp, input: Value) -> herald_testkit::GqlResponse {
    app.admin
        .query(
            &format!("mutation($input: UpdateDestinationInput!) {{ updateDestination(input: $input) {{ destination {{ {FIELDS} }} }} }}"),
            json!({"input": input}),
        )
        .await
}

async fn subscribe(app: &TestApp, id: &Value) -> Ws {
    let mut ws = connect(app).await;
    let init = json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {}", app.admin_token)}});
    ws.send(Message::Text(init.to_string().into()))
        .await
        .unwrap();
    assert_eq!(next_json(&mut ws).await.unwrap()["type"], "connection_ack");
    let subscribe = json!({
        "id": "1", "type": "subscribe",
        "payload": {
            "query": "subscription($id: ID) { destinationUpdated(id: $id) { id enabled disabledReason disabledAt } }",
            "variables": {"id": id},
        },
    });
    ws.send(Message::Text(subscribe.to_string().into()))
        .await
        .unwrap();
    // The subscription is live once the server has read it; there is no acknowledgement.
    tokio::time::sleep(Duration::from_millis(200)).await;
    ws
}

/// The next `destinationUpdated` payload (bounded by `next_json`'s 20 s).
async fn next_destination(ws: &mut Ws) -> Value {
    let msg = next_json(ws).await.expect("a destinationUpdated event");
    assert_eq!(msg["type"], "next", "{msg}");
    msg["payload"]["data"]["destinationUpdated"].clone()
}

async fn failures_in_one_batch_reach_the_threshold_and_disable_with_reason_and_audit_steps(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let r = Receiver::start().await;
    r.always(Reply::status(503, "down for maintenance"));
    let d = app
        .create_destination(
            json!({"displayName": "Flaky", "url": r.url, "autoDisableAfterFailures": 3}),
        )
        .await;
    let id = &d["id"];
    // Three at once: their final results tend to land in one recorder batch, and all three must
    // count.
    let mut sent = Vec::new();
    for i in 0..3 {
        sent.push(
            app.send_alert(
                json!({"detectionId": "d", "title": format!("a{i}"), "severity": "HIGH"}),
            )
            .await,
        );
    }
    for s in &sent {
        let final_ = app.wait_final(&s["deliveries"][0]["id"]).await;
        assert_eq!(final_["state"], "FAILED");
    }
    let disabled = wait_destination(&app, id, |d| d["enabled"] == false).await;
    assert_eq!(disabled["autoDisableAfterFailures"], 3);
    let reason = disabled["disabledReason"].as_str().unwrap();
    assert!(
        reason.starts_with(
            "auto-disabled after 3 consecutive failed deliveries; last: request failed: 503 Service Unavailable: down for maintenance"
        ),
        "{reason}"
    );
    assert!(disabled["disabledAt"].is_string(), "{disabled}");

    let events = app
        .admin
        .query(
            "query($id: ID!) { auditEvents(targetId: $id, action: \"destination.disabled\") { edges { node { actor action targetType changedFields } } } }",
            json!({"id": id}),
        )
        .await;
    let edges = events.data()["auditEvents"]["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 1, "one auto-disable, audited once: {edges:?}");
    assert_eq!(edges[0]["node"]["actor"], "herald");
    assert_eq!(edges[0]["node"]["targetType"], "destination");
    assert_eq!(
        edges[0]["node"]["changedFields"],
        json!(["enabled", "disabledReason"])
    );

    // New alerts no longer route to it.
    let later = app
        .send_alert(json!({"detectionId": "d", "title": "later", "severity": "HIGH"}))
        .await;
    assert_eq!(later["deliveries"], json!([]), "{later}");
}

async fn test_alerts_do_not_count_and_a_success_resets_the_count_steps(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let r = Receiver::start().await;
    r.always(Reply::status(500, "boom"));
    let d = app
        .create_destination(
            json!({"displayName": "Counted", "url": r.url, "autoDisableAfterFailures": 2}),
        )
        .await;
    let id = &d["id"];
    for _ in 0..3 {
        let t = app
            .admin
            .query(
                &format!("mutation($id: ID!) {{ sendTestAlert(input: {{destinationId: $id}}) {{ delivery {{ {DELIVERY_FIELDS} }} }} }}"),
                json!({"id": id}),
            )
            .await;
        assert_eq!(t.data()["sendTestAlert"]["delivery"]["state"], "FAILED");
    }
    assert_eq!(
        destination(&app, id).await["enabled"],
        true,
        "test alerts do not count"
    );

    let alert =
        |title: &'static str| json!({"detectionId": "d", "title": title, "severity": "HIGH"});
    let one = app.send_alert(alert("one")).await;
    assert_eq!(
        app.wait_final(&one["deliveries"][0]["id"]).await["state"],
        "FAILED"
    );
    assert_eq!(destination(&app, id).await["enabled"], true, "1 of 2");

    r.queue([Reply::ok()]);
    let two = app.send_alert(alert("two")).await;
    assert_eq!(
        app.wait_final(&two["deliveries"][0]["id"]).await["state"],
        "SUCCEEDED"
    );

    let three = app.send_alert(alert("three")).await;
    assert_eq!(
        app.wait_final(&three["deliveries"][0]["id"]).await["state"],
        "FAILED"
    );
    // Without the reset this would be the second failure in a row.
    assert_eq!(
        destination(&app, id).await["enabled"],
        true,
        "the success reset the count"
    );

    let four = app.send_alert(alert("four")).await;
    assert_eq!(
        app.wait_final(&four["deliveries"][0]["id"]).await["state"],
        "FAILED"
    );
    let disabled = wait_destination(&app, id, |d| d["enabled"] == false).await;
    assert!(
        disabled["disabledReason"].as_str().unwrap().starts_with(
            "auto-disabled after 2 consecutive failed deliveries; last: request failed: 500"
        ),
        "{disabled}"
    );
}

async fn held_deliveries_go_out_when_reenabled_and_both_changes_stream_steps(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let r = Receiver::start().await;
    r.always(Reply::status(503, ""));
    let d = app
        .create_destination(
            json!({"displayName": "Held", "url": r.url, "autoDisableAfterFailures": 1}),
        )
        .await;
    let id = &d["id"];
    let mut ws = subscribe(&app, id).await;

    let sent = app
        .send_alert(json!({"detectionId": "d", "title": "t", "severity": "HIGH"}))
        .await;
    let first = &sent["deliveries"][0]["id"];
    assert_eq!(app.wait_final(first).await["state"], "FAILED");
    let streamed = next_destination(&mut ws).await;
    assert_eq!(streamed["id"], *id);
    assert_eq!(streamed["enabled"], false);
    assert!(
        streamed["disabledReason"].as_str().unwrap().starts_with(
            "auto-disabled after 1 consecutive failed deliveries; last: request failed: 503"
        ),
        "{streamed}"
    );

    // A re-send queued while it is disabled waits: nothing reaches the receiver.
    r.always(Reply::ok());
    let resent = app
        .admin
        .query(
            "mutation($id: ID!) { resendDelivery(input: {deliveryId: $id}) { delivery { id } } }",
            json!({"id": first}),
        )
        .await;
    let held = resent.data()["resendDelivery"]["delivery"]["id"].clone();
    let before = r.count();
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(app.delivery(&held).await["state"], "PENDING");
    assert_eq!(
        r.count(),
        before,
        "a disabled destination's deliveries are held"
    );

    let enabled = update(&app, json!({"id": id, "enabled": true})).await;
    let enabled = &enabled.data()["updateDestination"]["destination"];
    assert_eq!(enabled["enabled"], true);
    assert_eq!(enabled["disabledReason"], Value::Null);
    assert_eq!(enabled["disabledAt"], Value::Null);
    let streamed = next_destination(&mut ws).await;
    assert_eq!(streamed["enabled"], true);
    assert_eq!(streamed["disabledReason"], Value::Null);

    let released = app.wait_final(&held).await;
    assert_eq!(released["state"], "SUCCEEDED", "{released}");
    assert_eq!(r.count(), before + 1);
}

async fn threshold_is_validated_and_clearable_steps(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let r = Receiver::start().await;
    for bad in [0, -5, 10_001] {
        let resp = app
            .try_create_destination(
                json!({"displayName": "Bad", "url": r.url, "autoDisableAfterFailures": bad}),
            )
            .await;
        assert_eq!(resp.error_code(), "BAD_USER_INPUT", "{bad}");
        let err = resp.error();
        assert_eq!(err["extensions"]["field"], "autoDisableAfterFailures");
        assert!(
            err["message"]
                .as_str()
                .unwrap()
                .contains("between 1 and 10000"),
            "{err}"
        );
    }
    let d = app
        .create_destination(json!({"displayName": "Ok", "url": r.url}))
        .await;
    let id = &d["id"];
    assert_eq!(
        destination(&app, id).await["autoDisableAfterFailures"],
        Value::Null
    );
    let set = update(&app, json!({"id": id, "autoDisableAfterFailures": 10_000})).await;
    assert_eq!(
        set.data()["updateDestination"]["destination"]["autoDisableAfterFailures"],
        10_000
    );
    let bad = update(&app, json!({"id": id, "autoDisableAfterFailures": 0})).await;
    assert_eq!(
        bad.error()["extensions"]["field"],
        "autoDisableAfterFailures"
    );
    // Omitted: unchanged; null: cleared.
    let kept = update(&app, json!({"id": id, "displayName": "Renamed"})).await;
    assert_eq!(
        kept.data()["updateDestination"]["destination"]["autoDisableAfterFailures"],
        10_000
    );
    let cleared = update(&app, json!({"id": id, "autoDisableAfterFailures": null})).await;
    assert_eq!(
        cleared.data()["updateDestination"]["destination"]["autoDisableAfterFailures"],
        Value::Null
    );
}

/// A destination written before `m0006_auto_disable` reads back with no threshold and no reason,
/// and its count starts at zero: a threshold set later disables it after exactly that many
/// failures (a NULL count would never reach it).
async fn destinations_from_before_the_migration_count_from_zero(backend: Backend) {
    within(async {
        let dir = tempfile::tempdir().unwrap();
        let url = herald_testkit::fresh_database_url(backend, dir.path());
        let rx = Receiver::start().await;
        rx.always(Reply::status(502, "bad gateway"));
        let at = chrono::Utc::now();
        {
            let store = herald_server::store::Store::connect(&url, 2).await.unwrap();
            // m0001 to m0004: the schema just before this feature.
            Migrator::up(store.db(), Some(4)).await.unwrap();
            let destination = Query::insert()
                .into_table(Alias::new("destinations"))
                .columns(
                    [
                        "id",
                        "display_name",
                        "display_name_key",
                        "url",
                        "severity_mask",
                        "alert_type_mask",
                        "custom_headers",
                        "enabled",
                        "signing_secret",
                        "created_at",
                        "updated_at",
                    ]
                    .map(Alias::new),
                )
                .values_panic([
                    "dst_old".into(),
                    "Old".into(),
                    "old".into(),
                    rx.url.clone().into(),
                    31.into(),
                    63.into(),
                    "[]".into(),
                    true.into(),
                    format!("whsec_{}", "A".repeat(43)).into(),
                    at.into(),
                    at.into(),
                ])
                .to_owned();
            store.db().execute(&destination).await.unwrap();
        }
        let app = TestApp::spawn_on(dir, url, test_dispatch()).await;
        let id = json!("dst_old");
        let old = destination(&app, &id).await;
        assert_eq!(old["enabled"], true);
        assert_eq!(old["autoDisableAfterFailures"], Value::Null);
        assert_eq!(old["disabledReason"], Value::Null);
        assert_eq!(old["disabledAt"], Value::Null);
        let set = update(&app, json!({"id": id, "autoDisableAfterFailures": 1})).await;
        assert_eq!(
            set.data()["updateDestination"]["destination"]["autoDisableAfterFailures"],
            1
        );
        let sent = app
            .send_alert(json!({"detectionId": "d", "title": "t", "severity": "HIGH"}))
            .await;
        assert_eq!(
            app.wait_final(&sent["deliveries"][0]["id"]).await["state"],
            "FAILED"
        );
        let disabled = wait_destination(&app, &id, |d| d["enabled"] == false).await;
        assert!(
            disabled["disabledReason"]
                .as_str()
                .unwrap()
                .starts_with("auto-disabled after 1 consecutive failed deliveries"),
            "{disabled}"
        );
    })
    .await;
}
