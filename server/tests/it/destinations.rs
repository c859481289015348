//! Destinations over GraphQL: create, read, list with paging, partial update, delete.

use herald_testkit::Backend;
use serde_json::{Value, json};

use crate::app::{DESTINATION_FIELDS, TestApp};

herald_testkit::on_both_backends!(
    create_fills_defaults_and_reads_back,
    list_pages_in_creation_order_with_total_count,
    list_filters_by_display_name_case_insensitively,
    update_changes_only_the_given_fields,
    identical_update_keeps_updated_at,
    delete_removes_and_unknown_ids_are_not_found,
    concurrent_creates_with_one_name_have_one_winner,
);

async fn create_fills_defaults_and_reads_back(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let created = app
        .create_destination(json!({
            "displayName": "SOC pager",
            "url": "https://hooks.example.com/herald",
            "severities": ["CRITICAL", "HIGH", "CRITICAL"],
            "customHeaders": [{"name": "X-Api-Key", "value": "k-123"}],
        }))
        .await;
    assert_eq!(created["displayName"], "SOC pager");
    assert_eq!(
        created["severities"],
        json!(["HIGH", "CRITICAL"]),
        "sorted, deduplicated"
    );
    assert_eq!(
        created["alertTypes"],
        json!([
            "RULE",
            "SCHEDULED_RULE",
            "POLICY",
            "RULE_ERROR",
            "SCHEDULED_RULE_ERROR",
            "SYSTEM_ERROR"
        ])
    );
    assert_eq!(created["enabled"], true);
    assert_eq!(
        created["customHeaders"],
        json!([{"name": "X-Api-Key", "value": "k-123"}])
    );
    let secret = created["signingSecret"].as_str().unwrap();
    assert!(
        secret.starts_with("whsec_") && secret.len() == 6 + 44,
        "{secret}"
    );
    let created_at = created["createdAt"].as_str().unwrap();
    assert!(created_at.ends_with('Z'), "{created_at}");
    assert_eq!(created["createdAt"], created["updatedAt"]);

    let all_defaults = app
        .create_destination(json!({"displayName": "Defaults", "url": "http://127.0.0.1:9/x"}))
        .await;
    assert_eq!(
        all_defaults["severities"],
        json!(["INFO", "LOW", "MEDIUM", "HIGH", "CRITICAL"])
    );
    assert_eq!(all_defaults["customHeaders"], json!([]));

    let only_by_override = app
        .create_destination(json!({"displayName": "Override only", "url": "https://x.example/", "severities": [], "enabled": false}))
        .await;
    assert_eq!(only_by_override["severities"], json!([]));
    assert_eq!(only_by_override["enabled"], false);

    let read = app
        .admin
        .query(
            &format!("query($id: ID!) {{ destination(id: $id) {{ {DESTINATION_FIELDS} }} }}"),
            json!({"id": created["id"]}),
        )
        .await;
    assert_eq!(read.data()["destination"], created);
}

async fn list_pages_in_creation_order_with_total_count(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut ids = Vec::new();
    for i in 0..7 {
        let d = app
            .create_destination(
                json!({"displayName": format!("dest {i}"), "url": "https://example.com/"}),
            )
            .await;
        ids.push(d["id"].as_str().unwrap().to_owned());
    }
    let page = |after: Value| {
        let app = &app;
        async move {
            app.admin
                .query(
                    "query($after: String) { destinations(first: 3, after: $after) {
                        totalCount edges { cursor node { id } } pageInfo { hasNextPage endCursor } } }",
                    json!({"after": after}),
                )
                .await
                .data()["destinations"]
                .clone()
        }
    };
    let mut seen = Vec::new();
    let mut after = Value::Null;
    let mut pages = 0;
    loop {
        let p = page(after).await;
        pages += 1;
        assert_eq!(p["totalCount"], 7);
        for e in p["edges"].as_array().unwrap() {
            assert_eq!(e["cursor"], e["node"]["id"]);
            seen.push(e["node"]["id"].as_str().unwrap().to_owned());
        }
        if p["pageInfo"]["hasNextPage"] == false {
            break;
        }
        after = p["pageInfo"]["endCursor"].clone();
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ids);

    let default_page = app
        .admin
        .query("{ destinations { edges { node { id } } } }", json!({}))
        .await;
    assert_eq!(
        default_page.data()["destinations"]["edges"]
            .as_array()
            .unwrap()
            .len(),
        7
    );

    for bad in [101, -1] {
        let resp = app
            .admin
            .query(
                "query($n: Int) { destinations(first: $n) { totalCount } }",
                json!({"n": bad}),
            )
            .await;
        assert_eq!(resp.error_code(), "BAD_USER_INPUT");
        assert_eq!(resp.error()["extensions"]["field"], "first");
    }
}

