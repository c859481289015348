//! The `herald` command: first start, token management, migrations, and errors at the command line.

use herald_testkit::{Backend, GraphqlClient, fresh_database_url};
use serde_json::json;

use crate::process::{HeraldProcess, herald, tokens_in};

async fn first_start_prints_an_admin_token_once(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_database_url(backend, dir.path());
    let first = HeraldProcess::start(&db, dir.path()).await;
    let out = first.stdout();
    let tokens = tokens_in(&out);
    assert!(!tokens.is_empty(), "first start printed no token: {out}");
    assert!(tokens.iter().all(|t| *t == tokens[0]));
    assert!(
        out.contains(&format!("{}/graphql", first.base_url)),
        "{out}"
    );
    assert!(
        !first.stderr().contains(&tokens[0]),
        "the token must not reach the log"
    );
    let admin = GraphqlClient::new(&first.base_url, Some(&tokens[0]));
    let me = admin
        .query("{ viewer { tokenName role } }", json!({}))
        .await;
    assert_eq!(me.data()["viewer"]["role"], "ADMIN");
    first.stop();

    let second = HeraldProcess::start(&db, dir.path()).await;
    assert!(
        tokens_in(&second.stdout()).is_empty(),
        "the second start printed a token: {}",
        second.stdout()
    );
    let admin = GraphqlClient::new(&second.base_url, Some(&tokens[0]));
    let me = admin.query("{ viewer { role } }", json!({})).await;
    assert_eq!(me.status, 200, "the first token still works");
}

async fn token_commands_work_beside_a_running_server(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_database_url(backend, dir.path());
    let server = HeraldProcess::start(&db, dir.path()).await;

    let out = herald(
        &db,
        dir.path(),
        &["token", "create", "--name", "ci", "--role", "viewer"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let token = stdout.lines().last().unwrap().trim().to_owned();
    assert!(
        token.starts_with("hrld_"),
        "last line is the token alone: {stdout:?}"
    );

    let viewer = GraphqlClient::new(&server.base_url, Some(&token));
    let me = viewer
        .query("{ viewer { tokenName role } }", json!({}))
        .await;
    assert_eq!(
        me.data()["viewer"],
        json!({"tokenName": "ci", "role": "VIEWER"})
    );

    let list = herald(&db, dir.path(), &["token", "list"]);
    assert!(list.status.success());
    let listing = String::from_utf8(list.stdout).unwrap();
    assert!(listing.contains("ci") && listing.contains("VIEWER") && listing.contains("admin"));
    assert!(
        tokens_in(&listing).is_empty(),
        "list shows no token: {listing}"
    );

    let dup = herald(
        &db,
        dir.path(),
        &["token", "create", "--name", "ci", "--role", "admin"],
    );
    assert!(!dup.status.success());
    assert!(String::from_utf8_lossy(&dup.stderr).contains("already exists"));

    let revoke = herald(&db, dir.path(), &["token", "revoke", "ci"]);
    assert!(revoke.status.success());
    let me = viewer.query("{ viewer { tokenName } }", json!({})).await;
    assert_eq!(me.status, 401);
    let again = herald(&db, dir.path(), &["token", "revoke", "ci"]);
    assert!(!again.status.success());

    // The audit trail has each token change by `cli`, the failed commands not at all, and no token.
    let admin_token = tokens_in(&server.stdout()).remove(0);
    let admin = GraphqlClient::new(&server.base_url, Some(&admin_token));
    let trail = admin
        .query(
            "{ auditEvents { totalCount edges { node { actor action targetType targetId changedFields } } } }",
            json!({}),
        )
        .await;
    let events: Vec<_> = trail.data()["auditEvents"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"].clone())
        .collect();
    let actions: Vec<_> = events
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["token.revoked", "token.created", "token.created"],
        "newest first: revoke ci, create ci, the first start's admin token"
    );
    assert!(
        events
            .iter()
            .all(|e| e["actor"] == "cli" && e["targetType"] == "api_token")
    );
    assert_eq!(events[0]["targetId"], events[1]["targetId"], "ci's own id");
    assert_ne!(events[1]["targetId"], events[2]["targetId"]);
    assert_eq!(events[1]["changedFields"], json!(["name", "role"]));
    let body = trail.body.to_string();
    assert!(!body.contains(&token) && !body.contains(&admin_token));
}

async fn replicas_migrating_together_both_succeed(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_database_url(backend, dir.path());
    let runs: Vec<_> = (0..4)
        .map(|_| {
            let db = db.clone();
            let path = dir.path().to_owned();
            std::thread::spawn(move || herald(&db, &path, &["migrate"]))
        })
        .collect();
    for r in runs {
        let out = r.join().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let again = herald(&db, dir.path(), &["migrate"]);
    assert!(again.status.success());
}

herald_testkit::on_both_backends!(
    first_start_prints_an_admin_token_once,
    token_commands_work_beside_a_running_server,
    replicas_migrating_together_both_succeed,
);

/// Asserts a failed command said one clear line on stderr and exited non-zero.
fn assert_one_line_error(out: &std::process::Output, needle: &str) {
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<_> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(
        lines.first().is_some_and(|l| l.contains(needle)),
        "expected {needle:?} in {stderr:?}"
    );
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );
}

#[test]
fn command_line_errors_are_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = format!("sqlite://{}", dir.path().join("h.db").display());

    let bad_listen = herald(
        &sqlite,
        dir.path(),
        &["serve", "--listen", "not-an-address"],
    );
    assert_one_line_error(&bad_listen, "not-an-address");

    let unreachable = herald(
        "postgres://herald@127.0.0.1:1/herald",
        dir.path(),
        &["migrate"],
    );
    assert_one_line_error(&unreachable, "cannot connect to the database");

    let unsupported = herald("mysql://localhost/x", dir.path(), &["migrate"]);
    assert_one_line_error(&unsupported, "HERALD_DATABASE_URL");

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let in_use = herald(&sqlite, dir.path(), &["serve", "--listen", &addr]);
    assert_one_line_error(&in_use, "cannot listen on");
}

#[test]
fn print_schema_matches_the_committed_contract() {
    let out = std::process::Command::new(herald_testkit::herald_bin())
        .arg("print-schema")
        .output()
        .unwrap();
    assert!(out.status.success());
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../schema.graphql")).unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), committed);
}
