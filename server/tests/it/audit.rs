//! The audit trail: every change through the API or the command line is one event with its actor,
//! action, target and changed field names (never values); admins page and filter it, viewers
//! cannot read it; rows written before the trail was generalised survive the migration.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use herald_server::store::audit::{self, Actor};
use herald_server::store::migrations::Migrator;
use herald_server::store::tokens::{self, Role};
use herald_server::store::{Store, now};
use herald_testkit::{Backend, Receiver, Reply, fresh_database_url};
use sea_orm::sea_query::{Alias, Query};
use sea_orm::{ConnectionTrait, TransactionTrait};
use sea_orm_migration::MigratorTrait;
use serde_json::{Value, json};

use crate::app::{TestApp, test_dispatch};

herald_testkit::on_both_backends!(
    every_change_is_one_event_with_actor_target_and_field_names,
    events_filter_by_target_action_and_time_and_page_newest_first,
    bad_arguments_are_bad_user_input_naming_the_argument,
    viewers_cannot_read_the_trail,
    audit_rows_from_before_the_migration_are_kept_and_renamed,
);

const EVENT_FIELDS: &str = "id at actor action targetType targetId changedFields";

/// Every test here finishes well within this, or fails.
async fn within(test: impl Future<Output = ()>) {
    tokio::time::timeout(Duration::from_secs(90), test)
        .await
        .expect("the test finished in time");
}

/// Every event, newest first, as the admin sees them.
async fn all_events(app: &TestApp) -> Vec<Value> {
    let resp = app
        .admin
        .query(
            &format!("{{ auditEvents(first: 100) {{ totalCount edges {{ node {{ {EVENT_FIELDS} }} }} }} }}"),
            json!({}),
        )
        .await;
    let conn = &resp.data()["auditEvents"];
    let nodes: Vec<Value> = conn["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"].clone())
        .collect();
    assert_eq!(conn["totalCount"], nodes.len());
    nodes
}

/// `(actor, action, targetType, targetId, changedFields)` of an event.
fn summary(e: &Value) -> (String, String, String, Value, Value) {
    (
        e["actor"].as_str().unwrap().to_owned(),
        e["action"].as_str().unwrap().to_owned(),
        e["targetType"].as_str().unwrap().to_owned(),
        e["targetId"].clone(),
        e["changedFields"].clone(),
    )
}

fn expect(
    actor: &str,
    action: &str,
    target_type: &str,
    target_id: &str,
    fields: &[&str],
) -> (String, String, String, Value, Value) {
    (
        actor.to_owned(),
        action.to_owned(),
        target_type.to_owned(),
        json!(target_id),
        json!(fields),
    )
}

async fn token_id(app: &TestApp, name: &str) -> String {
    tokens::list(app.store.db())
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.name == name)
        .unwrap()
        .id
}

async fn update(app: &TestApp, input: Value) -> herald_testkit::GqlResponse {
    app.admin
        .query(
            "mutation($input: UpdateDestinationInput!) { updateDestination(input: $input) { destination { id signingSecret } } }",
            json!({"input": input}),
        )
        .await
}

