//! Replicas on one PostgreSQL hear each other through LISTEN/NOTIFY: work queued through one is
//! taken at once by another with capacity, a subscriber on one sees what another delivered or
//! changed, and the listener comes back by itself after its connection is killed.
//!
//! Replica A runs with `HERALD_MAX_IN_FLIGHT=1`, its one slot held by a receiver that does not
//! answer for many seconds, so any other delivery must be B's work.

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use herald_testkit::{Backend, GraphqlClient, PgCluster, Receiver, Reply, fresh_database_url};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::process::{HeraldProcess, create_token};

/// Longer than any of these tests: A's one attempt to it is still waiting when each test ends.
const HOLD: Duration = Duration::from_secs(60);
/// A poll that never comes within a test: only a notification can make B claim in time.
const NO_POLL: &[(&str, &str)] = &[("HERALD_POLL_INTERVAL", "30s")];
/// What "at once" must mean on a busy 2-core machine; the figures measured are printed.
const PROMPT: Duration = Duration::from_secs(1);

fn admin_token(db: &str, dir: &std::path::Path) -> String {
    create_token(db, dir, "replicas", "admin")
}

async fn create_destination(client: &GraphqlClient, name: &str, url: &str) -> String {
    client
        .query(
            "mutation($n: String!, $u: String!) { createDestination(input: {displayName: $n, url: $u}) { destination { id } } }",
            json!({"n": name, "u": url}),
        )
        .await
        .data()["createDestination"]["destination"]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Sends one alert to exactly `destination`; returns its delivery's id.
async fn send_alert_to(client: &GraphqlClient, destination: &str) -> String {
    client
        .query(
            "mutation($d: ID!) { sendAlert(input: {detectionId: \"Replicas\", title: \"t\", severity: HIGH, destinationOverrides: [$d]}) { deliveries { id } } }",
            json!({"d": destination}),
        )
        .await
        .data()["sendAlert"]["deliveries"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A graphql-transport-ws session on `server` running `query`, ready to receive.
async fn subscribe(server: &HeraldProcess, token: &str, query: &str, variables: Value) -> Ws {
    let mut req = format!("{}/graphql/ws", server.base_url.replace("http", "ws"))
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let mut ws = tokio_tungstenite::connect_async(req).await.unwrap().0;
    let init =
        json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}});
    ws.send(Message::Text(init.to_string().into()))
        .await
        .unwrap();
    assert_eq!(next_message(&mut ws).await["type"], "connection_ack");
    let sub = json!({"id": "1", "type": "subscribe", "payload": {"query": query, "variables": variables}});
    ws.send(Message::Text(sub.to_string().into()))
        .await
        .unwrap();
    // The protocol does not acknowledge a subscription: give the server a moment to start it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    ws
}

async fn next_message(ws: &mut Ws) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a message within 10 s")
            .expect("the session is open")
            .unwrap();
        if let Message::Text(t) = msg {
            return serde_json::from_str(&t).unwrap();
        }
    }
}

/// The next `data.<field>` that satisfies `wanted`, and when it arrived; panics after `timeout`.
async fn next_update(
    ws: &mut Ws,
    field: &str,
    timeout: Duration,
    wanted: impl Fn(&Value) -> bool,
) -> (Value, Instant) {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let msg = tokio::time::timeout(left, next_message(ws))
            .await
            .unwrap_or_else(|_| panic!("no matching {field} within {timeout:?}"));
        assert_eq!(msg["type"], "next", "{msg}");
        let value = &msg["payload"]["data"][field];
        if wanted(value) {
            return (value.clone(), Instant::now());
        }
    }
}

/// Asserts that nothing more arrives for a while: a replica does not stream its own change twice
/// (once as it makes it, once more as its own notification comes back).
async fn assert_no_echo(ws: &mut Ws) {
    if let Ok(msg) = tokio::time::timeout(Duration::from_millis(500), next_message(ws)).await {
        panic!("a second update for one change: {msg}");
    }
}

