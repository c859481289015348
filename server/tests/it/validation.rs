//! Every destination rule, rejected with the field that broke it, and nothing stored.

use herald_testkit::Backend;
use serde_json::{Value, json};

use crate::app::{DESTINATION_FIELDS, TestApp};

herald_testkit::on_both_backends!(
    create_rejects_each_broken_rule_with_its_field,
    update_rejects_broken_rules_and_keeps_the_destination,
);

fn headers(n: usize) -> Value {
    (0..n)
        .map(|i| json!({"name": format!("X-H{i}"), "value": "v"}))
        .collect()
}

/// (what is wrong, the input fields to set, the expected `extensions.field`, a word the message
/// must contain)
fn broken_inputs() -> Vec<(&'static str, Value, &'static str, &'static str)> {
    vec![
        (
            "empty name",
            json!({"displayName": ""}),
            "displayName",
            "empty",
        ),
        (
            "blank name",
            json!({"displayName": "   "}),
            "displayName",
            "blank",
        ),
        (
            "long name",
            json!({"displayName": "n".repeat(101)}),
            "displayName",
            "100",
        ),
        ("relative url", json!({"url": "/hooks"}), "url", "absolute"),
        (
            "no scheme",
            json!({"url": "hooks.example.com/x"}),
            "url",
            "absolute",
        ),
        (
            "ftp url",
            json!({"url": "ftp://example.com/x"}),
            "url",
            "http",
        ),
        (
            "user-info",
            json!({"url": "https://u:p@example.com/"}),
            "url",
            "user-info",
        ),
        (
            "long url",
            json!({"url": format!("https://example.com/{}", "a".repeat(2040))}),
            "url",
            "2048",
        ),
        (
            "empty alert types",
            json!({"alertTypes": []}),
            "alertTypes",
            "empty",
        ),
        (
            "header name not a token",
            json!({"customHeaders": [{"name": "X-Ok", "value": "1"}, {"name": "Bad Name", "value": "2"}]}),
            "customHeaders[1].name",
            "token",
        ),
        (
            "empty header name",
            json!({"customHeaders": [{"name": "", "value": "2"}]}),
            "customHeaders[0].name",
            "empty",
        ),
        (
            "Host",
            json!({"customHeaders": [{"name": "host", "value": "x"}]}),
            "customHeaders[0].name",
            "reserved",
        ),
        (
            "Content-Length",
            json!({"customHeaders": [{"name": "Content-Length", "value": "1"}]}),
            "customHeaders[0].name",
            "reserved",
        ),
        (
            "Content-Type",
            json!({"customHeaders": [{"name": "content-type", "value": "x"}]}),
            "customHeaders[0].name",
            "reserved",
        ),
        (
            "Transfer-Encoding",
            json!({"customHeaders": [{"name": "Transfer-Encoding", "value": "x"}]}),
            "customHeaders[0].name",
            "reserved",
        ),
        (
            "Connection",
            json!({"customHeaders": [{"name": "Connection", "value": "x"}]}),
            "customHeaders[0].name",
            "reserved",
        ),
        (
            "webhook-*",
            json!({"customHeaders": [{"name": "Webhook-Signature", "value": "x"}]}),
            "customHeaders[0].name",
            "reserved",
        ),
        (
            "duplicate header",
            json!({"customHeaders": [{"name": "X-Key", "value": "1"}, {"name": "x-key", "value": "2"}]}),
            "customHeaders[1].name",
            "unique",
        ),
        (
            "21 headers",
            json!({"customHeaders": headers(21)}),
            "customHeaders",
            "20",
        ),
        (
            "CR in value",
            json!({"customHeaders": [{"name": "X-A", "value": "a\rb"}]}),
            "customHeaders[0].value",
            "CR",
        ),
        (
            "LF in value",
            json!({"customHeaders": [{"name": "X-A", "value": "a\nb"}]}),
            "customHeaders[0].value",
            "LF",
        ),
        (
            "NUL in value",
            json!({"customHeaders": [{"name": "X-A", "value": "a\u{0}b"}]}),
            "customHeaders[0].value",
            "NUL",
        ),
        (
            "long value",
            json!({"customHeaders": [{"name": "X-A", "value": "v".repeat(4097)}]}),
            "customHeaders[0].value",
            "4096",
        ),
        (
            "log type with a space",
            json!({"logTypes": ["AWS.CloudTrail", "Okta.SystemLog", "AWS S3"]}),
            "logTypes[2]",
            "letters, digits",
        ),
        (
            "empty log type",
            json!({"logTypes": ["AWS.CloudTrail", ""]}),
            "logTypes[1]",
            "empty",
        ),
        (
            "long log type",
            json!({"logTypes": ["L".repeat(129)]}),
            "logTypes[0]",
            "128",
        ),
        (
            "repeated log type",
            json!({"logTypes": ["AWS.CloudTrail", "Okta.SystemLog", "AWS.CloudTrail"]}),
            "logTypes[2]",
            "unique",
        ),
        (
            "too many log types",
            json!({"logTypes": (0..101).map(|i| format!("Custom.T{i}")).collect::<Vec<_>>()}),
            "logTypes",
            "at most 100",
        ),
        (
            "no rate",
            json!({"rateLimitPerMinute": 0}),
            "rateLimitPerMinute",
            "1 to 600000",
        ),
        (
            "negative rate",
            json!({"rateLimitPerMinute": -5}),
            "rateLimitPerMinute",
            "1 to 600000",
        ),
        (
            "rate over 10,000 a second",
            json!({"rateLimitPerMinute": 600_001}),
            "rateLimitPerMinute",
            "1 to 600000",
        ),
    ]
}

