//! Secrets (API tokens, signing secrets, custom header values) never reach a log line, even with
//! every log level on.

use std::time::Duration;

use herald_testkit::{Backend, GraphqlClient, Receiver, Reply, fresh_database_url};
use serde_json::json;

use crate::process::{HeraldProcess, tokens_in};

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
    server.stop();

    let log = std::fs::read_to_string(
        dir.path().join(
            std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .find(|n| n.ends_with(".err"))
                .unwrap(),
        ),
    )
    .unwrap();
    assert!(log.lines().count() > 5, "trace logging was on: {log}");
    for (what, value) in [
        ("API token", token.as_str()),
        ("a rejected token", "hrld_wrong-token-for-the-log"),
        ("signing secret", secret.strip_prefix("whsec_").unwrap()),
        ("custom header value", header_value),
        ("signature", signature.strip_prefix("v1,").unwrap()),
    ] {
        assert!(!log.contains(value), "the {what} is in the log");
    }
}
