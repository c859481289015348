//! `TestApp`: a running server on its own fresh database, with an admin and a viewer client.

use std::net::SocketAddr;

use herald_server::app;
use herald_server::store::Store;
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

impl TestApp {
    pub async fn spawn(backend: Backend) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        let database_url = fresh_database_url(backend, dir.path());
        let store = Store::connect(&database_url, 10).await.unwrap();
        store.migrate().await.unwrap();
        let (_, admin_token) = tokens::create(store.db(), "test-admin", Role::Admin)
            .await
            .unwrap();
        let (_, viewer_token) = tokens::create(store.db(), "test-viewer", Role::Viewer)
            .await
            .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(app::serve(store.clone(), listener, async {
            let _ = stopped.await;
        }));
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

    pub async fn destination_count(&self) -> u64 {
        let resp = self
            .admin
            .query("{ destinations { totalCount } }", json!({}))
            .await;
        resp.data()["destinations"]["totalCount"].as_u64().unwrap()
    }
}

pub const DESTINATION_FIELDS: &str = "id displayName url severities alertTypes customHeaders { name value } enabled signingSecret createdAt updatedAt";