async fn every_change_is_one_event_with_actor_target_and_field_names(backend: Backend) {
    within(async {
        let app = TestApp::spawn(backend).await;
        let receiver = Receiver::start().await;
        receiver.always(Reply::status(200, "ok"));
        let created = app
            .create_destination(json!({
                "displayName": "Audited",
                "url": receiver.url,
                "customHeaders": [{"name": "Authorization", "value": "Bearer header-secret-value"}],
            }))
            .await;
        let id = created["id"].as_str().unwrap().to_owned();
        let mut secrets = vec![
            created["signingSecret"].as_str().unwrap().to_owned(),
            "header-secret-value".to_owned(),
            app.admin_token.clone(),
        ];

        update(&app, json!({"id": id, "url": format!("{}/v2", receiver.url), "customHeaders": [{"name": "Authorization", "value": "Bearer second-header-secret"}]})).await.data();
        secrets.push("second-header-secret".into());
        update(&app, json!({"id": id, "enabled": false})).await.data();
        update(&app, json!({"id": id, "enabled": true, "displayName": "Audited again"}))
            .await
            .data();
        // Neither a change that changes nothing nor a rejected one is an event.
        update(&app, json!({"id": id, "enabled": true})).await.data();
        let rejected = update(&app, json!({"id": id, "url": "not a url", "enabled": false})).await;
        assert_eq!(rejected.error_code(), "BAD_USER_INPUT");
        let refused = app
            .viewer
            .query(
                "mutation($id: ID!) { deleteDestination(input: {id: $id}) { deletedId } }",
                json!({"id": id}),
            )
            .await;
        assert_eq!(refused.error_code(), "FORBIDDEN");

        let rotated = app
            .admin
            .query(
                "mutation($id: ID!) { rotateSigningSecret(input: {id: $id, gracePeriodSeconds: 60}) { destination { signingSecret } } }",
                json!({"id": id}),
            )
            .await;
        secrets.push(
            rotated.data()["rotateSigningSecret"]["destination"]["signingSecret"]
                .as_str()
                .unwrap()
                .to_owned(),
        );

        let tested = app
            .admin
            .query(
                "mutation($id: ID!) { sendTestAlert(input: {destinationId: $id}) { delivery { state } } }",
                json!({"id": id}),
            )
            .await;
        assert_eq!(tested.data()["sendTestAlert"]["delivery"]["state"], "SUCCEEDED");

        // Sending alerts is traffic, not a change: not audited. Re-sending is.
        let sent = app
            .send_alert(json!({"detectionId": "d", "title": "t", "severity": "HIGH"}))
            .await;
        let original = app.wait_final(&sent["deliveries"][0]["id"]).await;
        let resent = app
            .admin
            .query(
                "mutation($id: ID!) { resendDelivery(input: {deliveryId: $id}) { delivery { id } } }",
                json!({"id": original["id"]}),
            )
            .await;
        let resent_id = resent.data()["resendDelivery"]["delivery"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        app.wait_final(&json!(resent_id)).await;
        let again = app
            .admin
            .query(
                "mutation($a: ID!, $d: ID!) { resendAlert(input: {alertId: $a, destinationIds: [$d]}) { deliveries { id } } }",
                json!({"a": sent["alert"]["id"], "d": id}),
            )
            .await;
        let again_id = again.data()["resendAlert"]["deliveries"][0]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        app.wait_final(&json!(again_id)).await;

        // The command line's token commands and the key rotation go through these store calls.
        let (ops, ops_token) = tokens::create(app.store.db(), &Actor::cli(), "ops", Role::Viewer)
            .await
            .unwrap();
        secrets.push(ops_token);
        tokens::revoke(app.store.db(), &Actor::cli(), "ops").await.unwrap();
        let txn = app.store.db().begin().await.unwrap();
        audit::record_encryption_key_rotated(
            &txn,
            &Actor::cli(),
            Some("key-2"),
            &["signingSecret", "customHeaders"],
        )
        .await
        .unwrap();
        txn.commit().await.unwrap();

        app.delete_destination(&json!(id)).await;

        let events = all_events(&app).await;
        let mut got: Vec<_> = events.iter().map(summary).collect();
        got.reverse();
        let admin = "test-admin";
        let dst = "destination";
        assert_eq!(
            got,
            vec![
                expect("cli", "token.created", "api_token", &token_id(&app, "test-admin").await, &["name", "role"]),
                expect("cli", "token.created", "api_token", &token_id(&app, "test-viewer").await, &["name", "role"]),
                expect(admin, "destination.created", dst, &id, &["displayName", "url", "severities", "alertTypes", "customHeaders", "logTypes", "rateLimitPerMinute", "enabled", "autoDisableAfterFailures", "signingSecret"]),
                expect(admin, "destination.updated", dst, &id, &["url", "customHeaders"]),
                expect(admin, "destination.disabled", dst, &id, &["enabled"]),
                expect(admin, "destination.updated", dst, &id, &["displayName"]),
                expect(admin, "destination.enabled", dst, &id, &["enabled"]),
                expect(admin, "destination.signing_secret_rotated", dst, &id, &["signingSecret"]),
                expect(admin, "alert.test_sent", dst, &id, &[]),
                expect(admin, "delivery.resent", "delivery", &resent_id, &[]),
                expect(admin, "delivery.resent", "delivery", &again_id, &[]),
                expect("cli", "token.created", "api_token", &ops.id, &["name", "role"]),
                expect("cli", "token.revoked", "api_token", &ops.id, &[]),
                expect("cli", "encryption_key.rotated", "encryption_key", "key-2", &["signingSecret", "customHeaders"]),
                expect(admin, "destination.deleted", dst, &id, &[]),
            ]
        );
        // Ids are unique, times are RFC 3339 and never go backwards down the list.
        let mut ids: Vec<_> = events.iter().map(|e| e["id"].as_str().unwrap()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), events.len());
        let times: Vec<DateTime<Utc>> = events
            .iter()
            .map(|e| e["at"].as_str().unwrap().parse().unwrap())
            .collect();
        assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");

        // No secret value anywhere: not in the API's answer, not in the table.
        let everything = format!(
            "{}{:?}",
            serde_json::to_string(&events).unwrap(),
            app.store
                .db()
                .query_all_raw(sea_orm::Statement::from_string(
                    app.store.backend(),
                    "SELECT * FROM audit_events",
                ))
                .await
                .unwrap()
        );
        for secret in &secrets {
            assert!(!everything.contains(secret.as_str()), "a secret is in the audit trail");
        }
    })
    .await;
}

