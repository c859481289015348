//! The GraphQL operations in `examples/graphql/`, run in order against a real `herald serve`, so the
//! README's examples cannot rot. Only loopback receivers get traffic: the example destination on
//! hooks.example.com is disabled (by the update example) before any alert is sent.

use std::path::Path;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use herald_testkit::{Backend, GraphqlClient, Receiver, Reply, fresh_database_url};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::process::{HeraldProcess, tokens_in};

fn example(name: &str) -> (String, Value) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/graphql");
    let query = std::fs::read_to_string(dir.join(format!("{name}.graphql")))
        .unwrap_or_else(|e| panic!("examples/graphql/{name}.graphql: {e}"));
    let vars = std::fs::read_to_string(dir.join(format!("{name}.json")))
        .map(|s| serde_json::from_str(&s).expect("variables are JSON"))
        .unwrap_or(Value::Null);
    (query, vars)
}

fn with(vars: Value, placeholder: &str, id: &Value) -> Value {
    let id = id.as_str().unwrap();
    serde_json::from_str(&vars.to_string().replace(placeholder, id)).unwrap()
}

async fn run(client: &GraphqlClient, name: &str, vars: Option<Value>) -> Value {
    let (q, v) = example(name);
    client.query(&q, vars.unwrap_or(v)).await.data().clone()
}

async fn readme_examples_run(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_database_url(backend, dir.path());
    let fast = [(
        "HERALD_RETRY_SCHEDULE",
        "50ms,50ms,50ms,50ms,50ms,50ms,50ms,50ms,50ms,50ms",
    )];
    let server = HeraldProcess::start_with(&db, dir.path(), &fast).await;
    let token = tokens_in(&server.stdout()).remove(0);
    let client = GraphqlClient::new(&server.base_url, Some(&token));

    assert_eq!(
        run(&client, "viewer", None).await["viewer"]["role"],
        "ADMIN"
    );

    let created =
        run(&client, "create-destination", None).await["createDestination"]["destination"].clone();
    assert_eq!(created["displayName"], "SOC pager");
    assert_eq!(
        created["logTypes"],
        json!(["AWS.CloudTrail", "Okta.SystemLog"])
    );
    assert_eq!(created["autoDisableAfterFailures"], 50);
    assert_eq!(created["disabledReason"], Value::Null);
    let (_, v) = example("update-destination");
    let updated = run(
        &client,
        "update-destination",
        Some(with(v, "DESTINATION_ID", &created["id"])),
    )
    .await;
    assert_eq!(
        updated["updateDestination"]["destination"]["enabled"],
        false
    );
    let list = run(&client, "list-destinations", None).await["destinations"].clone();
    assert_eq!(list["totalCount"], 1);

    // A local receiver that fails every attempt of the first delivery, then recovers.
    let receiver = Receiver::start().await;
    receiver.queue(std::iter::repeat_n(Reply::status(500, "not yet"), 11));
    receiver.always(Reply::status(200, "success"));
    let local = client
        .query(
            "mutation($u: String!) { createDestination(input: {displayName: \"Local\", url: $u}) { destination { id } } }",
            json!({"u": receiver.url}),
        )
        .await
        .data()["createDestination"]["destination"]["id"]
        .clone();

    let sent = run(&client, "send-alert", None).await["sendAlert"].clone();
    assert_eq!(
        sent["deliveries"].as_array().unwrap().len(),
        1,
        "the disabled example destination gets nothing"
    );
    assert_eq!(sent["deliveries"][0]["label"], "Local");
    assert_eq!(sent["alert"]["logTypes"], json!(["AWS.CloudTrail"]));

    let deadline = Instant::now() + Duration::from_secs(30);
    let failed = loop {
        let f = run(&client, "failed-deliveries", None).await["deliveries"].clone();
        if f["totalCount"] == 1 {
            break f;
        }
        assert!(Instant::now() < deadline, "the delivery never failed: {f}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let node = &failed["edges"][0]["node"];
    assert_eq!(node["attemptCount"], 11);
    assert_eq!(node["attempts"].as_array().unwrap().len(), 11);
    assert_eq!(node["attempts"][10]["url"], json!(receiver.url));

    let (_, v) = example("delivery-request");
    let request = run(
        &client,
        "delivery-request",
        Some(with(v, "DELIVERY_ID", &node["id"])),
    )
    .await["delivery"]
        .clone();
    let last = receiver.received().remove(10);
    assert_eq!(
        request["requestBody"].as_str().unwrap().as_bytes(),
        last.body
    );
    assert_eq!(
        request["attempts"][10]["requestHeaders"]["webhook-signature"],
        json!(last.header("webhook-signature").unwrap())
    );

    // Watch live while re-sending and testing.
    let mut ws = {
        let mut req = format!("{}/graphql/ws", server.base_url.replace("http", "ws"))
            .into_client_request()
            .unwrap();
        req.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            "graphql-transport-ws".parse().unwrap(),
        );
        tokio_tungstenite::connect_async(req).await.unwrap().0
    };
    let init =
        json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}});
    ws.send(Message::Text(init.to_string().into()))
        .await
        .unwrap();
    let (watch, _) = example("watch-deliveries");
    let sub = json!({"id": "w", "type": "subscribe", "payload": {"query": watch}});
    ws.send(Message::Text(sub.to_string().into()))
        .await
        .unwrap();

    let (_, v) = example("resend-delivery");
    let resent = run(
        &client,
        "resend-delivery",
        Some(with(v, "DELIVERY_ID", &node["id"])),
    )
    .await["resendDelivery"]["delivery"]
        .clone();
    assert_eq!(resent["resendOf"], node["id"]);

    let (_, v) = example("send-test-alert");
    let tested = run(
        &client,
        "send-test-alert",
        Some(with(v, "DESTINATION_ID", &local)),
    )
    .await["sendTestAlert"]["delivery"]
        .clone();
    assert_eq!(tested["state"], "SUCCEEDED");
    assert_eq!(tested["responseBody"], "success");

    let mut seen_resend_success = false;
    while !seen_resend_success {
        let msg = tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .expect("an update within 20 s")
            .unwrap()
            .unwrap();
        if let Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["type"] == "next" {
                let d = &v["payload"]["data"]["deliveryUpdated"];
                seen_resend_success = d["id"] == resent["id"] && d["state"] == "SUCCEEDED";
            }
        }
    }

    let (_, v) = example("delete-destination");
    let deleted = run(
        &client,
        "delete-destination",
        Some(with(v, "DESTINATION_ID", &created["id"])),
    )
    .await;
    assert_eq!(deleted["deleteDestination"]["deletedId"], created["id"]);

    let (_, v) = example("audit-events");
    let trail = run(
        &client,
        "audit-events",
        Some(with(v, "DESTINATION_ID", &created["id"])),
    )
    .await["auditEvents"]
        .clone();
    let actions: Vec<_> = trail["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "destination.deleted",
            "destination.disabled",
            "destination.updated",
            "destination.created"
        ],
        "{trail}"
    );
    assert_eq!(
        trail["edges"][2]["node"]["changedFields"],
        json!(["severities"])
    );
    assert!(
        trail["edges"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["node"]["actor"] == "admin")
    );
}

herald_testkit::on_both_backends!(readme_examples_run);

#[test]
fn every_example_is_run_by_this_test() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/graphql");
    let this = include_str!("examples.rs");
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if let Some(stem) = name.strip_suffix(".graphql") {
            assert!(
                this.contains(&format!("\"{stem}\"")),
                "examples/graphql/{name} is not run"
            );
        }
    }
}
