//! The GraphQL operations in `examples/graphql/`, run in order against a real `herald serve`, so the
//! README's examples cannot rot.

use std::path::Path;

use herald_testkit::{Backend, GraphqlClient, fresh_database_url};
use serde_json::Value;

use crate::process::{HeraldProcess, tokens_in};

fn example(name: &str) -> (String, Value) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/graphql");
    let query = std::fs::read_to_string(dir.join(format!("{name}.graphql")))
        .unwrap_or_else(|e| panic!("examples/graphql/{name}.graphql: {e}"));
    let vars = std::fs::read_to_string(dir.join(format!("{name}.json")))
        .map(|s| serde_json::from_str(&s).expect("variables are JSON"))
        .unwrap_or(Value::Null);
    (query, vars)
}

fn with_id(vars: Value, id: &str) -> Value {
    serde_json::from_str(&vars.to_string().replace("DESTINATION_ID", id)).unwrap()
}

async fn readme_examples_run(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_database_url(backend, dir.path());
    let server = HeraldProcess::start(&db, dir.path()).await;
    let token = tokens_in(&server.stdout()).remove(0);
    let client = GraphqlClient::new(&server.base_url, Some(&token));

    let (q, v) = example("viewer");
    assert_eq!(client.query(&q, v).await.data()["viewer"]["role"], "ADMIN");

    let (q, v) = example("create-destination");
    let created = client.query(&q, v).await.data()["createDestination"]["destination"].clone();
    assert_eq!(created["displayName"], "SOC pager");
    let id = created["id"].as_str().unwrap();

    let (q, v) = example("list-destinations");
    let list = client.query(&q, v).await.data()["destinations"].clone();
    assert_eq!(list["totalCount"], 1);

    let (q, v) = example("update-destination");
    let updated =
        client.query(&q, with_id(v, id)).await.data()["updateDestination"]["destination"].clone();
    assert_eq!(updated["enabled"], false);
    assert_eq!(
        updated["severities"],
        serde_json::json!(["MEDIUM", "HIGH", "CRITICAL"])
    );

    let (q, v) = example("delete-destination");
    let deleted =
        client.query(&q, with_id(v, id)).await.data()["deleteDestination"]["deletedId"].clone();
    assert_eq!(deleted, id);
}

herald_testkit::on_both_backends!(readme_examples_run);