async fn events_filter_by_target_action_and_time_and_page_newest_first(backend: Backend) {
    within(async {
        let app = TestApp::spawn(backend).await;
        let mut ids = Vec::new();
        for name in ["A", "B", "C"] {
            let d = app
                .create_destination(json!({"displayName": name, "url": "https://example.com/"}))
                .await;
            ids.push(d["id"].as_str().unwrap().to_owned());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        let midpoint = now();
        tokio::time::sleep(Duration::from_millis(20)).await;
        for id in &ids {
            update(&app, json!({"id": id, "enabled": false})).await.data();
        }
        update(&app, json!({"id": ids[0], "url": "https://example.com/a"})).await.data();

        let everything = all_events(&app).await;
        assert_eq!(everything.len(), 2 + 3 + 3 + 1, "two test tokens, three creates, four updates");

        let query = format!(
            "query($first: Int, $after: String, $targetId: ID, $action: String, $since: DateTime) {{
               auditEvents(first: $first, after: $after, targetId: $targetId, action: $action, since: $since) {{
                 totalCount edges {{ cursor node {{ {EVENT_FIELDS} }} }} pageInfo {{ hasNextPage endCursor }}
               }}
             }}"
        );
        // Pages of two walk the whole list once, in the same order as one big page.
        let mut walked = Vec::new();
        let mut after = Value::Null;
        loop {
            let resp = app
                .admin
                .query(&query, json!({"first": 2, "after": after}))
                .await;
            let conn = resp.data()["auditEvents"].clone();
            assert_eq!(conn["totalCount"], everything.len());
            let edges = conn["edges"].as_array().unwrap();
            assert!(edges.len() <= 2);
            walked.extend(edges.iter().map(|e| e["node"].clone()));
            if conn["pageInfo"]["hasNextPage"] == false {
                break;
            }
            after = conn["pageInfo"]["endCursor"].clone();
            assert!(walked.len() < everything.len(), "paging does not end");
        }
        assert_eq!(walked, everything);

        let filtered = |vars: Value| {
            let app = &app;
            let query = &query;
            async move {
                let resp = app.admin.query(query, vars).await;
                let conn = resp.data()["auditEvents"].clone();
                let nodes: Vec<Value> = conn["edges"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e["node"].clone())
                    .collect();
                assert_eq!(conn["totalCount"], nodes.len());
                nodes
            }
        };
        let of_a = filtered(json!({"targetId": ids[0]})).await;
        let actions: Vec<_> = of_a.iter().map(|e| e["action"].as_str().unwrap()).collect();
        assert_eq!(
            actions,
            ["destination.updated", "destination.disabled", "destination.created"]
        );
        assert!(of_a.iter().all(|e| e["targetId"] == ids[0]));

        let disabled = filtered(json!({"action": "destination.disabled"})).await;
        let targets: Vec<_> = disabled.iter().map(|e| e["targetId"].as_str().unwrap()).collect();
        assert_eq!(targets, [&ids[2], &ids[1], &ids[0]], "newest first");

        let since = filtered(json!({"since": midpoint.to_rfc3339()})).await;
        assert_eq!(since.len(), 4, "the four updates came after the midpoint");
        assert_eq!(since, everything[..4]);

        let combined = filtered(json!({"targetId": ids[1], "action": "destination.disabled", "since": midpoint.to_rfc3339()})).await;
        assert_eq!(combined.len(), 1);
        assert_eq!(combined[0]["targetId"], ids[1]);
        let none = filtered(json!({"targetId": ids[1], "action": "destination.created", "since": midpoint.to_rfc3339()})).await;
        assert!(none.is_empty());
        let unknown = filtered(json!({"targetId": "dst_nope"})).await;
        assert!(unknown.is_empty());

        // A filtered walk pages too.
        let first = app
            .admin
            .query(&query, json!({"first": 1, "targetId": ids[0]}))
            .await;
        let page = &first.data()["auditEvents"];
        assert_eq!(page["totalCount"], 3);
        assert_eq!(page["pageInfo"]["hasNextPage"], true);
        let rest = app
            .admin
            .query(
                &query,
                json!({"first": 5, "targetId": ids[0], "after": page["pageInfo"]["endCursor"]}),
            )
            .await;
        let rest = &rest.data()["auditEvents"];
        assert_eq!(rest["edges"].as_array().unwrap().len(), 2);
        assert_eq!(rest["pageInfo"]["hasNextPage"], false);
        assert_eq!(rest["edges"][1]["node"]["action"], "destination.created");
    })
    .await;
}

