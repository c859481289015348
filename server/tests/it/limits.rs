//! Limits on every GraphQL input: the body size (413, not buffered), depth, complexity, aliases
//! and document size (each named with its value), the token checked before the body is read, and
//! the introspection queries of GraphiQL and graphql-js inside all of them.

use std::time::Duration;

use herald_server::graphql::limits;
use herald_testkit::{Backend, introspection_query};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::app::TestApp;

async fn post_raw(app: &TestApp, token: Option<&str>, body: Vec<u8>) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(app.url("/graphql"))
        .header("content-type", "application/json")
        .body(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    let json = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text:?}"));
    (status, json)
}

fn limit_error(resp: &herald_testkit::GqlResponse, limit: &str, max: usize) {
    let err = resp.error();
    assert_eq!(err["extensions"]["code"], "LIMIT_EXCEEDED", "{err}");
    assert_eq!(err["extensions"]["limit"], limit, "{err}");
    assert_eq!(err["extensions"]["max"], max, "{err}");
    let message = err["message"].as_str().unwrap();
    assert!(message.contains(&max.to_string()), "{message}");
    assert!(resp.body["data"].is_null(), "nothing ran: {:#}", resp.body);
}

#[tokio::test]
async fn a_body_over_one_mib_is_refused_with_413_before_it_is_read() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let huge =
        json!({"query": "{ viewer { tokenName } }", "variables": {"pad": "x".repeat(5 << 20)}});
    let (status, body) =
        post_raw(&app, Some(&app.admin_token), huge.to_string().into_bytes()).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["errors"][0]["extensions"]["code"], "PAYLOAD_TOO_LARGE");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("1048576") && message.contains("1 MiB"),
        "{message}"
    );

    // A chunked body has no Content-Length: it is cut off at the limit all the same.
    let mut conn = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "POST /graphql HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
        app.addr, app.admin_token
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b' '; 64 * 1024];
    let mut answer = Vec::new();
    for _ in 0..40 {
        let mut frame = format!("{:x}\r\n", chunk.len()).into_bytes();
        frame.extend_from_slice(&chunk);
        frame.extend_from_slice(b"\r\n");
        if conn.write_all(&frame).await.is_err() {
            break; // The server answered and closed: the rest was never read.
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(10), conn.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");

    // Just under the limit is read and answered.
    let fits =
        json!({"query": "{ viewer { tokenName } }", "variables": {"pad": "x".repeat(1_000_000)}});
    let (status, body) =
        post_raw(&app, Some(&app.admin_token), fits.to_string().into_bytes()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["viewer"]["tokenName"], "test-admin");
}

#[tokio::test]
async fn requests_without_a_valid_token_are_refused_before_their_body_is_parsed() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    for token in [None, Some("hrld_not_a_token")] {
        for body in [
            b"{ this is not json".to_vec(),
            vec![0xff, 0xfe, 0x00],
            json!({"query": "x".repeat(5 << 20)})
                .to_string()
                .into_bytes(),
        ] {
            let (status, answer) = post_raw(&app, token, body).await;
            assert_eq!(status, 401, "{answer}");
            assert_eq!(answer["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
        }
    }
    // With a token, the same garbage is a 400 that says what a request looks like.
    let (status, answer) = post_raw(&app, Some(&app.admin_token), b"{ nope".to_vec()).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["errors"][0]["extensions"]["code"], "BAD_REQUEST");
    assert!(
        answer["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("query")
    );
}

#[tokio::test]
async fn depth_complexity_aliases_and_size_are_limited_by_name_and_value() {
    let app = TestApp::spawn(Backend::Sqlite).await;

    // Depth: 20 levels of ofType under __schema.types.
    let deep = format!(
        "{{ __schema {{ types {{ {} name {} }} }} }}",
        "ofType {".repeat(20),
        "}".repeat(20)
    );
    let resp = app.viewer.query(&deep, json!({})).await;
    limit_error(&resp, "depth", limits::MAX_DEPTH);

    // Complexity: fragments that double at each level, so the document stays small and shallow.
    let mut doc = String::from("fragment F0 on __Type { name kind description specifiedByURL }\n");
    for k in 1..=12 {
        doc.push_str(&format!(
            "fragment F{k} on __Type {{ ...F{p} ofType {{ ...F{p} }} }}\n",
            p = k - 1
        ));
    }
    doc.push_str("{ __schema { types { ...F12 } } }");
    let resp = app.admin.query(&doc, json!({})).await;
    limit_error(&resp, "complexity", limits::MAX_COMPLEXITY);

    // Nested pages: each list counts once per item a page may hold, so a query that would read a
    // million rows behind three small-looking levels is refused before it runs.
    let nested = "{ destinations(first: 100) { nodes { deliveries(first: 100) { nodes { id attempts { number } } } } } }";
    let resp = app.admin.query(nested, json!({})).await;
    limit_error(&resp, "complexity", limits::MAX_COMPLEXITY);
    // Pages the console or the provider ask for pass: every destination with its counts, and a
    // page of 100 deliveries with every field of their attempts.
    let page = "{ destinations(first: 100) { totalCount nodes { id displayName url enabled deliveryCounts { pending failed } } } deliveries(first: 100) { nodes { id state statusCode message attemptCount requestBody attempts { number url startedAt durationMs statusCode responseBody responseTruncated responseHeaders requestHeaders error } } } }";
    let resp = app.admin.query(page, json!({})).await;
    assert!(resp.body["errors"].is_null(), "{:#}", resp.body);

    // Aliases: one more than allowed.
    let fields: String = (0..=limits::MAX_ALIASES)
        .map(|i| format!("a{i}: viewer {{ tokenName }} "))
        .collect();
    let resp = app.admin.query(&format!("{{ {fields} }}"), json!({})).await;
    limit_error(&resp, "aliases", limits::MAX_ALIASES);
    // At the limit, it runs.
    let fields: String = (0..limits::MAX_ALIASES)
        .map(|i| format!("a{i}: viewer {{ tokenName }} "))
        .collect();
    let resp = app.admin.query(&format!("{{ {fields} }}"), json!({})).await;
    assert_eq!(resp.data()["a63"]["tokenName"], "test-admin");

    // Document size: padding in a comment still counts.
    let padded = format!(
        "# {}\n{{ viewer {{ tokenName }} }}",
        "x".repeat(limits::MAX_DOCUMENT_BYTES)
    );
    let resp = app.admin.query(&padded, json!({})).await;
    limit_error(&resp, "documentSize", limits::MAX_DOCUMENT_BYTES);

    // Lists keep their page-size cap.
    let resp = app
        .admin
        .query("{ destinations(first: 1000) { totalCount } }", json!({}))
        .await;
    assert_eq!(resp.error_code(), "BAD_USER_INPUT");
}

#[tokio::test]
async fn graphiql_and_graphql_js_introspection_pass_every_limit() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    for package in ["graphql", "graphql17"] {
        let query = introspection_query(package);
        for client in [&app.admin, &app.viewer] {
            let resp = client.query(&query, json!({})).await;
            assert!(
                resp.body["errors"].is_null(),
                "{package}: {:#}",
                resp.body["errors"]
            );
            let types = resp.data()["__schema"]["types"].as_array().unwrap();
            assert!(
                types.iter().any(|t| t["name"] == "Destination"),
                "{package}: the schema came back"
            );
        }
    }
}

/// A WebSocket message over 1 MiB ends the session with close code 1009 and a reason naming the
/// limit, after the frames the client sent behind it: not a reset, which would lose the reason.
#[tokio::test]
async fn a_websocket_message_over_one_mib_is_closed_with_1009() {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

    let app = TestApp::spawn(Backend::Sqlite).await;
    let mut ws = crate::subscription::connect(&app).await;
    let init = json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {}", app.admin_token)}});
    ws.send(Message::Text(init.to_string().into()))
        .await
        .unwrap();
    let ack = crate::subscription::next_json(&mut ws).await.unwrap();
    assert_eq!(ack["type"], "connection_ack");
    ws.send(Message::Text("x".repeat(2 << 20).into()))
        .await
        .unwrap();
    // Frames behind the oversized one, as a client that has not noticed yet sends them.
    let _ = ws.send(Message::Ping(b"after".to_vec().into())).await;
    let closed = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            match ws.next().await {
                Some(Ok(Message::Close(frame))) => return frame,
                Some(Ok(_)) => {}
                other => panic!("the socket ended without a close frame: {other:?}"),
            }
        }
    })
    .await
    .expect("closed within 20 s")
    .expect("with a close frame");
    assert_eq!(closed.code, CloseCode::Size);
    assert!(closed.reason.contains("1048576"), "{}", closed.reason);
}
