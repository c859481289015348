//! Secrets (API tokens, signing secrets, custom header values, encryption keys) never reach a log
//! line, even with every log level on: not while serving, not when the key file is created, not
//! during a key rotation (in the server reading the new key, or in the rotating command).

use std::time::Duration;

use herald_testkit::{Backend, GraphqlClient, Receiver, Reply, fresh_database_url};
use serde_json::json;

use crate::process::{HeraldProcess, herald_with, tokens_in};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_the_log_at_trace_level() {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_database_url(Backend::Sqlite, dir.path());
    let server = HeraldProcess::start_with(
        &db,
        dir.path(),
        &[
            ("RUST_LOG", "trace"),
            (
                "HERALD_RETRY_SCHEDULE",
                "50ms,50ms,50ms,50ms,50ms,50ms,50ms,50ms,50ms,50ms",
            ),
        ],
    )
    .await;
    let token = tokens_in(&server.stdout()).remove(0);
    let client = GraphqlClient::new(&server.base_url, Some(&token));
    let receiver = Receiver::start().await;
    receiver.queue([Reply::status(500, "first attempt fails")]);
    let header_value = "sekrit-header-value-7f3a";
    let created = client
        .query(
            "mutation($u: String!, $v: String!) { createDestination(input: {displayName: \"Logged\", url: $u, customHeaders: [{name: \"X-Api-Key\", value: $v}]}) { destination { id signingSecret } } }",
            json!({"u": receiver.url, "v": header_value}),
        )
        .await
        .data()["createDestination"]["destination"]
        .clone();
    let secret = created["signingSecret"].as_str().unwrap().to_owned();
    client
        .query(
            "mutation { sendAlert(input: {detectionId: \"d\", title: \"t\", severity: HIGH}) { alert { id } } }",
            json!({}),
        )
        .await
        .data();
    let got = receiver.wait_for(2, Duration::from_secs(20)).await;
    let signature = got[0].header("webhook-signature").unwrap().to_owned();
    let rejected = GraphqlClient::new(&server.base_url, Some("hrld_wrong-token-for-the-log"));
    rejected.query("{ viewer { role } }", json!({})).await;

    // A key rotation at trace level beside the server, which then reads the new key from the key
    // file when it meets it, and seals a new header value under it.
    let key_file = dir.path().join("herald.db.key");
    let old_key = std::fs::read_to_string(&key_file).unwrap();
    let rotation = herald_with(
        &db,
        dir.path(),
        &[("RUST_LOG", "trace")],
        &["keys", "rotate"],
    );
    assert!(rotation.status.success());
    let new_key = std::fs::read_to_string(&key_file).unwrap();
    let after_value = "sekrit-after-rotation-91be";
    client
        .query(
            "mutation($id: ID!, $v: String!) { updateDestination(input: {id: $id, customHeaders: [{name: \"X-Api-Key\", value: $v}]}) { destination { id } } }",
            json!({"id": created["id"], "v": after_value}),
        )
        .await
        .data();
    let read_back = client
        .query(
            "query($id: ID!) { destination(id: $id) { signingSecret } }",
            json!({"id": created["id"]}),
        )
        .await;
    assert_eq!(
        read_back.data()["destination"]["signingSecret"],
        secret.as_str()
    );
    let stderr_path = server.stderr_path.clone();
    server.stop();

    let mut log = std::fs::read_to_string(stderr_path).unwrap();
    assert!(log.lines().count() > 5, "trace logging was on: {log}");
    log.push_str(&String::from_utf8_lossy(&rotation.stdout));
    log.push_str(&String::from_utf8_lossy(&rotation.stderr));
    let key_of = |file: &str| {
        file.lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let (old_keys, new_keys) = (key_of(&old_key), key_of(&new_key));
    assert!(log.contains("created the encryption key file"), "{log}");
    assert_ne!(old_keys, new_keys);
    for key in old_keys.iter().chain(&new_keys) {
        assert!(
            !log.contains(key.as_str()),
            "an encryption key is in the log"
        );
    }
    for (what, value) in [
        ("custom header value after the rotation", after_value),
        ("API token", token.as_str()),
        ("a rejected token", "hrld_wrong-token-for-the-log"),
        ("signing secret", secret.strip_prefix("whsec_").unwrap()),
        ("custom header value", header_value),
        ("signature", signature.strip_prefix("v1,").unwrap()),
    ] {
        assert!(!log.contains(value), "the {what} is in the log");
    }
}
