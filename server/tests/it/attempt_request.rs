//! The request on every attempt, and the `DeliveryStatus` type that carries it: `requestBody` is
//! the bytes the receiver got, each attempt's `url` and `requestHeaders` are what that attempt sent
//! (custom header values masked for everyone, never stored in the clear), and a URL change shows up
//! on the attempts that followed it.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use herald_server::config::DispatchConfig;
use herald_server::dispatch::retry::RetrySchedule;
use herald_server::store::entities::delivery_attempt;
use herald_testkit::{Backend, GraphqlClient, Received, Receiver, Reply};
use hmac::{Hmac, Mac};
use sea_orm::{ConnectionTrait, EntityTrait};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::app::{TestApp, test_dispatch};

herald_testkit::on_both_backends!(
    the_api_calls_the_record_delivery_status,
    each_attempt_shows_the_request_the_receiver_got,
    attempts_show_the_url_they_used_across_a_url_change_and_a_resend,
    attempts_recorded_before_the_upgrade_show_an_empty_request,
);

const WAIT: Duration = Duration::from_secs(20);
const MASKED: &str = "********";

const REQUEST_FIELDS: &str =
    "id state webhookId requestBody attempts { number url statusCode requestHeaders }";

async fn request_of(client: &GraphqlClient, id: &Value) -> Value {
    let resp = client
        .query(
            &format!("query($id: ID!) {{ delivery(id: $id) {{ {REQUEST_FIELDS} }} }}"),
            json!({"id": id}),
        )
        .await;
    resp.data()["delivery"].clone()
}