async fn bad_arguments_are_bad_user_input_naming_the_argument(backend: Backend) {
    within(async {
        let app = TestApp::spawn(backend).await;
        for (args, field, words) in [
            ("first: 101", "first", "between 0 and 100"),
            ("first: -1", "first", "between 0 and 100"),
            ("after: \"not-a-cursor\"", "after", "endCursor"),
            ("after: \"2024-01-01T00:00:00Z|x\"", "after", "endCursor"),
            (
                "action: \"destination.update\"",
                "action",
                "destination.updated",
            ),
            ("targetId: \" \"", "targetId", "blank"),
        ] {
            let resp = app
                .admin
                .query(
                    &format!("{{ auditEvents({args}) {{ totalCount }} }}"),
                    json!({}),
                )
                .await;
            assert_eq!(resp.error_code(), "BAD_USER_INPUT", "{args}: {}", resp.body);
            assert_eq!(resp.error()["extensions"]["field"], field, "{args}");
            let message = resp.error()["message"].as_str().unwrap();
            assert!(message.contains(words), "{args}: {message}");
        }
        // A time that does not parse, as a variable or written in the query.
        for (query, vars) in [
            (
                "query($s: DateTime) { auditEvents(since: $s) { totalCount } }",
                json!({"s": "yesterday"}),
            ),
            (
                "{ auditEvents(since: \"yesterday\") { totalCount } }",
                json!({}),
            ),
            ("{ auditEvents(since: 5) { totalCount } }", json!({})),
        ] {
            let resp = app.admin.query(query, vars).await;
            assert_eq!(
                resp.error_code(),
                "BAD_USER_INPUT",
                "{query}: {}",
                resp.body
            );
            assert_eq!(resp.error()["extensions"]["field"], "since", "{query}");
        }
        // The shape is the same for every list's arguments, e.g. an unknown enum value.
        let resp = app
            .admin
            .query("{ deliveries(state: LOST) { totalCount } }", json!({}))
            .await;
        assert_eq!(resp.error_code(), "BAD_USER_INPUT", "{}", resp.body);
        assert_eq!(resp.error()["extensions"]["field"], "state");
    })
    .await;
}

async fn viewers_cannot_read_the_trail(backend: Backend) {
    within(async {
        let app = TestApp::spawn(backend).await;
        app.create_destination(json!({"displayName": "D", "url": "https://example.com/"}))
            .await;
        let resp = app
            .viewer
            .query(
                "{ auditEvents { totalCount edges { node { id action } } } }",
                json!({}),
            )
            .await;
        assert_eq!(resp.error_code(), "FORBIDDEN", "{}", resp.body);
        assert_eq!(resp.error()["path"], json!(["auditEvents"]));
        assert!(resp.body["data"].is_null(), "{}", resp.body);
        let anonymous = app
            .anonymous
            .query("{ auditEvents { totalCount } }", json!({}))
            .await;
        assert_eq!(anonymous.status, 401);
        // The viewer still reads what viewers may.
        let list = app
            .viewer
            .query("{ destinations { totalCount } }", json!({}))
            .await;
        assert_eq!(list.data()["destinations"]["totalCount"], 1);
    })
    .await;
}

/// Writes a row the way release 1 did (`audit_log`, a JSON `detail` with values).
async fn old_row(
    store: &Store,
    at: DateTime<Utc>,
    actor: &str,
    action: &str,
    dst: &str,
    detail: Value,
) {
    let insert = Query::insert()
        .into_table(Alias::new("audit_log"))
        .columns(["at", "actor", "action", "destination_id", "detail"].map(Alias::new))
        .values_panic([
            at.into(),
            actor.into(),
            action.into(),
            dst.into(),
            detail.to_string().into(),
        ])
        .to_owned();
    store.db().execute(&insert).await.unwrap();
}