async fn create_rejects_each_broken_rule_with_its_field(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_destination(json!({"displayName": "Taken", "url": "https://example.com/"}))
        .await;
    let mut cases = broken_inputs();
    cases.push((
        "duplicate name",
        json!({"displayName": "TAKEN"}),
        "displayName",
        "unique",
    ));
    for (what, fields, field, word) in cases {
        let mut input = json!({"displayName": "Valid name", "url": "https://example.com/ok"});
        for (k, v) in fields.as_object().unwrap() {
            input[k] = v.clone();
        }
        let resp = app.try_create_destination(input).await;
        assert_eq!(resp.error_code(), "BAD_USER_INPUT", "{what}: {}", resp.body);
        assert_eq!(resp.error()["extensions"]["field"], field, "{what}");
        let message = resp.error()["message"].as_str().unwrap();
        assert!(
            message.contains(word),
            "{what}: message {message:?} lacks {word:?}"
        );
        assert!(
            !message.contains("a\rb") && !message.contains("a\nb"),
            "values are not echoed"
        );
    }
    assert_eq!(
        app.destination_count().await,
        1,
        "no rejected create stored anything"
    );
    // The limits themselves are allowed.
    app.create_destination(json!({
        "displayName": "n".repeat(100),
        "url": "https://example.com/ok",
        "customHeaders": headers(20),
        "logTypes": (0..100).map(|i| format!("Custom.{}{i:02}", "T".repeat(119))).collect::<Vec<_>>(),
        "rateLimitPerMinute": 600_000,
    }))
    .await;
}

async fn update_rejects_broken_rules_and_keeps_the_destination(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_destination(json!({"displayName": "Other", "url": "https://example.com/"}))
        .await;
    let original = app
        .create_destination(json!({
            "displayName": "Kept",
            "url": "https://example.com/kept",
            "customHeaders": [{"name": "X-Keep", "value": "1"}],
        }))
        .await;
    let mut cases = broken_inputs();
    cases.push((
        "duplicate name",
        json!({"displayName": "other"}),
        "displayName",
        "unique",
    ));
    for (what, fields, field, _) in cases {
        let mut input = fields.clone();
        input["id"] = original["id"].clone();
        // A valid change beside the broken one must not be applied either.
        input["enabled"] = json!(false);
        let resp = app
            .admin
            .query(
                "mutation($input: UpdateDestinationInput!) { updateDestination(input: $input) { destination { id } } }",
                json!({"input": input}),
            )
            .await;
        assert_eq!(resp.error_code(), "BAD_USER_INPUT", "{what}: {}", resp.body);
        assert_eq!(resp.error()["extensions"]["field"], field, "{what}");
    }
    let read = app
        .admin
        .query(
            &format!("query($id: ID!) {{ destination(id: $id) {{ {DESTINATION_FIELDS} }} }}"),
            json!({"id": original["id"]}),
        )
        .await;
    assert_eq!(read.data()["destination"], original);
}