/// Two replicas on one fresh PostgreSQL database, A saturated by one slow attempt.
struct Pair {
    _dir: tempfile::TempDir,
    db: String,
    token: String,
    a: HeraldProcess,
    b: HeraldProcess,
    fast: Receiver,
    fast_id: String,
    _slow: Receiver,
}

impl Pair {
    /// A starts alone with one slot and takes the slow delivery; then B starts. `env` goes to both.
    async fn start(env: &[(&str, &str)]) -> Pair {
        let dir = tempfile::tempdir().unwrap();
        let db = fresh_database_url(Backend::Postgres, dir.path());
        let slow = Receiver::start().await;
        slow.always(Reply::ok().delayed(HOLD));
        let fast = Receiver::start().await;
        let mut env_a = vec![("HERALD_MAX_IN_FLIGHT", "1")];
        env_a.extend_from_slice(env);
        let a = HeraldProcess::start_with(&db, dir.path(), &env_a).await;
        let token = admin_token(&db, dir.path());
        let ca = GraphqlClient::new(&a.base_url, Some(&token));
        let slow_id = create_destination(&ca, "Slow", &slow.url).await;
        let fast_id = create_destination(&ca, "Fast", &fast.url).await;
        send_alert_to(&ca, &slow_id).await;
        // A alone runs, so A holds the slow attempt: its one slot is taken.
        slow.wait_for(1, Duration::from_secs(10)).await;
        let b = HeraldProcess::start_with(&db, dir.path(), env).await;
        let pair = Pair {
            _dir: dir,
            db,
            token,
            a,
            b,
            fast,
            fast_id,
            _slow: slow,
        };
        // Both listen before the test starts (B's listener connects just after its start).
        pair.listener_pids(&[], 2, Duration::from_secs(10)).await;
        pair
    }

    fn client_a(&self) -> GraphqlClient {
        GraphqlClient::new(&self.a.base_url, Some(&self.token))
    }

    fn client_b(&self) -> GraphqlClient {
        GraphqlClient::new(&self.b.base_url, Some(&self.token))
    }

    fn database(&self) -> &str {
        self.db.rsplit('/').next().unwrap()
    }