async fn audit_rows_from_before_the_migration_are_kept_and_renamed(backend: Backend) {
    within(async {
        let dir = tempfile::tempdir().unwrap();
        let url = fresh_database_url(backend, dir.path());
        let t0: DateTime<Utc> = "2024-05-01T12:00:00.123456Z".parse().unwrap();
        let at = |s: i64| t0 + chrono::Duration::seconds(s);
        {
            let store = Store::connect(&url, 2).await.unwrap();
            Migrator::up(store.db(), Some(1)).await.unwrap();
            let full = |fields: Value, enabled: bool| {
                json!({"fields": fields, "displayName": "Old", "url": "https://example.com/?key=url-secret",
                       "severities": ["HIGH"], "alertTypes": ["RULE"], "customHeaderNames": ["X-Key"], "enabled": enabled})
            };
            old_row(&store, at(0), "alice", "destination.create", "dst_old", full(json!([]), true)).await;
            old_row(&store, at(1), "alice", "destination.update", "dst_old", full(json!(["url"]), true)).await;
            old_row(&store, at(2), "bob", "destination.update", "dst_old", full(json!(["enabled"]), false)).await;
            old_row(&store, at(3), "bob", "destination.update", "dst_old", full(json!(["displayName", "enabled"]), true)).await;
            old_row(&store, at(4), "alice", "destination.rotate_secret", "dst_old", json!({"gracePeriodSeconds": 60})).await;
            old_row(&store, at(5), "alice", "destination.delete", "dst_old", full(json!([]), true)).await;
            old_row(&store, at(6), "alice", "destination.create", "dst_other", full(json!([]), true)).await;
        }
        let app = TestApp::spawn_on(dir, url, test_dispatch()).await;

        let old = |vars: Value| {
            let app = &app;
            async move {
                let resp = app
                    .admin
                    .query(
                        &format!("query($t: ID, $a: String, $s: DateTime) {{ auditEvents(targetId: $t, action: $a, since: $s) {{ totalCount edges {{ node {{ {EVENT_FIELDS} }} }} }} }}"),
                        vars,
                    )
                    .await;
                resp.data()["auditEvents"]["edges"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e["node"].clone())
                    .collect::<Vec<_>>()
            }
        };
        let mut got: Vec<_> = old(json!({"t": "dst_old"})).await.iter().map(summary).collect();
        got.reverse();
        let dst = "destination";
        assert_eq!(
            got,
            vec![
                expect("alice", "destination.created", dst, "dst_old", &["displayName", "url", "severities", "alertTypes", "customHeaders", "enabled", "signingSecret"]),
                expect("alice", "destination.updated", dst, "dst_old", &["url"]),
                expect("bob", "destination.disabled", dst, "dst_old", &["enabled"]),
                expect("bob", "destination.updated", dst, "dst_old", &["displayName"]),
                expect("bob", "destination.enabled", dst, "dst_old", &["enabled"]),
                expect("alice", "destination.signing_secret_rotated", dst, "dst_old", &["signingSecret"]),
                expect("alice", "destination.deleted", dst, "dst_old", &[]),
            ]
        );
        let events = old(json!({"t": "dst_old"})).await;
        assert_eq!(events.last().unwrap()["at"], "2024-05-01T12:00:00.123456Z", "times are kept");

        // Old and new rows filter and order together.
        let created = old(json!({"a": "destination.created"})).await;
        let targets: Vec<_> = created.iter().map(|e| e["targetId"].as_str().unwrap()).collect();
        assert_eq!(targets, ["dst_other", "dst_old"]);
        let since = old(json!({"s": at(5).to_rfc3339()})).await;
        let actions: Vec<_> = since.iter().map(|e| e["action"].as_str().unwrap()).collect();
        assert_eq!(
            actions,
            ["token.created", "token.created", "destination.created", "destination.deleted"],
            "the test tokens, made after the migration, come first"
        );
        let raw = format!(
            "{:?}",
            app.store
                .db()
                .query_all_raw(sea_orm::Statement::from_string(
                    app.store.backend(),
                    "SELECT * FROM audit_events",
                ))
                .await
                .unwrap()
        );
        assert!(!raw.contains("url-secret"), "the old values are gone with `detail`");
        // `audit_log` is gone: the old table does not linger beside the new one.
        let old_table = app
            .store
            .db()
            .execute_unprepared("SELECT 1 FROM audit_log")
            .await;
        assert!(old_table.is_err());
    })
    .await;
}
