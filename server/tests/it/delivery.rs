//! The delivery engine against real HTTP receivers on 127.0.0.1: routing, the exact request,
//! retries, final failure, re-sends, the test alert, idempotency, deletion and disabling.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use herald_server::dispatch::retry::RetrySchedule;
use herald_testkit::{Backend, Received, Receiver, Reply};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::app::{DELIVERY_FIELDS, TestApp, test_dispatch};

herald_testkit::on_both_backends!(
    routing_follows_panthers_precedence,
    payload_headers_and_signature_are_exact,
    defaults_fill_the_payload,
    retries_until_a_2xx,
    gives_up_after_eleven_attempts,
    short_retry_delays_are_kept_with_a_long_poll,
    redirects_timeouts_and_network_errors_are_failures,
    resend_after_the_receiver_is_fixed_keeps_the_webhook_id,
    test_alert_is_sent_once_and_synchronously,
    a_written_result_answers_as_the_delivery_is_stored,
    the_same_alert_id_is_delivered_once,
    deleting_a_destination_ends_its_pending_deliveries,
    a_disabled_destination_holds_its_deliveries,
    rotation_signs_with_both_secrets_during_the_grace_period,
    retry_after_is_honoured,
    destination_lists_its_deliveries_and_counts,
    a_node_receiver_verifies_with_svix_and_standardwebhooks,
    a_slow_destination_does_not_delay_the_others,
    concurrent_alerts_reach_every_destination_once_in_order,
    a_busy_destination_is_leased_no_more_than_its_bound,
    a_destination_enabled_beside_a_saturated_one_gets_its_work,
    a_response_body_with_nul_bytes_is_recorded,
);

const WAIT: Duration = Duration::from_secs(20);

async fn destination_for(app: &TestApp, name: &str, receiver: &Receiver, extra: Value) -> Value {
    let mut input = json!({"displayName": name, "url": receiver.url});
    for (k, v) in extra.as_object().unwrap() {
        input[k] = v.clone();
    }
    app.create_destination(input).await
}

