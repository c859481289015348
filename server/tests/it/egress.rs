//! Where Herald may send (SSRF): refused addresses are refused when a destination is written and
//! when an attempt connects, `HERALD_ALLOW_NETWORKS` opens chosen ranges, `HERALD_REQUIRE_HTTPS`
//! refuses plain http, and `HERALD_CA_BUNDLE` trusts a private CA. The rules do not depend on
//! the database, so these run on SQLite only.

use std::time::Duration;

use herald_server::config::{DispatchConfig, EgressConfig};
use herald_server::dispatch::retry::RetrySchedule;
use herald_testkit::{Backend, Receiver, TestCa};
use serde_json::{Value, json};

use crate::app::{DELIVERY_FIELDS, TestApp, loopback_allowed, test_dispatch};

const WAIT: Duration = Duration::from_secs(20);

/// The test dispatcher with Herald's default egress policy: nothing internal allowed.
fn default_policy() -> DispatchConfig {
    DispatchConfig {
        egress: EgressConfig::default(),
        ..test_dispatch()
    }
}

/// The receiver's URL with its host spelled as a name that resolves to 127.0.0.1.
fn by_name(receiver: &Receiver) -> String {
    receiver.url.replace("127.0.0.1", "localhost")
}

#[tokio::test]
async fn literal_internal_addresses_are_refused_when_written() {
    let app = TestApp::spawn_with(Backend::Sqlite, default_policy()).await;
    let cases = [
        ("http://127.0.0.1:9000/hook", "127.0.0.1", "loopback"),
        ("http://0x7f.1/hook", "127.0.0.1", "loopback"),
        ("http://2130706433/hook", "127.0.0.1", "loopback"),
        ("http://0177.0.0.1/hook", "127.0.0.1", "loopback"),
        ("http://[::1]:9000/hook", "::1", "loopback"),
        (
            "http://[::ffff:127.0.0.1]/hook",
            "::ffff:127.0.0.1",
            "loopback",
        ),
        (
            "http://169.254.169.254/latest/meta-data",
            "169.254.169.254",
            "metadata",
        ),
        (
            "http://[64:ff9b::a9fe:a9fe]/",
            "64:ff9b::a9fe:a9fe",
            "NAT64",
        ),
        (
            "http://[2002:c0a8:101::1]/",
            "2002:c0a8:101::1",
            "6to4 form of 192.168.1.1",
        ),
        ("https://10.1.2.3/hook", "10.1.2.3", "RFC 1918"),
        ("https://172.20.0.1/hook", "172.20.0.1", "RFC 1918"),
        ("https://192.168.1.10/hook", "192.168.1.10", "RFC 1918"),
        ("https://100.64.1.1/hook", "100.64.1.1", "carrier-grade NAT"),
        ("https://0.0.0.0/hook", "0.0.0.0", "unspecified"),
        ("https://[fd00::1]/hook", "fd00::1", "unique local"),
        ("https://[fe80::1]/hook", "fe80::1", "link-local"),
        ("https://239.1.1.1/hook", "239.1.1.1", "multicast"),
        (
            "https://255.255.255.255/hook",
            "255.255.255.255",
            "broadcast",
        ),
        ("https://192.0.2.1/hook", "192.0.2.1", "documentation"),
        ("https://198.18.5.5/hook", "198.18.5.5", "benchmarking"),
        ("https://241.0.0.1/hook", "241.0.0.1", "reserved"),
    ];
    for (i, (url, addr, rule)) in cases.iter().enumerate() {
        let resp = app
            .try_create_destination(json!({"displayName": format!("Internal {i}"), "url": url}))
            .await;
        assert_eq!(resp.error_code(), "BAD_USER_INPUT", "{url}");
        let err = resp.error();
        assert_eq!(err["extensions"]["field"], "url", "{url}");
        let message = err["message"].as_str().unwrap();
        for part in [*addr, *rule, "HERALD_ALLOW_NETWORKS"] {
            assert!(message.contains(part), "{url}: {message:?} lacks {part:?}");
        }
    }
    assert_eq!(app.destination_count().await, 0, "nothing was stored");

    // An update to an internal address is refused too, and the stored URL stays.
    let ok = app
        .create_destination(json!({"displayName": "Public", "url": "https://hooks.example.com/h"}))
        .await;
    let resp = app
        .admin
        .query(
            "mutation($id: ID!) { updateDestination(input: {id: $id, url: \"http://169.254.169.254/\"}) { destination { url } } }",
            json!({"id": ok["id"]}),
        )
        .await;
    assert_eq!(resp.error_code(), "BAD_USER_INPUT");
    assert_eq!(resp.error()["extensions"]["field"], "url");
    let stored = app
        .admin
        .query(
            "query($id: ID!) { destination(id: $id) { url } }",
            json!({"id": ok["id"]}),
        )
        .await;
    assert_eq!(
        stored.data()["destination"]["url"],
        "https://hooks.example.com/h"
    );
}