    /// Waits until `n` listener connections, none of them in `old`, are listening; returns their
    /// backend pids.
    async fn listener_pids(&self, old: &[String], n: usize, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        let not_old = if old.is_empty() {
            String::new()
        } else {
            format!("AND pid NOT IN ({})", old.join(", "))
        };
        let sql = format!(
            "SELECT string_agg(pid::text, ',') FROM pg_stat_activity \
             WHERE application_name = 'herald-listener' AND datname = current_database() \
             AND state = 'idle' AND query LIKE 'LISTEN%' {not_old}"
        );
        loop {
            let out = PgCluster::shared().psql(self.database(), &sql).unwrap();
            let pids: Vec<String> = out
                .split(',')
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect();
            if pids.len() == n {
                return pids;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {n} listeners within {timeout:?}",
                pids.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends an alert for the fast destination through A and returns how long after the call's
    /// return the receiver had it.
    async fn queued_on_a_delivered_after(&self) -> Duration {
        let before = self.fast.count();
        send_alert_to(&self.client_a(), &self.fast_id).await;
        let returned = Instant::now();
        let got = self
            .fast
            .wait_for(before + 1, Duration::from_secs(10))
            .await;
        got[before].at.saturating_duration_since(returned)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_on_one_replica_sees_the_attempt_another_made() {
    let pair = Pair::start(&[]).await;
    let query = "subscription($d: ID) { deliveryUpdated(destinationId: $d) { id state attemptCount statusCode } }";
    let mut ws = subscribe(&pair.a, &pair.token, query, json!({"d": pair.fast_id})).await;
    let mut on_b = subscribe(&pair.b, &pair.token, query, json!({"d": pair.fast_id})).await;
    // Queued through B, which also attempts it: A's one slot is taken.
    let id = send_alert_to(&pair.client_b(), &pair.fast_id).await;
    let received = pair.fast.wait_for(1, Duration::from_secs(10)).await[0].at;
    let (update, seen) = next_update(&mut ws, "deliveryUpdated", Duration::from_secs(10), |d| {
        d["id"] == json!(id)
    })
    .await;
    assert_eq!(update["state"], "SUCCEEDED");
    assert_eq!(update["attemptCount"], 1);
    assert_eq!(update["statusCode"], 200);
    let lag = seen.saturating_duration_since(received);
    eprintln!("B's attempt reached the receiver; A's subscriber saw it {lag:?} later");
    assert!(
        lag < PROMPT,
        "A's subscriber saw B's attempt {lag:?} after it was sent"
    );
    // B streams its own attempt once, and A once too.
    let (on_b_update, _) = next_update(&mut on_b, "deliveryUpdated", PROMPT, |_| true).await;
    assert_eq!(on_b_update, update);
    assert_no_echo(&mut on_b).await;
    assert_no_echo(&mut ws).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn work_queued_on_a_saturated_replica_is_taken_at_once_by_another() {
    let pair = Pair::start(NO_POLL).await;
    let took = pair.queued_on_a_delivered_after().await;
    eprintln!("queued on saturated A, delivered by B {took:?} after the API call returned");
    assert!(took < PROMPT, "B took {took:?}; its poll is 30 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_on_one_replica_sees_a_destination_changed_through_another() {
    let pair = Pair::start(&[]).await;
    let query = "subscription($id: ID) { destinationUpdated(id: $id) { id displayName } }";
    let mut ws = subscribe(&pair.a, &pair.token, query, json!({"id": pair.fast_id})).await;
    let mut on_b = subscribe(&pair.b, &pair.token, query, json!({"id": pair.fast_id})).await;
    pair.client_b()
        .query(
            "mutation($id: ID!) { updateDestination(input: {id: $id, displayName: \"Renamed on B\"}) { destination { id } } }",
            json!({"id": pair.fast_id}),
        )
        .await
        .data();
    let changed = Instant::now();
    let (update, seen) = next_update(
        &mut ws,
        "destinationUpdated",
        Duration::from_secs(10),
        |_| true,
    )
    .await;
    assert_eq!(update["displayName"], "Renamed on B");
    let lag = seen.saturating_duration_since(changed);
    eprintln!("A's subscriber saw the destination changed through B {lag:?} later");
    assert!(lag < PROMPT, "{lag:?}");
    let (on_b_update, _) = next_update(&mut on_b, "destinationUpdated", PROMPT, |_| true).await;
    assert_eq!(on_b_update, update);
    assert_no_echo(&mut on_b).await;
    assert_no_echo(&mut ws).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listener_reconnects_after_its_connection_is_killed() {
    let pair = Pair::start(NO_POLL).await;
    let old = pair.listener_pids(&[], 2, Duration::from_secs(10)).await;
    let killed = PgCluster::shared()
        .psql(
            pair.database(),
            &format!(
                "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE pid IN ({})) AS t",
                old.join(", ")
            ),
        )
        .unwrap();
    assert_eq!(killed, "2");
    let at = Instant::now();
    pair.listener_pids(&old, 2, Duration::from_secs(10)).await;
    eprintln!(
        "both listeners listened again {:?} after the kill",
        at.elapsed()
    );
    let took = pair.queued_on_a_delivered_after().await;
    eprintln!("after the reconnection, queued on A and delivered by B {took:?} after the call");
    assert!(took < PROMPT, "B took {took:?}; its poll is 30 s");
    assert!(
        pair.b
            .stderr()
            .contains("listening for other replicas' news again"),
        "B's log does not show the reconnection:\n{}",
        pair.b.stderr()
    );
}