/// Enables or disables a destination through `updateDestination`, as admin.
async fn set_enabled(app: &TestApp, id: &Value, enabled: bool) {
    app.admin
        .query(
            "mutation($id: ID!, $e: Boolean!) { updateDestination(input: {id: $id, enabled: $e}) { destination { enabled } } }",
            json!({"id": id, "e": enabled}),
        )
        .await
        .data();
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

fn signatures(r: &Received) -> Vec<String> {
    r.header("webhook-signature")
        .unwrap()
        .split(' ')
        .map(str::to_owned)
        .collect()
}

fn delivery_ids(sent: &Value) -> Vec<Value> {
    sent["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].clone())
        .collect()
}

async fn routing_follows_panthers_precedence(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (ra, rb, rc, rd) = (
        Receiver::start().await,
        Receiver::start().await,
        Receiver::start().await,
        Receiver::start().await,
    );
    let a = destination_for(
        &app,
        "A high",
        &ra,
        json!({"severities": ["HIGH", "CRITICAL"]}),
    )
    .await;
    let b = destination_for(
        &app,
        "B all",
        &rb,
        json!({"alertTypes": ["RULE", "POLICY"]}),
    )
    .await;
    let c = destination_for(&app, "C override only", &rc, json!({"severities": []})).await;
    let d = destination_for(&app, "D disabled", &rd, json!({"enabled": false})).await;
    let names = |sent: &Value| -> Vec<String> {
        let mut v: Vec<String> = sent["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["label"].as_str().unwrap().to_owned())
            .collect();
        v.sort();
        v
    };
    let base = json!({"detectionId": "Rule.X", "title": "t"});
    let with = |extra: Value| {
        let mut v = base.clone();
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        v
    };

    let by_severity = app.send_alert(with(json!({"severity": "HIGH"}))).await;
    assert_eq!(names(&by_severity), ["A high", "B all"]);
    assert_eq!(by_severity["warnings"], json!([]));

    let low = app.send_alert(with(json!({"severity": "LOW"}))).await;
    assert_eq!(names(&low), ["B all"]);

    let wrong_type = app
        .send_alert(with(json!({"severity": "HIGH", "type": "SYSTEM_ERROR"})))
        .await;
    assert_eq!(
        names(&wrong_type),
        ["A high"],
        "B does not take SYSTEM_ERROR"
    );

    let dynamic_severity = app
        .send_alert(with(
            json!({"severity": "LOW", "dynamicSeverity": "CRITICAL"}),
        ))
        .await;
    assert_eq!(names(&dynamic_severity), ["A high", "B all"]);

    let overrides = app
        .send_alert(with(
            json!({"severity": "INFO", "destinationOverrides": [c["id"], "dst_missing"]}),
        ))
        .await;
    assert_eq!(names(&overrides), ["C override only"]);
    assert_eq!(overrides["warnings"].as_array().unwrap().len(), 1);
    assert!(
        overrides["warnings"][0]
            .as_str()
            .unwrap()
            .contains("dst_missing")
    );

    let dynamic = app
        .send_alert(with(json!({
            "severity": "INFO",
            "destinationOverrides": [c["id"]],
            "dynamicDestinations": [a["id"], a["id"], "dst_gone"],
        })))
        .await;
    assert_eq!(
        names(&dynamic),
        ["A high"],
        "dynamic beats overrides; each destination once"
    );

    let fall_through = app
        .send_alert(with(json!({
            "severity": "CRITICAL",
            "destinationOverrides": ["dst_gone_1"],
            "dynamicDestinations": ["dst_gone_2"],
        })))
        .await;
    assert_eq!(names(&fall_through), ["A high", "B all"]);
    assert_eq!(
        fall_through["warnings"].as_array().unwrap().len(),
        4,
        "{}",
        fall_through["warnings"]
    );

    let skip = app
        .send_alert(with(json!({"severity": "CRITICAL", "destinationOverrides": ["SKIP"], "dynamicDestinations": [b["id"]]})))
        .await;
    assert_eq!(skip["deliveries"], json!([]));

    let disabled = app
        .send_alert(with(
            json!({"severity": "HIGH", "destinationOverrides": [d["id"]]}),
        ))
        .await;
    assert_eq!(disabled["deliveries"], json!([]));
    assert!(
        disabled["warnings"][0]
            .as_str()
            .unwrap()
            .contains("disabled")
    );

    // Every queued delivery arrives, and nothing else does.
    ra.wait_for(5, WAIT).await;
    rb.wait_for(4, WAIT).await;
    rc.wait_for(1, WAIT).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        (ra.count(), rb.count(), rc.count(), rd.count()),
        (5, 4, 1, 0)
    );
}

async fn payload_headers_and_signature_are_exact(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let r = Receiver::start().await;
    let dest = destination_for(
        &app,
        "Exact",
        &r,
        json!({"customHeaders": [{"name": "X-Api-Key", "value": "k-123"}, {"name": "Authorization", "value": "Bearer rcv"}]}),
    )
    .await;
    let sent = app
        .send_alert(json!({
            "alertId": "alert-exact-1",
            "detectionId": "AWS.Root.Login",
            "title": "Root login from 1.2.3.4",
            "name": "AWS Root Login",
            "severity": "HIGH",
            "type": "POLICY",
            "description": "root logged in",
            "runbook": "page the on-call",
            "tags": ["aws", "identity"],
            "version": "v42",
            "link": "https://detections.example/alerts/1",
            "context": {"zeta": 1, "alpha": {"ips": ["1.2.3.4"], "mfa": false, "n": null}},
            "createdAt": "2020-10-13T03:35:24Z",
        }))
        .await;
    let expected = r#"{"id":"AWS.Root.Login","createdAt":"2020-10-13T03:35:24Z","severity":"HIGH","type":"POLICY","link":"https://detections.example/alerts/1","title":"Root login from 1.2.3.4","name":"AWS Root Login","alertId":"alert-exact-1","alertContext":{"zeta":1,"alpha":{"ips":["1.2.3.4"],"mfa":false,"n":null}},"description":"root logged in","runbook":"page the on-call","tags":["aws","identity"],"version":"v42"}"#;
    let got = r.wait_for(1, WAIT).await.remove(0);
    assert_eq!(std::str::from_utf8(&got.body).unwrap(), expected);
    assert_eq!(
        sent["alert"]["payload"],
        serde_json::from_str::<Value>(expected).unwrap()
    );

    assert_eq!(got.header("content-type"), Some("application/json"));
    assert!(got.header("user-agent").unwrap().starts_with("Herald/"));
    assert_eq!(got.header("x-api-key"), Some("k-123"));
    assert_eq!(got.header("authorization"), Some("Bearer rcv"));

    let delivery = app.wait_final(&sent["deliveries"][0]["id"]).await;
    let webhook_id = got.header("webhook-id").unwrap();
    assert_eq!(webhook_id, delivery["webhookId"]);
    let ts = got.header("webhook-timestamp").unwrap();
    let now = chrono::Utc::now().timestamp();
    assert!((now - ts.parse::<i64>().unwrap()).abs() < 30);
    let secret = dest["signingSecret"].as_str().unwrap();
    assert_eq!(signatures(&got), [sign(secret, webhook_id, ts, &got.body)]);

    assert_eq!(delivery["state"], "SUCCEEDED");
    assert_eq!(delivery["success"], true);
    assert_eq!(delivery["statusCode"], 200);
    assert_eq!(delivery["responseBody"], "ok");
    assert_eq!(delivery["message"], "ok");
    assert_eq!(delivery["attemptCount"], 1);
    assert_eq!(delivery["nextAttemptAt"], Value::Null);
    assert_eq!(delivery["label"], "Exact");
    assert!(delivery["dispatchedAt"].as_str().unwrap().ends_with('Z'));
    let attempt = &delivery["attempts"][0];
    assert_eq!(attempt["number"], 1);
    assert_eq!(attempt["statusCode"], 200);
    assert_eq!(attempt["error"], Value::Null);
}

async fn defaults_fill_the_payload(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let r = Receiver::start().await;
    destination_for(&app, "Defaults", &r, json!({})).await;
    let sent = app
        .send_alert(json!({"detectionId": "Rule.Min", "title": "minimal", "severity": "LOW"}))
        .await;
    let body = r.wait_for(1, WAIT).await.remove(0).json();
    let keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "id",
            "createdAt",
            "severity",
            "type",
            "link",
            "title",
            "name",
            "alertId",
            "alertContext",
            "description",
            "runbook",
            "tags",
            "version"
        ]
    );
    assert_eq!(body["name"], "Rule.Min");
    assert_eq!(body["type"], "RULE");
    assert_eq!(body["alertContext"], json!({}));
    assert_eq!(body["tags"], json!([]));
    for k in ["link", "description", "runbook", "version"] {
        assert_eq!(body[k], "", "{k}");
    }
    assert_eq!(body["alertId"], sent["alert"]["id"]);
    let created = body["createdAt"].as_str().unwrap();
    assert!(created.ends_with('Z') && chrono::DateTime::parse_from_rfc3339(created).is_ok());
}

