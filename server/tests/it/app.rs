//! `TestApp`: a running server on its own fresh database, with an admin and a viewer client.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use herald_server::app;
use herald_server::config::{DispatchConfig, EgressConfig, Networks, Retention, RetentionConfig};
use herald_server::dispatch::retry::RetrySchedule;
use herald_server::egress::parse_networks;
use herald_server::store::Store;
use herald_server::store::audit::Actor;
use herald_server::store::keys;
use herald_server::store::tokens::{self, Role};
use herald_testkit::{Backend, GqlResponse, GraphqlClient, fresh_database_url};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

pub struct TestApp {
    pub addr: SocketAddr,
    pub store: Store,
    pub database_url: String,
    pub admin: GraphqlClient,
    pub admin_token: String,
    pub viewer: GraphqlClient,
    pub anonymous: GraphqlClient,
    _stop: oneshot::Sender<()>,
    _dir: tempfile::TempDir,
}

/// Fast retries (ten 50 ms steps), a short timeout and lease, a quick poll: what the delivery
/// tests need to see eleven attempts in about a second.
pub fn test_dispatch() -> DispatchConfig {
    DispatchConfig {
        retry_schedule: Some(RetrySchedule::parse(&["50ms"; 10].join(",")).unwrap()),
        delivery_timeout: Duration::from_secs(2),
        lease: Duration::from_secs(10),
        poll_interval: Duration::from_millis(100),
        // The tests' receivers listen on loopback, which Herald refuses by default.
        egress: loopback_allowed(),
        ..DispatchConfig::default()
    }
}

