//! Signing-secret rotation as code: `signing_secret_version`, `signing_secret_grace_period` and
//! `previous_signing_secret_expires_at`, through the real CLI against a real Herald, with a
//! receiver that checks the signatures it gets.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::harness::{Herald, Tf};

/// One webhook as it arrived: lower-case header names, and the body bytes.
struct Webhook {
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

/// A plain HTTP/1.1 receiver on loopback that answers 204 to everything and hands each request
/// over a channel. The thread ends with the test process.
fn receiver() -> (String, mpsc::Receiver<Webhook>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut headers = BTreeMap::new();
            let mut line = String::new();
            let _ = reader.read_line(&mut line); // request line
            loop {
                line.clear();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
                    break;
                }
                if let Some((k, v)) = line.trim_end().split_once(':') {
                    headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_owned());
                }
            }
            let len = headers
                .get("content-length")
                .and_then(|l| l.parse().ok())
                .unwrap_or(0);
            let mut body = vec![0; len];
            let _ = reader.read_exact(&mut body);
            let _ = stream.write_all(
                b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
            let _ = tx.send(Webhook { headers, body });
        }
    });
    (url, rx)
}

/// The Standard Webhooks signature of a delivery with one secret.
fn sign(secret: &str, w: &Webhook) -> String {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(
        format!(
            "{}.{}.",
            w.headers["webhook-id"], w.headers["webhook-timestamp"]
        )
        .as_bytes(),
    );
    mac.update(&w.body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// Sends Herald's test alert to the destination and returns the signatures the receiver got.
fn signatures(herald: &Herald, rx: &mpsc::Receiver<Webhook>, id: &Value) -> (Webhook, Vec<String>) {
    let sent = herald.graphql(
        "mutation($id: ID!) { sendTestAlert(input: {destinationId: $id}) { delivery { state } } }",
        json!({"id": id}),
    );
    assert_eq!(
        sent["sendTestAlert"]["delivery"]["state"], "SUCCEEDED",
        "{sent}"
    );
    let w = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the receiver got the test alert");
    let sigs = w.headers["webhook-signature"]
        .split(' ')
        .map(str::to_owned)
        .collect();
    (w, sigs)
}

fn config(url: &str, rotation: &str) -> String {
    format!(
        r#"
resource "herald_destination" "rotating" {{
  display_name = "Rotating"
  url          = "{url}"
{rotation}}}
"#
    )
}

fn api_view(herald: &Herald, id: &Value) -> Value {
    herald.graphql(
        "query($id: ID!) { destination(id: $id) { signingSecret previousSigningSecretExpiresAt } }",
        json!({"id": id}),
    )["destination"]
        .clone()
}

fn seconds_from_now(rfc3339: &Value) -> i64 {
    let text = rfc3339.as_str().expect("an RFC 3339 time");
    let at = chrono::DateTime::parse_from_rfc3339(text).unwrap();
    at.signed_duration_since(chrono::Utc::now()).num_seconds()
}

#[test]
fn raising_the_version_rotates_in_place_and_both_secrets_sign_during_the_grace_period() {
    let herald = Herald::start();
    let (url, rx) = receiver();
    let tf = Tf::new(Some(&herald));
    tf.config(&config(&url, ""));
    tf.apply();
    let first = tf.state("herald_destination.rotating");
    assert_eq!(first["signing_secret_version"], json!(1), "default 1");
    assert_eq!(first["signing_secret_grace_period"], "24h", "default 24h");
    assert_eq!(first["previous_signing_secret_expires_at"], Value::Null);
    let (id, old) = (first["id"].clone(), first["signing_secret"].clone());
    tf.assert_empty_plan();

    // The plan shows an in-place rotation: a version bump, the secret known after apply.
    tf.config(&config(&url, "  signing_secret_version = 2\n"));
    let plan = tf.plan();
    assert_eq!(plan.code, 2, "{}", plan.stdout);
    let shown = plan.stdout.split_whitespace().collect::<Vec<_>>().join(" ");
    for expected in [
        "~ signing_secret_version = 1 -> 2",
        "+ previous_signing_secret_expires_at = (known after apply)",
        "~ signing_secret = (sensitive value)",
        "1 to change, 0 to destroy",
    ] {
        assert!(
            shown.contains(expected),
            "{expected:?} in:\n{}",
            plan.stdout
        );
    }
    assert!(!shown.contains("must be replaced"), "{}", plan.stdout);
    // The UI masks the sensitive secret; the plan itself has it unknown until apply.
    tf.ok(&["plan", "-input=false", "-out=rotate.tfplan"]);
    let saved: Value =
        serde_json::from_str(&tf.ok(&["show", "-json", "rotate.tfplan"]).stdout).unwrap();
    let change = &saved["resource_changes"][0]["change"];
    assert_eq!(change["actions"], json!(["update"]));
    assert_eq!(change["after_unknown"]["signing_secret"], true, "{change}");

    tf.apply();
    let rotated = tf.state("herald_destination.rotating");
    assert_eq!(rotated["id"], id, "rotated in place");
    assert_ne!(rotated["signing_secret"], old);
    let api = api_view(&herald, &id);
    assert_eq!(
        rotated["signing_secret"], api["signingSecret"],
        "state holds the new secret"
    );
    assert_eq!(
        rotated["previous_signing_secret_expires_at"],
        api["previousSigningSecretExpiresAt"]
    );
    let lead = seconds_from_now(&rotated["previous_signing_secret_expires_at"]);
    assert!(
        (86_300..=86_400).contains(&lead),
        "old secret signs for 24h, not {lead} s"
    );
    tf.assert_empty_plan();

    // During the grace period the receiver can verify with either secret.
    let new = rotated["signing_secret"].as_str().unwrap().to_owned();
    let (w, sigs) = signatures(&herald, &rx, &id);
    assert_eq!(sigs, [sign(&new, &w), sign(old.as_str().unwrap(), &w)]);

    // The grace period alone is no rotation: nothing in Herald changes.
    tf.config(&config(
        &url,
        "  signing_secret_version      = 2\n  signing_secret_grace_period = \"1h\"\n",
    ));
    let plan = tf.plan();
    assert_eq!(plan.code, 2, "{}", plan.stdout);
    assert!(
        !plan.stdout.contains("signing_secret_version"),
        "{}",
        plan.stdout
    );
    tf.apply();
    let after = tf.state("herald_destination.rotating");
    assert_eq!(after["signing_secret"], new, "no new secret");
    assert_eq!(after["signing_secret_grace_period"], "1h");
    assert_eq!(api_view(&herald, &id), api, "Herald unchanged");
    tf.assert_empty_plan();

    // Lowering the version is refused at plan, naming the attribute; nothing is applied.
    tf.config(&config(&url, "  signing_secret_version = 1\n"));
    let r = tf.run(&["plan", "-input=false"]);
    assert_eq!(r.code, 1, "{}", r.all());
    assert!(
        r.stderr.contains("signing_secret_version cannot go down"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("signing_secret_version = 1"),
        "points at the line: {}",
        r.stderr
    );
    assert_eq!(api_view(&herald, &id)["signingSecret"], new);

    // A rotation with grace 0s: only the newest secret signs, and no previous expiry is left.
    tf.config(&config(
        &url,
        "  signing_secret_version      = 7\n  signing_secret_grace_period = \"0s\"\n",
    ));
    tf.apply();
    let last = tf.state("herald_destination.rotating");
    assert_ne!(last["signing_secret"], new);
    assert_eq!(last["previous_signing_secret_expires_at"], Value::Null);
    tf.assert_empty_plan();
    let newest = last["signing_secret"].as_str().unwrap();
    let (w, sigs) = signatures(&herald, &rx, &id);
    assert_eq!(sigs, [sign(newest, &w)]);

    // When the grace period runs out, a refresh shows null and there is nothing to plan.
    tf.config(&config(
        &url,
        "  signing_secret_version      = 8\n  signing_secret_grace_period = \"1s\"\n",
    ));
    tf.apply();
    std::thread::sleep(Duration::from_millis(1500));
    tf.assert_empty_plan();
    tf.ok(&["apply", "-refresh-only", "-auto-approve", "-input=false"]);
    let expired = tf.state("herald_destination.rotating");
    assert_eq!(expired["previous_signing_secret_expires_at"], Value::Null);
    assert_eq!(expired["signing_secret_version"], json!(8));
}

#[test]
fn import_sets_version_one_and_the_plan_is_empty() {
    let herald = Herald::start();
    let created = herald.create(json!({
        "displayName": "Imported",
        "url": "https://hooks.example.com/imported",
    }));
    let id = created["id"].as_str().unwrap();
    // Rotated outside Terraform: import still starts the count at 1.
    herald.graphql(
        "mutation($id: ID!) { rotateSigningSecret(input: {id: $id, gracePeriodSeconds: 600}) { destination { id } } }",
        json!({"id": id}),
    );
    let tf = Tf::new(Some(&herald));
    tf.config(
        r#"
resource "herald_destination" "imported" {
  display_name = "Imported"
  url          = "https://hooks.example.com/imported"
}
"#,
    );
    tf.ok(&["import", "-input=false", "herald_destination.imported", id]);
    let s = tf.state("herald_destination.imported");
    assert_eq!(s["signing_secret_version"], json!(1));
    assert_eq!(s["signing_secret_grace_period"], "24h");
    let api = api_view(&herald, &json!(id));
    assert_eq!(s["signing_secret"], api["signingSecret"]);
    let lead = seconds_from_now(&s["previous_signing_secret_expires_at"]);
    assert!((500..=600).contains(&lead), "{lead}");
    tf.assert_empty_plan();
}

#[test]
fn validate_refuses_bad_rotation_attributes_naming_them() {
    let tf = Tf::new(None);
    tf.config(
        r#"
resource "herald_destination" "x" {
  display_name                = "ok"
  url                         = "https://ok.example.com/"
  signing_secret_version      = 2.5
  signing_secret_grace_period = "31d"
}
"#,
    );
    let r = tf.run(&["validate"]);
    assert_ne!(r.code, 0, "{}", r.all());
    assert!(
        r.stderr.contains("Invalid signing_secret_version"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("whole number of 1 or more, got 2.5"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("Invalid signing_secret_grace_period"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains(r#"signing_secret_grace_period = "31d""#),
        "{}",
        r.stderr
    );
    // Terraform wraps the detail; compare it with single spaces.
    let detail = r.stderr.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        detail.contains(r#"such as "24h", "90m" or "1h30m", got "31d""#),
        "{detail}"
    );
}