async fn retries_until_a_2xx(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let r = Receiver::start().await;
    r.queue([
        Reply::status(500, "boom"),
        Reply::status(502, "bad gateway"),
        Reply::status(500, "boom again"),
    ]);
    r.always(Reply::status(204, ""));
    destination_for(&app, "Flaky", &r, json!({})).await;
    let sent = app
        .send_alert(json!({"detectionId": "d", "title": "t", "severity": "HIGH"}))
        .await;
    let d = app.wait_final(&sent["deliveries"][0]["id"]).await;
    assert_eq!(d["state"], "SUCCEEDED");
    assert_eq!(d["attemptCount"], 4);
    let codes: Vec<&Value> = d["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["statusCode"])
        .collect();
    assert_eq!(codes, [&json!(500), &json!(502), &json!(500), &json!(204)]);
    assert_eq!(d["attempts"][1]["responseBody"], "bad gateway");
    let got = r.received();
    assert_eq!(got.len(), 4);
    assert!(
        got.iter()
            .all(|g| g.header("webhook-id") == got[0].header("webhook-id"))
    );
    assert!(got.iter().all(|g| g.body == got[0].body));
}

async fn gives_up_after_eleven_attempts(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let r = Receiver::start().await;
    r.always(Reply::status(503, "down for maintenance"));
    destination_for(&app, "Dead", &r, json!({})).await;
    let sent = app
        .send_alert(json!({"detectionId": "d", "title": "t", "severity": "HIGH"}))
        .await;
    let d = app.wait_final(&sent["deliveries"][0]["id"]).await;
    assert_eq!(d["state"], "FAILED");
    assert_eq!(d["success"], false);
    assert_eq!(d["attemptCount"], 11);
    assert_eq!(d["attempts"].as_array().unwrap().len(), 11);
    assert_eq!(d["statusCode"], 503);
    assert_eq!(d["responseBody"], "down for maintenance");
    assert_eq!(
        d["message"],
        "request failed: 503 Service Unavailable: down for maintenance"
    );
    assert_eq!(d["nextAttemptAt"], Value::Null);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(r.count(), 11, "no attempt after the eleventh");
}

/// A retry due sooner than the poll interval is sent when due, not at the next poll: the ten 50 ms
/// retries take well under a second of waiting, where a 5 s poll would make them take 50 s.
async fn short_retry_delays_are_kept_with_a_long_poll(backend: Backend) {
    let mut dispatch = test_dispatch();
    dispatch.poll_interval = Duration::from_secs(5);
    let app = TestApp::spawn_with(backend, dispatch).await;
    let r = Receiver::start().await;
    r.always(Reply::status(500, "no"));
    destination_for(&app, "Flaky", &r, json!({})).await;
    let started = std::time::Instant::now();
    let sent = app
        .send_alert(json!({"detectionId": "d", "title": "t", "severity": "HIGH"}))
        .await;
    let d = app.wait_final(&sent["deliveries"][0]["id"]).await;
    let took = started.elapsed();
    assert_eq!(d["attemptCount"], 11);
    // Generous for a busy machine, and still far below the 50 s the poll would take.
    assert!(
        took < Duration::from_secs(8),
        "eleven attempts took {took:?}"
    );
}

async fn redirects_timeouts_and_network_errors_are_failures(backend: Backend) {
    let mut dispatch = test_dispatch();
    dispatch.delivery_timeout = Duration::from_millis(300);
    dispatch.retry_schedule = Some(RetrySchedule::parse(&["10s"; 10].join(",")).unwrap());
    let app = TestApp::spawn_with(backend, dispatch).await;
    let redirect = Receiver::start().await;
    let elsewhere = Receiver::start().await;
    redirect.always(Reply::status(302, "moved").header("Location", &elsewhere.url));
    let slow = Receiver::start().await;
    slow.always(Reply::ok().delayed(Duration::from_secs(2)));
    destination_for(&app, "Redirect", &redirect, json!({})).await;
    destination_for(&app, "Slow", &slow, json!({})).await;
    let closed = herald_testkit::free_port();
    app.create_destination(
        json!({"displayName": "Closed", "url": format!("http://127.0.0.1:{closed}/hook")}),
    )
    .await;
    let sent = app
        .send_alert(json!({"detectionId": "d", "title": "t", "severity": "HIGH"}))
        .await;
    for d in sent["deliveries"].as_array().unwrap() {
        let d = app
            .wait_delivery(&d["id"], WAIT, |d| d["attemptCount"] == 1)
            .await;
        assert_eq!(d["state"], "RETRYING", "{d:#}");
        assert!(d["nextAttemptAt"].is_string());
        match d["label"].as_str().unwrap() {
            "Redirect" => {
                assert_eq!(d["statusCode"], 302);
                assert_eq!(d["message"], "request failed: 302 Found: moved");
                assert_eq!(
                    d["attempts"][0]["responseHeaders"]["location"],
                    json!(elsewhere.url)
                );
            }
            "Slow" => {
                assert_eq!(d["statusCode"], Value::Null);
                assert!(
                    d["message"]
                        .as_str()
                        .unwrap()
                        .starts_with("network error: timed out"),
                    "{}",
                    d["message"]
                );
                assert!(
                    d["attempts"][0]["error"]
                        .as_str()
                        .unwrap()
                        .contains("timed out")
                );
            }
            "Closed" => {
                assert_eq!(d["statusCode"], Value::Null);
                assert!(
                    d["message"]
                        .as_str()
                        .unwrap()
                        .starts_with("network error: "),
                    "{}",
                    d["message"]
                );
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(elsewhere.count(), 0, "redirects are not followed");
}

async fn resend_after_the_receiver_is_fixed_keeps_the_webhook_id(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let r = Receiver::start().await;
    r.always(Reply::status(500, "broken"));
    let dest = destination_for(&app, "Fixable", &r, json!({})).await;
    let sent = app
        .send_alert(json!({"detectionId": "d", "title": "t", "severity": "HIGH"}))
        .await;
    let original = app.wait_final(&sent["deliveries"][0]["id"]).await;
    assert_eq!(original["state"], "FAILED");
    let first_body = r.received()[0].body.clone();

    r.always(Reply::status(200, "fixed"));
    let resp = app
        .admin
        .query(
            &format!("mutation($id: ID!) {{ resendDelivery(input: {{deliveryId: $id}}) {{ delivery {{ {DELIVERY_FIELDS} }} }} }}"),
            json!({"id": original["id"]}),
        )
        .await;
    let resent = resp.data()["resendDelivery"]["delivery"].clone();
    assert_ne!(resent["id"], original["id"]);
    assert_eq!(resent["resendOf"], original["id"]);
    assert_eq!(resent["webhookId"], original["webhookId"]);
    let done = app.wait_final(&resent["id"]).await;
    assert_eq!(done["state"], "SUCCEEDED");
    assert_eq!(done["responseBody"], "fixed");
    let last = r.received().pop().unwrap();
    assert_eq!(last.header("webhook-id").unwrap(), original["webhookId"]);
    assert_eq!(last.body, first_body, "a re-send carries the same bytes");
    let again = app.delivery(&original["id"]).await;
    assert_eq!(again["state"], "FAILED", "the original stays as it ended");

    // resendAlert does the same for an alert and a list of destinations.
    let resp = app
        .admin
        .query(
            "mutation($a: ID!, $d: ID!) { resendAlert(input: {alertId: $a, destinationIds: [$d]}) { deliveries { id resendOf webhookId } } }",
            json!({"a": sent["alert"]["id"], "d": dest["id"]}),
        )
        .await;
    let d = &resp.data()["resendAlert"]["deliveries"][0];
    assert_eq!(d["resendOf"], original["id"]);
    assert_eq!(d["webhookId"], original["webhookId"]);
    app.wait_final(&d["id"]).await;

    let missing = app
        .admin
        .query(
            "mutation { resendDelivery(input: {deliveryId: \"dlv_nope\"}) { delivery { id } } }",
            json!({}),
        )
        .await;
    assert_eq!(missing.error_code(), "NOT_FOUND");
}

/// What the dispatcher answers once it has written a result (the test alert's delivery here, and
/// the live updates) is built from the result, not read back: it must equal the delivery as
/// stored, for a success and a failure.
async fn a_written_result_answers_as_the_delivery_is_stored(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let r = Receiver::start().await;
    r.queue([Reply::status(201, "created"), Reply::status(500, "broken")]);
    let dest = destination_for(&app, "Echo", &r, json!({"severities": []})).await;
    let query = format!(
        "mutation($id: ID!) {{ sendTestAlert(input: {{destinationId: $id}}) {{ delivery {{ {DELIVERY_FIELDS} }} }} }}"
    );
    for (expected, code) in [("SUCCEEDED", 201), ("FAILED", 500)] {
        let resp = app.admin.query(&query, json!({"id": dest["id"]})).await;
        let answered = resp.data()["sendTestAlert"]["delivery"].clone();
        assert_eq!(answered["state"], expected, "{answered:#}");
        assert_eq!(answered["statusCode"], code, "{answered:#}");
        let mut stored = app.delivery(&answered["id"]).await;
        stored.as_object_mut().unwrap().remove("attempts");
        assert_eq!(answered, stored);
    }
}

async fn test_alert_is_sent_once_and_synchronously(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let r = Receiver::start().await;
    r.always(Reply::status(200, "success"));
    let dest = destination_for(&app, "Tested", &r, json!({"severities": []})).await;
    let query = format!(
        "mutation($id: ID!) {{ sendTestAlert(input: {{destinationId: $id}}) {{ delivery {{ {DELIVERY_FIELDS} attempts {{ number statusCode }} alert {{ detectionId title severity }} }} }} }}"
    );
    let resp = app.admin.query(&query, json!({"id": dest["id"]})).await;
    let d = &resp.data()["sendTestAlert"]["delivery"];
    assert_eq!(d["test"], true);
    assert_eq!(d["state"], "SUCCEEDED");
    assert_eq!(d["responseBody"], "success");
    assert_eq!(d["attempts"], json!([{"number": 1, "statusCode": 200}]));
    assert_eq!(
        d["alert"],
        json!({"detectionId": "Test.Alert", "title": "This is a Test Alert", "severity": "INFO"})
    );
    let body = r.received()[0].json();
    assert_eq!(body["id"], "Test.Alert");
    assert_eq!(body["severity"], "INFO");
    assert_eq!(body["type"], "RULE");
    assert_eq!(body["tags"], json!(["test"]));

    r.always(Reply::status(500, "nope"));
    let resp = app.admin.query(&query, json!({"id": dest["id"]})).await;
    let d = &resp.data()["sendTestAlert"]["delivery"];
    assert_eq!(d["state"], "FAILED");
    assert_eq!(d["attemptCount"], 1);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(r.count(), 2, "a failed test alert is not retried");

    let missing = app.admin.query(&query, json!({"id": "dst_nope"})).await;
    assert_eq!(missing.error_code(), "NOT_FOUND");
}

async fn the_same_alert_id_is_delivered_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let r = Receiver::start().await;
    destination_for(&app, "Once", &r, json!({})).await;
    let input = json!({"alertId": "idem-1", "detectionId": "d", "title": "t", "severity": "HIGH"});
    let first = app.send_alert(input.clone()).await;
    let mut changed = input.clone();
    changed["title"] = json!("a different title");
    let second = app.send_alert(changed).await;
    assert_eq!(second["alert"]["id"], "idem-1");
    assert_eq!(delivery_ids(&second), delivery_ids(&first));
    assert_eq!(
        second["alert"]["payload"]["title"], "t",
        "the first result stands"
    );

    // Within one batch, too.
    let resp = app
        .admin
        .query(
            "mutation($a: [SendAlertInput!]!) { sendAlerts(input: {alerts: $a}) { results { alert { id } deliveries { id } } } }",
            json!({"a": [input.clone(), {"alertId": "idem-2", "detectionId": "d", "title": "t", "severity": "HIGH"}, {"alertId": "idem-2", "detectionId": "d", "title": "t", "severity": "HIGH"}]}),
        )
        .await;
    let results = resp.data()["sendAlerts"]["results"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(results.len(), 3);
    assert_eq!(
        results[0]["deliveries"][0]["id"],
        first["deliveries"][0]["id"]
    );
    assert_eq!(results[1]["deliveries"], results[2]["deliveries"]);
    r.wait_for(2, WAIT).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(r.count(), 2);
}

async fn deleting_a_destination_ends_its_pending_deliveries(backend: Backend) {
    let mut dispatch = test_dispatch();
    dispatch.retry_schedule = Some(RetrySchedule::parse(&["2s"; 10].join(",")).unwrap());
    let app = TestApp::spawn_with(backend, dispatch).await;
    let r = Receiver::start().await;
    r.always(Reply::status(500, "no"));
    let dest = destination_for(&app, "Soon gone", &r, json!({})).await;
    let sent = app
        .send_alert(json!({"detectionId": "d", "title": "t", "severity": "HIGH"}))
        .await;
    let id = &sent["deliveries"][0]["id"];
    app.wait_delivery(id, WAIT, |d| d["state"] == "RETRYING")
        .await;
    app.delete_destination(&dest["id"]).await;
    let d = app.delivery(id).await;
    assert_eq!(d["state"], "FAILED");
    assert_eq!(d["message"], "destination deleted");
    assert_eq!(d["label"], "Soon gone", "history keeps the name");
    assert_eq!(d["destinationId"], dest["id"]);
    let resp = app
        .admin
        .query(
            "query($id: ID!) { delivery(id: $id) { destination { id } attempts { number } } }",
            json!({"id": id}),
        )
        .await;
    assert_eq!(resp.data()["delivery"]["destination"], Value::Null);
    assert_eq!(
        resp.data()["delivery"]["attempts"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(r.count(), 1);
}

async fn a_disabled_destination_holds_its_deliveries(backend: Backend) {
    let mut dispatch = test_dispatch();
    dispatch.retry_schedule = Some(RetrySchedule::parse(&["1s"; 10].join(",")).unwrap());
    let app = TestApp::spawn_with(backend, dispatch).await;
    let r = Receiver::start().await;
    r.queue([Reply::status(500, "not yet")]);
    let dest = destination_for(&app, "Paused", &r, json!({})).await;
    let sent = app
        .send_alert(json!({"detectionId": "d", "title": "t", "severity": "HIGH"}))
        .await;
    let id = &sent["deliveries"][0]["id"];
    app.wait_delivery(id, WAIT, |d| d["state"] == "RETRYING")
        .await;
    let set_enabled = |enabled: bool| set_enabled(&app, &dest["id"], enabled);
    set_enabled(false).await;
    // Well past the 1 s retry: nothing may go out while disabled.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(r.count(), 1, "held while disabled");
    assert_eq!(app.delivery(id).await["state"], "RETRYING");
    set_enabled(true).await;
    let d = app.wait_final(id).await;
    assert_eq!(d["state"], "SUCCEEDED");
    assert_eq!(r.count(), 2);
}

async fn rotation_signs_with_both_secrets_during_the_grace_period(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let r = Receiver::start().await;
    let dest = destination_for(&app, "Rotating", &r, json!({})).await;
    let old = dest["signingSecret"].as_str().unwrap().to_owned();
    let rotate = |grace: i32| {
        let app = &app;
        let id = dest["id"].clone();
        async move {
            let d = app.admin
                .query(
                    "mutation($id: ID!, $g: Int) { rotateSigningSecret(input: {id: $id, gracePeriodSeconds: $g}) { destination { signingSecret previousSigningSecretExpiresAt } } }",
                    json!({"id": id, "g": grace}),
                )
                .await
                .data()["rotateSigningSecret"]["destination"]
                .clone();
            (
                d["signingSecret"].as_str().unwrap().to_owned(),
                d["previousSigningSecretExpiresAt"].clone(),
            )
        }
    };
    let expires_at = |id: Value| {
        let app = &app;
        async move {
            app.admin
                .query(
                    "query($id: ID!) { destination(id: $id) { previousSigningSecretExpiresAt } }",
                    json!({"id": id}),
                )
                .await
                .data()["destination"]["previousSigningSecretExpiresAt"]
                .clone()
        }
    };
    assert_eq!(
        expires_at(dest["id"].clone()).await,
        Value::Null,
        "never rotated"
    );
    let before = chrono::Utc::now();
    let (new, until) = rotate(3600).await;
    // The API says when the old secret stops signing: an hour from the rotation.
    let until = chrono::DateTime::parse_from_rfc3339(until.as_str().unwrap()).unwrap();
    let lead = until.signed_duration_since(before).num_seconds();
    assert!(
        (3599..=3610).contains(&lead),
        "expires {lead} s after the rotation"
    );
    let shown = expires_at(dest["id"].clone()).await;
    assert_eq!(
        chrono::DateTime::parse_from_rfc3339(shown.as_str().unwrap()).unwrap(),
        until,
        "the destination shows the same expiry"
    );
    assert_ne!(new, old);
    app.send_alert(json!({"detectionId": "d", "title": "t", "severity": "HIGH"}))
        .await;
    let got = r.wait_for(1, WAIT).await.remove(0);
    let (id, ts) = (
        got.header("webhook-id").unwrap(),
        got.header("webhook-timestamp").unwrap(),
    );
    assert_eq!(
        signatures(&got),
        [sign(&new, id, ts, &got.body), sign(&old, id, ts, &got.body)]
    );

    let (newest, until) = rotate(0).await;
    assert_eq!(until, Value::Null, "no grace: no previous secret signs");
    app.send_alert(json!({"detectionId": "d", "title": "t", "severity": "HIGH"}))
        .await;
    let got = r.wait_for(2, WAIT).await.remove(1);
    let (id, ts) = (
        got.header("webhook-id").unwrap(),
        got.header("webhook-timestamp").unwrap(),
    );
    assert_eq!(signatures(&got), [sign(&newest, id, ts, &got.body)]);

    // Once the grace period is over the previous secret no longer signs, and the API says so.
    let (_, until) = rotate(1).await;
    assert!(until.is_string(), "{until}");
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(expires_at(dest["id"].clone()).await, Value::Null, "expired");

    let bad = app
        .admin
        .query(
            "mutation($id: ID!) { rotateSigningSecret(input: {id: $id, gracePeriodSeconds: -1}) { destination { id } } }",
            json!({"id": dest["id"]}),
        )
        .await;
    assert_eq!(bad.error()["extensions"]["field"], "gracePeriodSeconds");
}

async fn retry_after_is_honoured(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let r = Receiver::start().await;
    r.queue([Reply::status(429, "slow down").header("Retry-After", "1")]);
    destination_for(&app, "Throttled", &r, json!({})).await;
    let sent = app
        .send_alert(json!({"detectionId": "d", "title": "t", "severity": "HIGH"}))
        .await;
    let d = app.wait_final(&sent["deliveries"][0]["id"]).await;
    assert_eq!(d["state"], "SUCCEEDED");
    assert_eq!(d["attempts"][0]["responseHeaders"]["retry-after"], "1");
    let got = r.received();
    let gap = got[1].at - got[0].at;
    assert!(
        gap >= Duration::from_millis(950),
        "retried after {gap:?}, not the 50 ms schedule"
    );
}

async fn destination_lists_its_deliveries_and_counts(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let r = Receiver::start().await;
    r.queue(std::iter::repeat_n(Reply::status(500, "x"), 11));
    let dest = destination_for(&app, "Counted", &r, json!({})).await;
    let failing = app
        .send_alert(json!({"detectionId": "d", "title": "t", "severity": "HIGH"}))
        .await;
    app.wait_final(&failing["deliveries"][0]["id"]).await;
    let ok = app
        .send_alert(json!({"detectionId": "d", "title": "t", "severity": "HIGH"}))
        .await;
    app.wait_final(&ok["deliveries"][0]["id"]).await;
    let resp = app
        .admin
        .query(
            "query($id: ID!) { destination(id: $id) {
                deliveryCounts { pending retrying succeeded failed }
                failed: deliveries(state: FAILED) { totalCount edges { node { id } } }
                all: deliveries(first: 1) { totalCount edges { node { id } } pageInfo { hasNextPage } }
            } }",
            json!({"id": dest["id"]}),
        )
        .await;
    let d = &resp.data()["destination"];
    assert_eq!(
        d["deliveryCounts"],
        json!({"pending": 0, "retrying": 0, "succeeded": 1, "failed": 1})
    );
    assert_eq!(d["failed"]["totalCount"], 1);
    assert_eq!(
        d["failed"]["edges"][0]["node"]["id"],
        failing["deliveries"][0]["id"]
    );
    assert_eq!(d["all"]["totalCount"], 2);
    assert_eq!(
        d["all"]["edges"][0]["node"]["id"], ok["deliveries"][0]["id"],
        "newest first"
    );
    assert_eq!(d["all"]["pageInfo"]["hasNextPage"], true);

    let top = app
        .admin
        .query(
            "query($a: ID!) { deliveries(alertId: $a) { totalCount } alerts(severity: HIGH) { totalCount } low: alerts(severity: LOW) { totalCount } }",
            json!({"a": ok["alert"]["id"]}),
        )
        .await;
    assert_eq!(top.data()["deliveries"]["totalCount"], 1);
    assert_eq!(top.data()["alerts"]["totalCount"], 2);
    assert_eq!(top.data()["low"]["totalCount"], 0);
}

async fn a_node_receiver_verifies_with_svix_and_standardwebhooks(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // The receiver needs the secret before the destination points at it: create, start, update.
    let placeholder = Receiver::start().await;
    let dest = destination_for(&app, "Node", &placeholder, json!({})).await;
    let node = herald_testkit::NodeReceiver::start(dest["signingSecret"].as_str().unwrap());
    app.admin
        .query(
            "mutation($id: ID!, $url: String!) { updateDestination(input: {id: $id, url: $url}) { destination { id } } }",
            json!({"id": dest["id"], "url": node.url}),
        )
        .await
        .data();
    let sent = app
        .send_alert(json!({"detectionId": "Node.Check", "title": "verify me", "severity": "HIGH", "context": {"emoji": "🚨", "n": 1.5}}))
        .await;
    let d = app.wait_final(&sent["deliveries"][0]["id"]).await;
    assert_eq!(d["state"], "SUCCEEDED", "{d:#}");
    assert_eq!(d["responseBody"], "success");
    assert_eq!(d["message"], "success");
    let v = node.verifications().await;
    assert_eq!(
        v,
        json!([{"webhookId": d["webhookId"], "standardwebhooks": "ok", "svix": "ok"}])
    );

    // During a rotation's grace period the receiver, still on the old secret, keeps accepting.
    app.admin
        .query(
            "mutation($id: ID!) { rotateSigningSecret(input: {id: $id, gracePeriodSeconds: 600}) { destination { id } } }",
            json!({"id": dest["id"]}),
        )
        .await
        .data();
    let sent = app
        .send_alert(
            json!({"detectionId": "Node.Check", "title": "after rotation", "severity": "HIGH"}),
        )
        .await;
    let d = app.wait_final(&sent["deliveries"][0]["id"]).await;
    assert_eq!(d["responseBody"], "success", "{d:#}");
}

async fn a_slow_destination_does_not_delay_the_others(backend: Backend) {
    let mut dispatch = test_dispatch();
    dispatch.delivery_timeout = Duration::from_secs(30);
    dispatch.max_in_flight = 16;
    dispatch.max_in_flight_per_destination = 4;
    let app = TestApp::spawn_with(backend, dispatch).await;
    let slow = Receiver::start().await;
    // Generous bounds: this is about waiting behind a 15 s request, not about speed.
    slow.always(Reply::ok().delayed(Duration::from_secs(15)));
    let fast = Receiver::start().await;
    destination_for(&app, "Slow", &slow, json!({})).await;
    destination_for(&app, "Fast", &fast, json!({})).await;
    let alerts: Vec<Value> = (0..40)
        .map(|i| json!({"detectionId": "d", "title": format!("t{i}"), "severity": "HIGH"}))
        .collect();
    let started = std::time::Instant::now();
    app.admin
        .query(
            "mutation($a: [SendAlertInput!]!) { sendAlerts(input: {alerts: $a}) { results { alert { id } } } }",
            json!({"a": alerts}),
        )
        .await
        .data();
    fast.wait_for(40, Duration::from_secs(10)).await;
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(10),
        "the fast destination waited {took:?} behind the slow one"
    );
    assert!(
        slow.count() <= 4,
        "at most 4 requests in flight to one destination, saw {}",
        slow.count()
    );
}

/// Many callers at once, fanning out to several destinations, with little capacity: new deliveries
/// are leased at insert while there is room and queued otherwise, and claims compete with inserts
/// for the capacity. Every delivery must arrive exactly once, and with one request at a time per
/// destination, in the order the alerts were accepted: a delivery leased at insert never overtakes
/// one already queued.
async fn concurrent_alerts_reach_every_destination_once_in_order(backend: Backend) {
    let mut dispatch = test_dispatch();
    dispatch.max_in_flight = 6;
    dispatch.max_in_flight_per_destination = 1;
    let app = TestApp::spawn_with(backend, dispatch).await;
    // More destinations than capacity: a claim can take a row for each.
    const DESTINATIONS: usize = 8;
    let mut receivers = Vec::new();
    for i in 0..DESTINATIONS {
        let r = Receiver::start().await;
        destination_for(&app, &format!("Dest {i}"), &r, json!({})).await;
        receivers.push(r);
    }
    const CALLERS: usize = 30;
    const PER_CALL: usize = 5;
    let calls = (0..CALLERS).map(|c| {
        let admin = app.admin.clone();
        async move {
            let alerts: Vec<Value> = (0..PER_CALL)
                .map(|i| json!({"alertId": format!("c{c}-{i}"), "detectionId": "d", "title": "t", "severity": "HIGH"}))
                .collect();
            admin
                .query(
                    "mutation($a: [SendAlertInput!]!) { sendAlerts(input: {alerts: $a}) { results { alert { id receivedAt } deliveries { id } } } }",
                    json!({"a": alerts}),
                )
                .await
                .data()["sendAlerts"]["results"]
                .as_array()
                .unwrap()
                .clone()
        }
    });
    let results: Vec<Value> = futures::future::join_all(calls).await.concat();
    let received_at: std::collections::HashMap<String, String> = results
        .iter()
        .map(|r| {
            assert_eq!(
                r["deliveries"].as_array().unwrap().len(),
                DESTINATIONS,
                "{r}"
            );
            (
                r["alert"]["id"].as_str().unwrap().to_owned(),
                r["alert"]["receivedAt"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(received_at.len(), CALLERS * PER_CALL);
    for (i, r) in receivers.iter().enumerate() {
        let got = r
            .wait_for(CALLERS * PER_CALL, Duration::from_secs(30))
            .await;
        let ids: Vec<String> = got
            .iter()
            .map(|g| g.json()["alertId"].as_str().unwrap().to_owned())
            .collect();
        let unique: std::collections::HashSet<&String> = ids.iter().collect();
        assert_eq!(ids.len(), CALLERS * PER_CALL, "destination {i}: {ids:?}");
        assert_eq!(
            unique.len(),
            ids.len(),
            "destination {i} got duplicates: {ids:?}"
        );
        // Accepted in an earlier transaction means sent earlier (RFC 3339 UTC strings of one
        // precision sort as times).
        let order: Vec<&String> = ids.iter().map(|id| &received_at[id]).collect();
        assert!(
            order.windows(2).all(|w| w[0] <= w[1]),
            "destination {i} got alerts out of their accepted order: {:?}",
            ids.iter().zip(&order).collect::<Vec<_>>()
        );
    }
    // Nothing more arrives: no delivery was sent twice late (a lease that ran out, say).
    tokio::time::sleep(Duration::from_millis(500)).await;
    for r in &receivers {
        assert_eq!(r.count(), CALLERS * PER_CALL);
    }
}

/// A destination with one request slot may hold four deliveries in this process (the one sending
/// and three windows waiting); the rest of a burst waits in the queue, due, where the queue gauges and
/// other replicas see it. Deliveries leased at insert count from the moment they are stored, not
/// from when they start: otherwise a burst of single-alert calls leased past the bound while
/// earlier groups waited to start.
async fn a_busy_destination_is_leased_no_more_than_its_bound(backend: Backend) {
    use sea_orm::{ConnectionTrait, Statement};

    let mut dispatch = test_dispatch();
    dispatch.max_in_flight_per_destination = 1;
    dispatch.delivery_timeout = Duration::from_secs(60);
    dispatch.lease = Duration::from_secs(60);
    let app = TestApp::spawn_with(backend, dispatch).await;
    let slow = Receiver::start().await;
    slow.always(Reply::ok().delayed(Duration::from_secs(60)));
    destination_for(&app, "Slow", &slow, json!({})).await;
    const CALLS: usize = 40;
    let calls = (0..CALLS).map(|i| {
        let app = &app;
        async move {
            app.send_alert(json!({"alertId": format!("burst-{i}"), "detectionId": "d", "title": "t", "severity": "HIGH"}))
                .await
        }
    });
    futures::future::join_all(calls).await;
    slow.wait_for(1, Duration::from_secs(20)).await;
    let row = app
        .store
        .db()
        .query_one_raw(Statement::from_string(
            app.store.backend(),
            "SELECT COUNT(*) AS n FROM deliveries WHERE lease_owner IS NOT NULL",
        ))
        .await
        .unwrap()
        .unwrap();
    let leased: i64 = row.try_get("", "n").unwrap();
    assert!(
        (1..=4).contains(&leased),
        "{leased} of {CALLS} deliveries leased to one destination with one slot"
    );
}

/// While the only enabled destination holds all it may, the claim loop stops claiming (a claim
/// could take nothing); a destination enabled meanwhile must still get its queued work at once,
/// with no new alert to wake anything.
async fn a_destination_enabled_beside_a_saturated_one_gets_its_work(backend: Backend) {
    let mut dispatch = test_dispatch();
    dispatch.max_in_flight_per_destination = 1;
    dispatch.delivery_timeout = Duration::from_secs(60);
    dispatch.lease = Duration::from_secs(60);
    dispatch.retry_schedule = Some(RetrySchedule::parse(&["3s"; 10].join(",")).unwrap());
    let app = TestApp::spawn_with(backend, dispatch).await;
    let slow = Receiver::start().await;
    slow.always(Reply::ok().delayed(Duration::from_secs(60)));
    let later = Receiver::start().await;
    const ALERTS: usize = 8;
    later.queue((0..ALERTS).map(|_| Reply::status(500, "not yet")));
    destination_for(&app, "Slow", &slow, json!({})).await;
    let paused = destination_for(&app, "Paused", &later, json!({})).await;
    for i in 0..ALERTS {
        app.send_alert(json!({"alertId": format!("held-{i}"), "detectionId": "d", "title": "t", "severity": "HIGH"}))
            .await;
    }
    later.wait_for(ALERTS, Duration::from_secs(10)).await;
    let set_enabled = |enabled: bool| set_enabled(&app, &paused["id"], enabled);
    set_enabled(false).await;
    // Past the retries' 3 s: they are due, held while disabled, and the one enabled destination
    // is saturated with deliveries that take a minute.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_eq!(later.count(), ALERTS, "held while disabled");
    assert!(slow.count() >= 1, "the slow destination is busy");
    set_enabled(true).await;
    later.wait_for(2 * ALERTS, Duration::from_secs(5)).await;
}

/// A receiver may answer with bytes PostgreSQL text cannot hold (NUL). The attempt is still
/// recorded, the NUL shown as U+FFFD like any other byte that is not text, and the delivery ends.
async fn a_response_body_with_nul_bytes_is_recorded(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let r = Receiver::start().await;
    r.queue([Reply::status(500, "bad\0gateway")]);
    app.create_destination(json!({"displayName": "Nul", "url": r.url}))
        .await;
    let sent = app
        .send_alert(json!({"detectionId": "d", "title": "nul", "severity": "HIGH"}))
        .await;
    let d = app.wait_final(&sent["deliveries"][0]["id"]).await;
    assert_eq!(d["state"], "SUCCEEDED", "{d:#}");
    let d = app.delivery(&sent["deliveries"][0]["id"]).await;
    assert_eq!(d["attempts"][0]["statusCode"], 500, "{d:#}");
    assert_eq!(d["attempts"][0]["responseBody"], "bad\u{fffd}gateway");
}