fn sign(secret: &str, id: &str, ts: &str, body: &[u8]) -> String {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{id}.{ts}.").as_bytes());
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// The headers an attempt must show for a request the receiver got: Herald's own as received,
/// the destination's `custom` names masked.
fn expected_headers(got: &Received, custom: &[&str]) -> Value {
    let mut want = json!({});
    for name in [
        "content-type",
        "user-agent",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
    ] {
        want[name] = json!(got.header(name).unwrap());
    }
    for name in custom {
        assert!(got.header(name).is_some(), "{name} was sent");
        want[*name] = json!(MASKED);
    }
    want
}

async fn the_api_calls_the_record_delivery_status(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let r = Receiver::start().await;
    r.always(Reply::ok());
    app.create_destination(json!({"displayName": "Named", "url": r.url}))
        .await;
    let sent = app
        .send_alert(json!({"detectionId": "d", "title": "t", "severity": "HIGH"}))
        .await;
    let id = &sent["deliveries"][0]["id"];
    let resp = app
        .admin
        .query(
            "query($id: ID!) { delivery(id: $id) { __typename } \
               deliveries(first: 1) { __typename edges { __typename node { __typename } } } }",
            json!({"id": id}),
        )
        .await;
    let data = resp.data();
    assert_eq!(data["delivery"]["__typename"], "DeliveryStatus");
    assert_eq!(data["deliveries"]["__typename"], "DeliveryStatusConnection");
    assert_eq!(
        data["deliveries"]["edges"][0]["__typename"],
        "DeliveryStatusEdge"
    );
    assert_eq!(
        data["deliveries"]["edges"][0]["node"]["__typename"],
        "DeliveryStatus"
    );

    let sdl = herald_server::graphql::sdl();
    for fragment in [
        "type DeliveryStatus {",
        "type DeliveryStatusConnection {",
        "type DeliveryStatusEdge {",
        "delivery(id: ID!): DeliveryStatus\n",
        "deliveries: [DeliveryStatus!]!",
        "node: DeliveryStatus!",
        "): DeliveryStatusConnection!",
        "deliveryUpdated(destinationId: ID, alertId: ID): DeliveryStatus!",
        "requestBody: String!",
        "url: String!",
        "requestHeaders: JSON!",
    ] {
        assert!(sdl.contains(fragment), "schema lacks {fragment:?}");
    }
    for gone in ["type Delivery {", "DeliveryConnection", "DeliveryEdge"] {
        assert!(!sdl.contains(gone), "schema still has {gone:?}");
    }
    app.wait_final(id).await;
}

async fn each_attempt_shows_the_request_the_receiver_got(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let r = Receiver::start().await;
    r.queue([Reply::status(500, "once")]);
    r.always(Reply::ok());
    let api_key = "k-5e61b0c2";
    let bearer = "Bearer rcv-77a9";
    let dest = app
        .create_destination(json!({
            "displayName": "Exact request",
            "url": r.url,
            "customHeaders": [{"name": "X-Api-Key", "value": api_key}, {"name": "Authorization", "value": bearer}],
        }))
        .await;
    let sent = app
        .send_alert(
            json!({"detectionId": "AWS.Root.Login", "title": "Root login", "severity": "HIGH",
                           "context": {"ip": "1.2.3.4"}}),
        )
        .await;
    let id = &sent["deliveries"][0]["id"];
    let done = app.wait_final(id).await;
    assert_eq!(done["state"], "SUCCEEDED");
    let got = r.wait_for(2, WAIT).await;
    let secret = dest["signingSecret"].as_str().unwrap();

    for client in [&app.admin, &app.viewer] {
        let d = request_of(client, id).await;
        let body = d["requestBody"].as_str().unwrap();
        let attempts = d["attempts"].as_array().unwrap();
        assert_eq!(attempts.len(), 2, "{d:#}");
        for (attempt, received) in attempts.iter().zip(&got) {
            assert_eq!(
                body.as_bytes(),
                received.body,
                "requestBody is the bytes sent"
            );
            assert_eq!(attempt["url"], json!(r.url));
            let headers = &attempt["requestHeaders"];
            assert_eq!(
                *headers,
                expected_headers(received, &["x-api-key", "authorization"])
            );
            assert_eq!(headers["webhook-id"], d["webhookId"]);
            // The shown request verifies on its own: body, id and timestamp give the signature.
            assert_eq!(
                headers["webhook-signature"],
                sign(
                    secret,
                    headers["webhook-id"].as_str().unwrap(),
                    headers["webhook-timestamp"].as_str().unwrap(),
                    body.as_bytes()
                )
            );
        }
        assert_eq!(attempts[0]["statusCode"], 500);
        assert_eq!(attempts[1]["statusCode"], 200);
        let text = d.to_string();
        assert!(!text.contains(api_key) && !text.contains("rcv-77a9"));
    }
    assert_eq!(got[0].header("x-api-key"), Some(api_key), "sent in full");
    assert_eq!(got[1].header("authorization"), Some(bearer));

    // What is stored is the masked map, never the values.
    let rows = delivery_attempt::Entity::find()
        .all(app.store.db())
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    for row in rows {
        let stored = row.request_headers.unwrap();
        assert!(stored.contains(MASKED), "{stored}");
        assert!(!stored.contains(api_key) && !stored.contains("rcv-77a9"));
    }
}

async fn attempts_show_the_url_they_used_across_a_url_change_and_a_resend(backend: Backend) {
    // A long first retry leaves time to change the URL between the first and second attempts.
    let schedule = std::iter::once("1500ms")
        .chain(std::iter::repeat_n("50ms", 9))
        .collect::<Vec<_>>()
        .join(",");
    let app = TestApp::spawn_with(
        backend,
        DispatchConfig {
            retry_schedule: Some(RetrySchedule::parse(&schedule).unwrap()),
            ..test_dispatch()
        },
    )
    .await;
    let (old, new, newest) = (
        Receiver::start().await,
        Receiver::start().await,
        Receiver::start().await,
    );
    old.always(Reply::status(503, "down"));
    new.queue([Reply::status(500, "warming up")]);
    new.always(Reply::ok());
    newest.always(Reply::ok());
    let dest = app
        .create_destination(json!({"displayName": "Moving", "url": old.url,
                                   "customHeaders": [{"name": "X-Team", "value": "t-secret"}]}))
        .await;
    let set_url = |url: String| {
        let admin = &app.admin;
        let dest_id = dest["id"].clone();
        async move {
            let resp = admin
                .query(
                    "mutation($id: ID!, $url: String!) { updateDestination(input: {id: $id, url: $url}) { destination { url } } }",
                    json!({"id": dest_id, "url": url}),
                )
                .await;
            assert_eq!(
                resp.data()["updateDestination"]["destination"]["url"],
                json!(url)
            );
        }
    };
    let sent = app
        .send_alert(json!({"detectionId": "d", "title": "t", "severity": "HIGH"}))
        .await;
    let id = sent["deliveries"][0]["id"].clone();
    old.wait_for(1, WAIT).await;
    app.wait_delivery(&id, WAIT, |d| d["attemptCount"] == 1)
        .await;
    set_url(new.url.clone()).await;

    let original = app.wait_final(&id).await;
    assert_eq!(original["state"], "SUCCEEDED");
    let original = request_of(&app.admin, &id).await;
    let urls: Vec<&Value> = original["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["url"])
        .collect();
    assert_eq!(urls, [&json!(old.url), &json!(new.url), &json!(new.url)]);
    let received: Vec<Received> = old.received().into_iter().chain(new.received()).collect();
    assert_eq!(
        received.len(),
        3,
        "one attempt to the old URL, two to the new"
    );
    for (attempt, got) in original["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .zip(&received)
    {
        assert_eq!(
            attempt["requestHeaders"],
            expected_headers(got, &["x-team"])
        );
    }

    set_url(newest.url.clone()).await;
    let resp = app
        .admin
        .query(
            "mutation($id: ID!) { resendDelivery(input: {deliveryId: $id}) { delivery { id } } }",
            json!({"id": id}),
        )
        .await;
    let resent_id = resp.data()["resendDelivery"]["delivery"]["id"].clone();
    assert_eq!(app.wait_final(&resent_id).await["state"], "SUCCEEDED");
    let resent = request_of(&app.admin, &resent_id).await;
    let got = newest.wait_for(1, WAIT).await.remove(0);
    assert_eq!(resent["attempts"][0]["url"], json!(newest.url));
    assert_eq!(
        resent["attempts"][0]["requestHeaders"],
        expected_headers(&got, &["x-team"])
    );
    assert_eq!(resent["requestBody"], original["requestBody"]);
    assert_eq!(resent["requestBody"].as_str().unwrap().as_bytes(), got.body);

    // The original keeps the URLs it used.
    let again = request_of(&app.admin, &id).await;
    assert_eq!(again["attempts"], original["attempts"]);
}

async fn attempts_recorded_before_the_upgrade_show_an_empty_request(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let r = Receiver::start().await;
    r.always(Reply::ok());
    app.create_destination(json!({"displayName": "Old", "url": r.url}))
        .await;
    let sent = app
        .send_alert(json!({"detectionId": "d", "title": "t", "severity": "HIGH"}))
        .await;
    let id = &sent["deliveries"][0]["id"];
    app.wait_final(id).await;
    // An attempt row as m0004 leaves the ones recorded before it: no URL, no headers.
    app.store
        .db()
        .execute_unprepared("UPDATE delivery_attempts SET url = NULL, request_headers = NULL")
        .await
        .unwrap();
    let d = request_of(&app.viewer, id).await;
    assert_eq!(d["attempts"][0]["url"], "");
    assert_eq!(d["attempts"][0]["requestHeaders"], json!({}));
    assert_eq!(
        d["requestBody"].as_str().unwrap().as_bytes(),
        r.received()[0].body,
        "the body never depended on the attempt"
    );
}