#[tokio::test]
async fn a_name_that_resolves_to_a_refused_address_fails_every_attempt_without_a_byte_sent() {
    let app = TestApp::spawn_with(Backend::Sqlite, default_policy()).await;
    let receiver = Receiver::start().await;
    let dest = app
        .create_destination(json!({"displayName": "By name", "url": by_name(&receiver)}))
        .await;
    let sent = app
        .send_alert(json!({"detectionId": "d", "title": "t", "severity": "HIGH"}))
        .await;
    let id = &sent["deliveries"][0]["id"];
    // Refused like any network error: the retry schedule runs its course (eleven attempts).
    let d = app.wait_final(id).await;
    assert_eq!(d["state"], "FAILED", "{d:#}");
    assert_eq!(d["attemptCount"], 11, "{d:#}");
    assert_eq!(d["statusCode"], Value::Null);
    let expected = "network error: refused 127.0.0.1 (an address of localhost): loopback (127.0.0.0/8); allow it with HERALD_ALLOW_NETWORKS";
    assert_eq!(d["message"], expected, "{d:#}");
    for attempt in d["attempts"].as_array().unwrap() {
        assert!(
            attempt["error"]
                .as_str()
                .unwrap()
                .starts_with("refused 127.0.0.1"),
            "{attempt}"
        );
    }

    // The test alert and a re-send go through the same check.
    let test = app
        .admin
        .query(
            &format!("mutation($id: ID!) {{ sendTestAlert(input: {{destinationId: $id}}) {{ delivery {{ {DELIVERY_FIELDS} }} }} }}"),
            json!({"id": dest["id"]}),
        )
        .await;
    let t = &test.data()["sendTestAlert"]["delivery"];
    assert_eq!(t["state"], "FAILED");
    assert_eq!(t["message"], expected);
    let resent = app
        .admin
        .query(
            "mutation($id: ID!) { resendDelivery(input: {deliveryId: $id}) { delivery { id } } }",
            json!({"id": id}),
        )
        .await;
    let r = app
        .wait_delivery(
            &resent.data()["resendDelivery"]["delivery"]["id"],
            WAIT,
            |d| d["attemptCount"].as_u64() >= Some(1),
        )
        .await;
    assert_eq!(r["message"], expected);
    assert_eq!(receiver.count(), 0, "not one request reached the receiver");
}

#[tokio::test]
async fn allowed_networks_open_the_range_for_names_and_literals() {
    let mut dispatch = test_dispatch();
    dispatch.egress = EgressConfig {
        allow_networks: herald_server::config::Networks(
            herald_server::egress::parse_networks("127.0.0.1/32").unwrap(),
        ),
        ..EgressConfig::default()
    };
    let app = TestApp::spawn_with(Backend::Sqlite, dispatch).await;
    let literal = Receiver::start().await;
    let named = Receiver::start().await;
    app.create_destination(json!({"displayName": "Literal", "url": literal.url}))
        .await;
    app.create_destination(json!({"displayName": "Named", "url": by_name(&named)}))
        .await;
    // Next door to the allowed address is still refused.
    let resp = app
        .try_create_destination(json!({"displayName": "Next door", "url": "http://127.0.0.2/"}))
        .await;
    assert_eq!(resp.error_code(), "BAD_USER_INPUT");
    let sent = app
        .send_alert(json!({"detectionId": "d", "title": "t", "severity": "HIGH"}))
        .await;
    for d in sent["deliveries"].as_array().unwrap() {
        let d = app.wait_final(&d["id"]).await;
        assert_eq!(d["state"], "SUCCEEDED", "{d:#}");
    }
    assert_eq!(literal.count(), 1);
    assert_eq!(named.count(), 1);
}

#[tokio::test]
async fn plain_http_is_refused_when_https_is_required() {
    let mut dispatch = test_dispatch();
    dispatch.egress.require_https = true;
    let app = TestApp::spawn_with(Backend::Sqlite, dispatch).await;
    let resp = app
        .try_create_destination(json!({"displayName": "Plain", "url": "http://127.0.0.1:9/h"}))
        .await;
    assert_eq!(resp.error_code(), "BAD_USER_INPUT");
    assert_eq!(resp.error()["extensions"]["field"], "url");
    let message = resp.error()["message"].as_str().unwrap();
    assert!(message.contains("HERALD_REQUIRE_HTTPS"), "{message}");
    app.create_destination(json!({"displayName": "Secure", "url": "https://127.0.0.1:9/h"}))
        .await;
}

#[tokio::test]
async fn a_private_ca_is_trusted_only_from_the_ca_bundle() {
    let ca = TestCa::new("Herald test CA");
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("ca.pem");
    std::fs::write(&bundle, &ca.pem).unwrap();
    let receiver = Receiver::start_tls(&ca).await;

    // Without the bundle the certificate does not verify: no request is delivered.
    let mut untrusting = test_dispatch();
    untrusting.retry_schedule = Some(RetrySchedule::parse(&["10s"; 10].join(",")).unwrap());
    let app = TestApp::spawn_with(Backend::Sqlite, untrusting).await;
    app.create_destination(json!({"displayName": "Private CA", "url": receiver.url}))
        .await;
    let sent = app
        .send_alert(json!({"detectionId": "d", "title": "t", "severity": "HIGH"}))
        .await;
    let d = app
        .wait_delivery(&sent["deliveries"][0]["id"], WAIT, |d| {
            d["attemptCount"] == 1
        })
        .await;
    assert_eq!(d["state"], "RETRYING", "{d:#}");
    let message = d["message"].as_str().unwrap();
    assert!(message.contains("certificate"), "{message}");
    assert_eq!(receiver.count(), 0);

    // With it, the same receiver is trusted.
    let mut trusting = test_dispatch();
    trusting.egress = EgressConfig {
        ca_bundle: Some(bundle),
        ..loopback_allowed()
    };
    let app = TestApp::spawn_with(Backend::Sqlite, trusting).await;
    app.create_destination(json!({"displayName": "Private CA", "url": receiver.url}))
        .await;
    let sent = app
        .send_alert(json!({"detectionId": "d", "title": "t", "severity": "HIGH"}))
        .await;
    let d = app.wait_final(&sent["deliveries"][0]["id"]).await;
    assert_eq!(d["state"], "SUCCEEDED", "{d:#}");
    assert_eq!(receiver.count(), 1);
}