pub fn loopback_allowed() -> EgressConfig {
    EgressConfig {
        allow_networks: Networks(parse_networks("127.0.0.0/8,::1/128").unwrap()),
        ..EgressConfig::default()
    }
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> TestApp {
        Self::spawn_with(backend, test_dispatch()).await
    }

    pub async fn spawn_with(backend: Backend, dispatch: DispatchConfig) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let database_url = fresh_database_url(backend, dir.path());
        Self::spawn_on(dir, database_url, dispatch).await
    }

    /// A server on a database the test prepared itself (`dir` holds it if it is SQLite); it is
    /// migrated to the current schema first, as `herald serve` would.
    pub async fn spawn_on(
        dir: tempfile::TempDir,
        database_url: String,
        dispatch: DispatchConfig,
    ) -> TestApp {
        let store = Store::connect(&database_url, 10).await.unwrap();
        store.migrate().await.unwrap();
        // A fresh key per app, as HERALD_ENCRYPTION_KEY would give it (PostgreSQL needs one).
        let key = STANDARD.encode(rand::random::<[u8; 32]>());
        let (store, _) = keys::unlock(store, &database_url, Some(&key), None)
            .await
            .unwrap();
        let (_, admin_token) = tokens::create(store.db(), &Actor::cli(), "test-admin", Role::Admin)
            .await
            .unwrap();
        let (_, viewer_token) =
            tokens::create(store.db(), &Actor::cli(), "test-viewer", Role::Viewer)
                .await
                .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        // Retention off: the retention tests age rows and prune them themselves; a background pass
        // must not race them.
        let retention = RetentionConfig {
            retention: Retention::Off,
            ..RetentionConfig::default()
        };
        tokio::spawn(app::serve(
            store.clone(),
            dispatch,
            retention,
            listener,
            async {
                let _ = stopped.await;
            },
        ));
        let base = format!("http://{addr}");
        TestApp {
            addr,
            admin: GraphqlClient::new(&base, Some(&admin_token)),
            viewer: GraphqlClient::new(&base, Some(&viewer_token)),
            anonymous: GraphqlClient::new(&base, None),
            admin_token,
            store,
            database_url,
            _stop: stop,
            _dir: dir,
        }
    }

    /// PostgreSQL only: the app's database refuses new connections and its open ones are ended,
    /// as in an outage, until `reconnect_database`.
    pub fn cut_off_database(&self) {
        let db = self.pg_database_name();
        let cluster = herald_testkit::PgCluster::shared();
        cluster
            .psql(
                "postgres",
                &format!("ALTER DATABASE {db} ALLOW_CONNECTIONS false"),
            )
            .unwrap();
        cluster
            .psql(
                "postgres",
                &format!(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{db}'"
                ),
            )
            .unwrap();
    }

    /// Ends what `cut_off_database` began.
    pub fn reconnect_database(&self) {
        let db = self.pg_database_name();
        herald_testkit::PgCluster::shared()
            .psql(
                "postgres",
                &format!("ALTER DATABASE {db} ALLOW_CONNECTIONS true"),
            )
            .unwrap();
    }

    /// The PostgreSQL database's name, from its URL.
    pub fn pg_database_name(&self) -> String {
        assert!(self.database_url.starts_with("postgres"), "PostgreSQL only");
        self.database_url.rsplit('/').next().unwrap().to_owned()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Creates a destination as admin from a partial input; returns the created destination.
    pub async fn create_destination(&self, input: Value) -> Value {
        let resp = self.try_create_destination(input).await;
        resp.data()["createDestination"]["destination"].clone()
    }

    pub async fn try_create_destination(&self, input: Value) -> GqlResponse {
        self.admin
            .query(
                &format!("mutation($input: CreateDestinationInput!) {{ createDestination(input: $input) {{ destination {{ {DESTINATION_FIELDS} }} }} }}"),
                json!({"input": input}),
            )
            .await
    }

    /// Deletes a destination as admin; panics if the call fails.
    pub async fn delete_destination(&self, id: &Value) {
        self.admin
            .query(
                "mutation($id: ID!) { deleteDestination(input: {id: $id}) { deletedId } }",
                json!({"id": id}),
            )
            .await
            .data();
    }

    /// Sends an alert as admin; returns `sendAlert`'s payload.
    pub async fn send_alert(&self, input: Value) -> Value {
        let resp = self
            .admin
            .query(
                &format!("mutation($input: SendAlertInput!) {{ sendAlert(input: $input) {{ alert {{ id detectionId payload }} deliveries {{ {DELIVERY_FIELDS} }} warnings }} }}"),
                json!({"input": input}),
            )
            .await;
        resp.data()["sendAlert"].clone()
    }

    pub async fn delivery(&self, id: &Value) -> Value {
        let resp = self
            .admin
            .query(
                &format!("query($id: ID!) {{ delivery(id: $id) {{ {DELIVERY_FIELDS} attempts {{ number startedAt durationMs statusCode responseBody responseTruncated responseHeaders error }} }} }}"),
                json!({"id": id}),
            )
            .await;
        resp.data()["delivery"].clone()
    }

    /// Polls a delivery until `done` holds for it; panics after `timeout`.
    pub async fn wait_delivery(
        &self,
        id: &Value,
        timeout: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let d = self.delivery(id).await;
            if done(&d) {
                return d;
            }
            assert!(
                Instant::now() < deadline,
                "delivery never reached the expected state: {d:#}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits until the delivery is SUCCEEDED or FAILED.
    pub async fn wait_final(&self, id: &Value) -> Value {
        self.wait_delivery(id, Duration::from_secs(20), |d| {
            d["state"] == "SUCCEEDED" || d["state"] == "FAILED"
        })
        .await
    }

    /// The audit events about one target, newest first: `{action, changedFields}` each.
    pub async fn audit_events(&self, target_id: &Value) -> Vec<Value> {
        let resp = self
            .admin
            .query(
                "query($id: ID!) { auditEvents(targetId: $id) { nodes { action changedFields } } }",
                json!({"id": target_id}),
            )
            .await;
        resp.data()["auditEvents"]["nodes"]
            .as_array()
            .unwrap()
            .clone()
    }

    pub async fn destination_count(&self) -> u64 {
        let resp = self
            .admin
            .query("{ destinations { totalCount } }", json!({}))
            .await;
        resp.data()["destinations"]["totalCount"].as_u64().unwrap()
    }
}

pub const DESTINATION_FIELDS: &str = "id displayName url severities alertTypes customHeaders { name value } enabled signingSecret createdAt updatedAt";

pub const DELIVERY_FIELDS: &str = "id alertId destinationId label state success statusCode responseBody message attemptCount nextAttemptAt webhookId resendOf test createdAt dispatchedAt";