async fn list_filters_by_display_name_case_insensitively(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let wanted = app
        .create_destination(json!({"displayName": "Slack #SOC", "url": "https://example.com/a"}))
        .await;
    app.create_destination(json!({"displayName": "Slack #SOC 2", "url": "https://example.com/b"}))
        .await;
    let resp = app
        .admin
        .query(
            r#"{ destinations(displayName: "slack #soc") { totalCount edges { node { id } } } }"#,
            json!({}),
        )
        .await;
    let list = &resp.data()["destinations"];
    assert_eq!(list["totalCount"], 1);
    assert_eq!(list["edges"][0]["node"]["id"], wanted["id"]);
}

async fn update_changes_only_the_given_fields(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let created = app
        .create_destination(json!({
            "displayName": "Before",
            "url": "https://example.com/before",
            "severities": ["HIGH"],
            "customHeaders": [{"name": "X-One", "value": "1"}, {"name": "X-Two", "value": "2"}],
        }))
        .await;
    let update = |input: Value| {
        let app = &app;
        async move {
            app.admin
                .query(
                    &format!("mutation($input: UpdateDestinationInput!) {{ updateDestination(input: $input) {{ destination {{ {DESTINATION_FIELDS} }} }} }}"),
                    json!({"input": input}),
                )
                .await
        }
    };
    let resp = update(json!({"id": created["id"], "url": "https://example.com/after"})).await;
    let updated = resp.data()["updateDestination"]["destination"].clone();
    assert_eq!(updated["url"], "https://example.com/after");
    for unchanged in [
        "id",
        "displayName",
        "severities",
        "alertTypes",
        "customHeaders",
        "enabled",
        "signingSecret",
        "createdAt",
    ] {
        assert_eq!(
            updated[unchanged], created[unchanged],
            "{unchanged} must not change"
        );
    }
    assert_ne!(updated["updatedAt"], created["updatedAt"]);

    let resp = update(json!({
        "id": created["id"],
        "customHeaders": [{"name": "X-Three", "value": "3"}],
        "severities": ["LOW", "INFO"],
        "enabled": false,
    }))
    .await;
    let updated = &resp.data()["updateDestination"]["destination"];
    assert_eq!(
        updated["customHeaders"],
        json!([{"name": "X-Three", "value": "3"}]),
        "the list is replaced"
    );
    assert_eq!(updated["severities"], json!(["INFO", "LOW"]));
    assert_eq!(updated["enabled"], false);
    assert_eq!(updated["displayName"], "Before");

    let resp = update(json!({"id": created["id"], "customHeaders": []})).await;
    assert_eq!(
        resp.data()["updateDestination"]["destination"]["customHeaders"],
        json!([])
    );

    let resp = update(json!({"id": "dst_missing", "url": "https://example.com/"})).await;
    assert_eq!(resp.error_code(), "NOT_FOUND");
}

async fn identical_update_keeps_updated_at(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let created = app
        .create_destination(json!({"displayName": "Same", "url": "https://example.com/"}))
        .await;
    let resp = app
        .admin
        .query(
            "mutation($id: ID!) { updateDestination(input: {id: $id, displayName: \"Same\", url: \"https://example.com/\"}) { destination { updatedAt } } }",
            json!({"id": created["id"]}),
        )
        .await;
    assert_eq!(
        resp.data()["updateDestination"]["destination"]["updatedAt"],
        created["updatedAt"]
    );
}

async fn delete_removes_and_unknown_ids_are_not_found(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let created = app
        .create_destination(json!({"displayName": "Doomed", "url": "https://example.com/"}))
        .await;
    let delete = "mutation($id: ID!) { deleteDestination(input: {id: $id}) { deletedId } }";
    let resp = app.admin.query(delete, json!({"id": created["id"]})).await;
    assert_eq!(resp.data()["deleteDestination"]["deletedId"], created["id"]);
    let read = app
        .admin
        .query(
            "query($id: ID!) { destination(id: $id) { id } }",
            json!({"id": created["id"]}),
        )
        .await;
    assert_eq!(read.data()["destination"], Value::Null);
    assert_eq!(app.destination_count().await, 0);

    let again = app.admin.query(delete, json!({"id": created["id"]})).await;
    assert_eq!(again.error_code(), "NOT_FOUND");
    // The name is free again.
    app.create_destination(json!({"displayName": "doomed", "url": "https://example.com/"}))
        .await;
}

async fn concurrent_creates_with_one_name_have_one_winner(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let attempts = (0..8).map(|i| {
        app.try_create_destination(json!({
            "displayName": if i % 2 == 0 { "Race" } else { "RACE" },
            "url": format!("https://example.com/{i}"),
        }))
    });
    let results = futures::future::join_all(attempts).await;
    let winners = results
        .iter()
        .filter(|r| r.body.get("errors").is_none())
        .count();
    assert_eq!(winners, 1, "{results:#?}");
    for loser in results.iter().filter(|r| r.body.get("errors").is_some()) {
        assert_eq!(loser.error_code(), "BAD_USER_INPUT");
        assert_eq!(loser.error()["extensions"]["field"], "displayName");
    }
    assert_eq!(app.destination_count().await, 1);
}
