//! Tokens and roles: 401 without a token, FORBIDDEN for viewers' mutations, masked secrets.

use herald_testkit::{Backend, GraphqlClient};
use sea_orm::{ConnectionTrait, Statement};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::app::TestApp;

herald_testkit::on_both_backends!(
    requests_without_a_valid_token_are_401,
    viewers_can_query_but_every_mutation_is_forbidden,
    viewers_see_no_secrets,
    tokens_are_stored_only_as_hashes,
    revoked_tokens_stop_working,
    healthz_answers_while_the_process_lives_and_readyz_follows_the_database,
);

async fn requests_without_a_valid_token_are_401(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let base = format!("http://{}", app.addr);
    for client in [
        app.anonymous.clone(),
        GraphqlClient::new(&base, Some("hrld_not-a-real-token")),
        GraphqlClient::new(&base, Some("")),
    ] {
        let resp = client.query("{ viewer { tokenName } }", json!({})).await;
        assert_eq!(resp.status, 401);
        assert_eq!(resp.error_code(), "UNAUTHENTICATED");
    }
    // A wrong scheme is as good as no token.
    let resp = reqwest::Client::new()
        .post(app.url("/graphql"))
        .header("Authorization", format!("Basic {}", app.admin_token))
        .json(&json!({"query": "{ viewer { tokenName } }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);

    let me = app
        .admin
        .query("{ viewer { tokenName role } }", json!({}))
        .await;
    assert_eq!(me.status, 200);
    assert_eq!(
        me.data()["viewer"],
        json!({"tokenName": "test-admin", "role": "ADMIN"})
    );
}

async fn viewers_can_query_but_every_mutation_is_forbidden(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let d = app
        .create_destination(json!({"displayName": "D", "url": "https://example.com/"}))
        .await;
    let me = app
        .viewer
        .query("{ viewer { tokenName role } }", json!({}))
        .await;
    assert_eq!(
        me.data()["viewer"],
        json!({"tokenName": "test-viewer", "role": "VIEWER"})
    );
    let list = app
        .viewer
        .query("{ destinations { totalCount } }", json!({}))
        .await;
    assert_eq!(list.data()["destinations"]["totalCount"], 1);

    let id = d["id"].as_str().unwrap();
    let mutations = [
        ("createDestination", r#"mutation { createDestination(input: {displayName: "V", url: "https://example.com/"}) { destination { id } } }"#.to_owned()),
        ("rotateSigningSecret", format!(r#"mutation {{ rotateSigningSecret(input: {{id: "{id}", gracePeriodSeconds: 60}}) {{ destination {{ id }} }} }}"#)),
        ("sendAlert", r#"mutation { sendAlert(input: {detectionId: "d", title: "t", severity: HIGH}) { alert { id } } }"#.to_owned()),
        ("sendAlerts", r#"mutation { sendAlerts(input: {alerts: [{detectionId: "d", title: "t", severity: HIGH}]}) { results { alert { id } } } }"#.to_owned()),
        ("sendTestAlert", format!(r#"mutation {{ sendTestAlert(input: {{destinationId: "{id}"}}) {{ delivery {{ id }} }} }}"#)),
        ("resendDelivery", r#"mutation { resendDelivery(input: {deliveryId: "dlv_x"}) { delivery { id } } }"#.to_owned()),
        ("resendAlert", format!(r#"mutation {{ resendAlert(input: {{alertId: "a", destinationIds: ["{id}"]}}) {{ deliveries {{ id }} }} }}"#)),
        ("updateDestination", format!(r#"mutation {{ updateDestination(input: {{id: "{}", enabled: false}}) {{ destination {{ id }} }} }}"#, d["id"].as_str().unwrap())),
        ("deleteDestination", format!(r#"mutation {{ deleteDestination(input: {{id: "{}"}}) {{ deletedId }} }}"#, d["id"].as_str().unwrap())),
    ];
    // Every mutation the schema has must be in the list above, so a new one cannot slip by.
    let introspection = app
        .viewer
        .query(
            "{ __schema { mutationType { fields { name } } } }",
            json!({}),
        )
        .await;
    let mut names: Vec<String> = introspection.data()["__schema"]["mutationType"]["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    let mut tested: Vec<String> = mutations.iter().map(|(n, _)| (*n).to_owned()).collect();
    tested.sort();
    assert_eq!(names, tested, "add new mutations to this test");

    for (name, mutation) in &mutations {
        let resp = app.viewer.query(mutation, json!({})).await;
        assert_eq!(resp.error_code(), "FORBIDDEN", "{name}: {}", resp.body);
    }
    let still = app
        .admin
        .query(
            "query($id: ID!) { destination(id: $id) { enabled } }",
            json!({"id": d["id"]}),
        )
        .await;
    assert_eq!(still.data()["destination"]["enabled"], true);
    assert_eq!(app.destination_count().await, 1);
    let alerts = app
        .admin
        .query("{ alerts { totalCount } }", json!({}))
        .await;
    assert_eq!(
        alerts.data()["alerts"]["totalCount"],
        0,
        "no viewer alert was stored"
    );
}

async fn viewers_see_no_secrets(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_destination(json!({
        "displayName": "With secrets",
        "url": "https://example.com/",
        "customHeaders": [{"name": "X-Api-Key", "value": "secret-1"}, {"name": "X-Tenant", "value": "t"}],
    }))
    .await;
    let q = "{ destinations { edges { node { signingSecret customHeaders { name value } } } } }";
    let viewer = app.viewer.query(q, json!({})).await;
    let node = &viewer.data()["destinations"]["edges"][0]["node"];
    assert_eq!(node["signingSecret"], Value::Null);
    assert_eq!(
        node["customHeaders"],
        json!([{"name": "X-Api-Key", "value": null}, {"name": "X-Tenant", "value": null}])
    );
    let admin = app.admin.query(q, json!({})).await;
    let node = &admin.data()["destinations"]["edges"][0]["node"];
    assert!(
        node["signingSecret"]
            .as_str()
            .unwrap()
            .starts_with("whsec_")
    );
    assert_eq!(node["customHeaders"][0]["value"], "secret-1");
}

async fn tokens_are_stored_only_as_hashes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let backend_kind = app.store.db().get_database_backend();
    let rows = app
        .store
        .db()
        .query_all_raw(Statement::from_string(
            backend_kind,
            "SELECT id, name, role, token_hash FROM api_tokens ORDER BY name",
        ))
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    let expected = hex::encode(Sha256::digest(app.admin_token.as_bytes()));
    let admin_hash: String = rows[0].try_get("", "token_hash").unwrap();
    assert_eq!(admin_hash, expected);
    for row in &rows {
        for col in ["id", "name", "role", "token_hash"] {
            let v: String = row.try_get("", col).unwrap();
            assert!(!v.contains(&app.admin_token), "{col} holds the token");
        }
    }
}

async fn revoked_tokens_stop_working(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    herald_server::store::tokens::revoke(
        app.store.db(),
        &herald_server::store::audit::Actor::cli(),
        "test-viewer",
    )
    .await
    .unwrap();
    let resp = app
        .viewer
        .query("{ viewer { tokenName } }", json!({}))
        .await;
    assert_eq!(resp.status, 401);
}

async fn healthz_answers_while_the_process_lives_and_readyz_follows_the_database(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let resp = reqwest::get(app.url("/healthz")).await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "ok");
    if backend == Backend::Postgres {
        // Take the database away under the running server: the process is alive (a restart would
        // not help), but it is not ready.
        let name = app.database_url.rsplit('/').next().unwrap().to_owned();
        herald_testkit::PgCluster::shared()
            .psql("postgres", &format!("DROP DATABASE {name} WITH (FORCE)"))
            .unwrap();
        let resp = reqwest::get(app.url("/healthz")).await.unwrap();
        assert_eq!(resp.status(), 200);
        let resp = reqwest::get(app.url("/readyz")).await.unwrap();
        assert_eq!(resp.status(), 503);
        let body: Value = resp.json().await.unwrap();
        assert_ne!(body["checks"]["database"], "ok", "{body}");
    }
}
