//! `deliveryUpdated` over graphql-transport-ws, authenticated in `connection_init` as the
//! playground does it.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use herald_testkit::{Backend, Receiver};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::app::TestApp;

herald_testkit::on_both_backends!(delivery_updates_stream_over_websocket);

pub(crate) type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub(crate) async fn connect(app: &TestApp) -> Ws {
    let mut req = format!("ws://{}/graphql/ws", app.addr)
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    tokio_tungstenite::connect_async(req).await.unwrap().0
}

pub(crate) async fn next_json(ws: &mut Ws) -> Option<Value> {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .expect("a message within 20 s")?;
        match msg.ok()? {
            Message::Text(t) => return Some(serde_json::from_str(&t).unwrap()),
            Message::Close(_) => return None,
            _ => continue,
        }
    }
}

async fn delivery_updates_stream_over_websocket(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let r = Receiver::start().await;
    let watched = app
        .create_destination(json!({"displayName": "Watched", "url": r.url}))
        .await;
    let other = Receiver::start().await;
    app.create_destination(
        json!({"displayName": "Other", "url": other.url, "severities": ["LOW"]}),
    )
    .await;

    let mut ws = connect(&app).await;
    let init = json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {}", app.admin_token)}});
    ws.send(Message::Text(init.to_string().into()))
        .await
        .unwrap();
    assert_eq!(next_json(&mut ws).await.unwrap()["type"], "connection_ack");
    let subscribe = json!({
        "id": "1", "type": "subscribe",
        "payload": {
            "query": "subscription($d: ID) { deliveryUpdated(destinationId: $d) { id destinationId state attemptCount responseBody } }",
            "variables": {"d": watched["id"]},
        },
    });
    ws.send(Message::Text(subscribe.to_string().into()))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    app.send_alert(json!({"detectionId": "d", "title": "low", "severity": "LOW"}))
        .await;
    let sent = app
        .send_alert(json!({"detectionId": "d", "title": "high", "severity": "HIGH"}))
        .await;
    let high_id = &sent["deliveries"][0]["id"];
    loop {
        let msg = next_json(&mut ws).await.expect("an update");
        assert_eq!(msg["type"], "next", "{msg}");
        let d = &msg["payload"]["data"]["deliveryUpdated"];
        assert_eq!(
            d["destinationId"], watched["id"],
            "only the watched destination"
        );
        if d["id"] == *high_id {
            assert_eq!(d["state"], "SUCCEEDED");
            assert_eq!(d["responseBody"], "ok");
            break;
        }
    }

    let mut anonymous = connect(&app).await;
    let init = json!({"type": "connection_init", "payload": {}});
    anonymous
        .send(Message::Text(init.to_string().into()))
        .await
        .unwrap();
    let answer = next_json(&mut anonymous).await;
    assert!(
        answer.is_none() || answer.as_ref().unwrap()["type"] != "connection_ack",
        "no token, no subscription: {answer:?}"
    );
}
