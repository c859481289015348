//! Secrets encrypted at rest, seen from outside: the database files and tables hold no signing
//! secret or header value, old plain-text rows are encrypted on the first start with a key, a wrong
//! or missing key stops the start with a clear error, and `herald keys rotate` moves every secret
//! to a new key while a server keeps delivering.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use herald_testkit::{
    Backend, GraphqlClient, Received, Receiver, Reply, fresh_database_url, random_encryption_key,
    test_encryption_key,
};
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::process::{HeraldProcess, herald, herald_with, sql, tokens_in};

/// Everything stored: on SQLite the bytes of the database file, its WAL and shared memory; on
/// PostgreSQL every row of every table that could hold a secret, as text.
fn everything_stored(database_url: &str) -> Vec<u8> {
    if let Some(path) = database_url.strip_prefix("sqlite://") {
        let mut all = Vec::new();
        let mut files = 0;
        for suffix in ["", "-wal", "-shm"] {
            if let Ok(bytes) = std::fs::read(format!("{path}{suffix}")) {
                all.extend(bytes);
                files += 1;
            }
        }
        // A cleanly closed database has folded its WAL back in and removed it; an open one has
        // one (the test checks that while the server runs).
        assert!(files >= 1, "the database was read");
        all
    } else {
        let mut all = String::new();
        for table in [
            "destinations",
            "server_state",
            "audit_events",
            "deliveries",
            "delivery_attempts",
        ] {
            all.push_str(&sql(
                database_url,
                &format!("SELECT t::text FROM {table} t"),
            ));
        }
        all.into_bytes()
    }
}

fn assert_not_stored(database_url: &str, secrets: &[&str]) {
    let stored = everything_stored(database_url);
    for secret in secrets {
        assert!(!secret.is_empty());
        assert!(
            !stored.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "a secret is stored in the clear"
        );
    }
}

/// The parts of a signing secret worth looking for: the whole and its key bytes' base64.
fn secret_forms(secret: &str) -> [&str; 2] {
    [secret, secret.strip_prefix("whsec_").unwrap()]
}

fn sign(secret: &str, received: &Received) -> String {
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").unwrap())
        .unwrap();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(received.header("webhook-id").unwrap().as_bytes());
    mac.update(b".");
    mac.update(received.header("webhook-timestamp").unwrap().as_bytes());
    mac.update(b".");
    mac.update(&received.body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// Asserts the delivery is signed by every secret in `secrets`.
fn assert_signed_by(received: &Received, secrets: &[&str]) {
    let header = received.header("webhook-signature").unwrap();
    let signatures: Vec<&str> = header.split(' ').collect();
    for secret in secrets {
        assert!(
            signatures.contains(&sign(secret, received).as_str()),
            "the delivery is not signed with the destination's secret"
        );
    }
}

const DESTINATION: &str = "id signingSecret customHeaders { name value }";

async fn create(client: &GraphqlClient, input: Value) -> Value {
    client
        .query(
            &format!("mutation($i: CreateDestinationInput!) {{ createDestination(input: $i) {{ destination {{ {DESTINATION} }} }} }}"),
            json!({"i": input}),
        )
        .await
        .data()["createDestination"]["destination"]
        .clone()
}

async fn read(client: &GraphqlClient, id: &Value) -> Value {
    client
        .query(
            &format!("query($id: ID!) {{ destination(id: $id) {{ {DESTINATION} }} }}"),
            json!({"id": id}),
        )
        .await
        .data()["destination"]
        .clone()
}

async fn send_alert(client: &GraphqlClient) {
    client
        .query(
            "mutation { sendAlert(input: {detectionId: \"d\", title: \"t\", severity: HIGH}) { alert { id } } }",
            json!({}),
        )
        .await
        .data();
}

/// The request headers of the first recorded attempt; waits (bounded) until there is one.
async fn recorded_request_headers(client: &GraphqlClient) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let resp = client
            .query(
                "{ deliveries(first: 1) { edges { node { attempts { requestHeaders } } } } }",
                json!({}),
            )
            .await;
        let headers =
            &resp.data()["deliveries"]["edges"][0]["node"]["attempts"][0]["requestHeaders"];
        if !headers.is_null() {
            return headers.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no attempt was recorded"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn admin(server: &HeraldProcess) -> GraphqlClient {
    let token = tokens_in(&server.stdout()).remove(0);
    GraphqlClient::new(&server.base_url, Some(&token))
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts `herald serve` refused to start with one clear line naming `needle`.
fn assert_start_refused(out: &std::process::Output, needle: &str) {
    let stderr = stderr_of(out);
    assert!(!out.status.success(), "herald started: {stderr}");
    assert!(stderr.contains(needle), "expected {needle:?} in {stderr:?}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

async fn no_secret_is_stored_in_the_clear(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_database_url(backend, dir.path());
    let server = HeraldProcess::start(&db, dir.path()).await;
    let client = admin(&server);
    let receiver = Receiver::start().await;
    receiver.always(Reply::ok());
    let header = "hdr-value-5d1c0a9e";
    let created = create(
        &client,
        json!({"displayName": "Pager", "url": receiver.url,
               "customHeaders": [{"name": "X-Api-Key", "value": header}]}),
    )
    .await;
    let first_secret = created["signingSecret"].as_str().unwrap().to_owned();
    client
        .query(
            "mutation($id: ID!) { rotateSigningSecret(input: {id: $id, gracePeriodSeconds: 3600}) { destination { id } } }",
            json!({"id": created["id"]}),
        )
        .await
        .data();
    let current = read(&client, &created["id"]).await;
    let secret = current["signingSecret"].as_str().unwrap().to_owned();
    assert_ne!(secret, first_secret);
    assert_eq!(current["customHeaders"][0]["value"], header);

    send_alert(&client).await;
    let got = receiver.wait_for(1, Duration::from_secs(20)).await;
    assert_eq!(got[0].header("x-api-key"), Some(header));
    assert_signed_by(&got[0], &[&secret, &first_secret]);
    // The attempt keeps its request headers, masked: wait until it is recorded, so the scan below
    // covers that row too.
    let shown = recorded_request_headers(&client).await;
    assert_eq!(shown["x-api-key"], "********");

    let sealed = sql(
        &db,
        "SELECT signing_secret || ' ' || previous_signing_secret || ' ' || custom_headers FROM destinations",
    );
    assert_eq!(sealed.matches("hrld:v1:").count(), 3, "{sealed}");
    let mut secrets = vec![header];
    secrets.extend(secret_forms(&secret));
    secrets.extend(secret_forms(&first_secret));
    if let Some(path) = db.strip_prefix("sqlite://") {
        assert!(
            std::path::Path::new(&format!("{path}-wal")).exists(),
            "the WAL is read while the server runs"
        );
    }
    assert_not_stored(&db, &secrets);
    server.stop();
    assert_not_stored(&db, &secrets);
}

async fn plain_rows_from_before_are_encrypted_on_the_first_start(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_database_url(backend, dir.path());
    let migrated = herald(&db, dir.path(), &["migrate"]);
    assert!(migrated.status.success(), "{}", stderr_of(&migrated));
    let receiver = Receiver::start().await;
    receiver.always(Reply::ok());
    let secret = format!("whsec_{}", STANDARD.encode([7u8; 32]));
    let previous = format!("whsec_{}", STANDARD.encode([9u8; 32]));
    let header = "plain-header-value-31c8";
    // The row as the code before encryption at rest wrote it: secrets and headers as they are.
    sql(
        &db,
        &format!(
            "INSERT INTO destinations (id, display_name, display_name_key, url, severity_mask, \
             alert_type_mask, custom_headers, enabled, signing_secret, previous_signing_secret, \
             previous_secret_expires_at, created_at, updated_at) VALUES ('dst_old', 'Old', 'old', \
             '{url}', 31, 255, '[{{\"name\":\"X-Api-Key\",\"value\":\"{header}\"}}]', true, \
             '{secret}', '{previous}', '2999-01-01 00:00:00+00:00', '2024-01-01 00:00:00+00:00', \
             '2024-01-01 00:00:00+00:00')",
            url = receiver.url
        ),
    );

    let server = HeraldProcess::start(&db, dir.path()).await;
    assert!(
        server
            .stderr()
            .contains("encrypted the secrets stored before encryption at rest"),
        "{}",
        server.stderr()
    );
    let client = admin(&server);
    let read_back = read(&client, &json!("dst_old")).await;
    assert_eq!(read_back["signingSecret"], secret.as_str());
    assert_eq!(
        read_back["customHeaders"],
        json!([{"name": "X-Api-Key", "value": header}])
    );
    send_alert(&client).await;
    let got = receiver.wait_for(1, Duration::from_secs(20)).await;
    assert_eq!(got[0].header("x-api-key"), Some(header));
    assert_signed_by(&got[0], &[&secret, &previous]);
    let mut secrets = vec![header];
    secrets.extend(secret_forms(&secret));
    secrets.extend(secret_forms(&previous));
    assert_not_stored(&db, &secrets);
    server.stop();

    let again = HeraldProcess::start(&db, dir.path()).await;
    assert!(!again.stderr().contains("encrypted the secrets stored"));
    let client = GraphqlClient::new(
        &again.base_url,
        Some(&tokens_in(&server_stdout_first(dir.path()))[0]),
    );
    assert_eq!(
        read(&client, &json!("dst_old")).await["signingSecret"],
        secret.as_str()
    );
    again.stop();
}

/// The admin token printed by the first `serve` in `dir`.
fn server_stdout_first(dir: &Path) -> String {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "out"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .find(|s| !tokens_in(s).is_empty())
        .unwrap()
}

async fn a_wrong_or_missing_key_is_a_clear_start_up_error(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_database_url(backend, dir.path());
    let right = random_encryption_key();
    let wrong = random_encryption_key();
    let server =
        HeraldProcess::start_with(&db, dir.path(), &[("HERALD_ENCRYPTION_KEY", &right)]).await;
    let client = admin(&server);
    create(
        &client,
        json!({"displayName": "A", "url": "https://example.com/a"}),
    )
    .await;
    server.stop();

    let out = herald_with(
        &db,
        dir.path(),
        &[("HERALD_ENCRYPTION_KEY", &wrong)],
        &["serve", "--listen", "127.0.0.1:0"],
    );
    assert_start_refused(
        &out,
        "HERALD_ENCRYPTION_KEY does not open this database's secrets",
    );
    assert!(!stderr_of(&out).contains(&wrong) && !stderr_of(&out).contains(&right));

    let bad = "bm90LWEta2V5LWF0LWFsbA==";
    let out = herald_with(
        &db,
        dir.path(),
        &[("HERALD_ENCRYPTION_KEY", bad)],
        &["serve", "--listen", "127.0.0.1:0"],
    );
    assert_start_refused(
        &out,
        "HERALD_ENCRYPTION_KEY must be the standard base64 of 32 bytes",
    );
    assert!(!stderr_of(&out).contains(bad));

    if backend == Backend::Postgres {
        let out = herald_with(
            &db,
            dir.path(),
            &[("HERALD_ENCRYPTION_KEY", "")],
            &["serve", "--listen", "127.0.0.1:0"],
        );
        assert_start_refused(&out, "HERALD_ENCRYPTION_KEY is not set");
        // Commands that never read a secret need no key.
        let tokens = herald_with(
            &db,
            dir.path(),
            &[("HERALD_ENCRYPTION_KEY", "")],
            &["token", "list"],
        );
        assert!(tokens.status.success(), "{}", stderr_of(&tokens));
    } else {
        // On SQLite without the variable Herald looks for the key file, and must not make a new
        // key for a database already encrypted under another.
        let out = herald_with(&db, dir.path(), &[], &["serve", "--listen", "127.0.0.1:0"]);
        assert_start_refused(&out, "there is no key file at");
        assert!(!dir.path().join("herald.db.key").exists());
    }
    let server =
        HeraldProcess::start_with(&db, dir.path(), &[("HERALD_ENCRYPTION_KEY", &right)]).await;
    server.stop();
}

async fn a_ciphertext_moved_to_another_row_does_not_open(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_database_url(backend, dir.path());
    let server = HeraldProcess::start(&db, dir.path()).await;
    let client = admin(&server);
    let a = create(
        &client,
        json!({"displayName": "A", "url": "https://example.com/a"}),
    )
    .await;
    let b = create(
        &client,
        json!({"displayName": "B", "url": "https://example.com/b"}),
    )
    .await;
    sql(
        &db,
        &format!(
            "UPDATE destinations SET signing_secret = (SELECT signing_secret FROM destinations WHERE id = '{}') WHERE id = '{}'",
            a["id"].as_str().unwrap(),
            b["id"].as_str().unwrap()
        ),
    );
    let resp = client
        .query(
            "query($id: ID!) { destination(id: $id) { signingSecret } }",
            json!({"id": b["id"]}),
        )
        .await;
    assert_eq!(resp.error_code(), "INTERNAL_SERVER_ERROR", "{}", resp.body);
    assert!(
        !resp.body.to_string().contains("whsec_"),
        "no secret, real or garbage, is answered: {}",
        resp.body
    );
    assert_eq!(
        read(&client, &a["id"]).await["signingSecret"],
        a["signingSecret"]
    );
    let log = server.stderr();
    assert!(
        log.contains(&format!(
            "destinations.signing_secret of {} does not open",
            b["id"].as_str().unwrap()
        )),
        "{log}"
    );
    server.stop();
}

async fn rotation_moves_every_secret_to_a_new_key_beside_a_running_server(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_database_url(backend, dir.path());
    let key_file = dir.path().join("herald.db.key");
    // On PostgreSQL the operator first gives every replica the next key beside the current one.
    let next_key = random_encryption_key();
    let old_key = test_encryption_key();
    let env: Vec<(&str, &str)> = match backend {
        Backend::Sqlite => vec![],
        Backend::Postgres => vec![("HERALD_NEW_ENCRYPTION_KEY", &next_key)],
    };
    let server = HeraldProcess::start_with(&db, dir.path(), &env).await;
    let old_key = match backend {
        Backend::Sqlite => key_lines(&key_file).remove(0),
        Backend::Postgres => old_key,
    };
    let client = admin(&server);
    let receiver = Receiver::start().await;
    receiver.always(Reply::ok());
    let target = create(
        &client,
        json!({"displayName": "Target", "url": receiver.url, "severities": ["HIGH"],
               "customHeaders": [{"name": "X-Api-Key", "value": "before-rotation"}]}),
    )
    .await;
    let secret = target["signingSecret"].as_str().unwrap().to_owned();
    // More destinations than one rotation batch holds.
    let mut others = Vec::new();
    for i in 0..120 {
        let d = create(
            &client,
            json!({"displayName": format!("Other {i}"), "url": "https://example.com/x",
                   "enabled": false, "customHeaders": [{"name": "X-N", "value": format!("v{i}")}]}),
        )
        .await;
        others.push(d);
    }

    // Alerts and reads go on during the rotation; every one must succeed.
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = {
        let (client, stop, id, secret) = (
            client.clone(),
            stop.clone(),
            target["id"].clone(),
            secret.clone(),
        );
        tokio::spawn(async move {
            let mut sent = 0;
            while !stop.load(Ordering::Relaxed) {
                send_alert(&client).await;
                sent += 1;
                assert_eq!(read(&client, &id).await["signingSecret"], secret.as_str());
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            sent
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (db2, path) = (db.clone(), dir.path().to_owned());
    let rotate_env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let rotated = tokio::task::spawn_blocking(move || {
        let env: Vec<(&str, &str)> = rotate_env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        herald_with(&db2, &path, &env, &["keys", "rotate"])
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    let sent = traffic
        .await
        .expect("every request during the rotation succeeded");
    assert!(rotated.status.success(), "{}", stderr_of(&rotated));
    let printed = String::from_utf8(rotated.stdout).unwrap();
    assert!(printed.contains("of 121 destinations"), "{printed}");
    let new_id = printed
        .split("key id ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap()
        .to_owned();
    for key in [&old_key, &next_key] {
        assert!(
            !printed.contains(key.as_str())
                && !stderr_of_str(&rotated.stderr).contains(key.as_str())
        );
    }

    // Every delivery, during and after, is signed with the unchanged secret and has its header.
    let got = receiver.wait_for(sent, Duration::from_secs(30)).await;
    for r in &got {
        assert_signed_by(r, &[&secret]);
        assert_eq!(r.header("x-api-key"), Some("before-rotation"));
    }
    // Writes after the rotation seal under the new key (on SQLite the server found it in the key
    // file), and read back.
    client
        .query(
            "mutation($id: ID!) { updateDestination(input: {id: $id, customHeaders: [{name: \"X-Api-Key\", value: \"after-rotation\"}]}) { destination { id } } }",
            json!({"id": target["id"]}),
        )
        .await
        .data();
    send_alert(&client).await;
    let got = receiver.wait_for(sent + 1, Duration::from_secs(20)).await;
    assert_eq!(got[sent].header("x-api-key"), Some("after-rotation"));
    assert_signed_by(&got[sent], &[&secret]);

    let under_new = format!("hrld:v1:{new_id}:");
    let values = sql(
        &db,
        "SELECT signing_secret FROM destinations UNION ALL SELECT custom_headers FROM destinations \
         UNION ALL SELECT value FROM server_state WHERE key = 'encryption_canary'",
    );
    assert_eq!(values.lines().count(), 2 * 121 + 1);
    assert!(
        values.lines().all(|v| v.starts_with(&under_new)),
        "every value is under the new key"
    );
    // The audit trail has the rotation, by the command line, naming the new key id.
    let audit = client
        .query(
            "{ auditEvents(action: \"encryption_key.rotated\") { nodes { actor targetType targetId changedFields } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        audit.data()["auditEvents"]["nodes"],
        json!([{"actor": "cli", "targetType": "encryption_key", "targetId": new_id,
                "changedFields": ["signingSecret", "previousSigningSecret", "customHeaders"]}])
    );
    server.stop();

    // The old key opens nothing any more; the new one opens everything.
    let out = herald_with(
        &db,
        dir.path(),
        &[
            ("HERALD_ENCRYPTION_KEY", &old_key),
            ("HERALD_NEW_ENCRYPTION_KEY", ""),
        ],
        &["serve", "--listen", "127.0.0.1:0"],
    );
    assert_start_refused(&out, "does not open this database's secrets");
    let new_env: Vec<(&str, &str)> = match backend {
        Backend::Sqlite => {
            let lines = key_lines(&key_file);
            assert_eq!(lines.len(), 1, "the key file holds the new key alone");
            assert_ne!(lines[0], old_key);
            vec![]
        }
        Backend::Postgres => vec![
            ("HERALD_ENCRYPTION_KEY", &next_key),
            ("HERALD_NEW_ENCRYPTION_KEY", ""),
        ],
    };
    let after = HeraldProcess::start_with(&db, dir.path(), &new_env).await;
    let client = GraphqlClient::new(
        &after.base_url,
        client_token(&server_stdout_first(dir.path())),
    );
    assert_eq!(
        read(&client, &target["id"]).await["signingSecret"],
        secret.as_str()
    );
    for d in others.iter().step_by(17) {
        assert_eq!(
            read(&client, &d["id"]).await["customHeaders"],
            d["customHeaders"]
        );
    }
    after.stop();
}

fn client_token(stdout: &str) -> Option<&str> {
    stdout
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .find(|w| w.starts_with("hrld_"))
}

fn stderr_of_str(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The keys in a key file, comments left out.
fn key_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

herald_testkit::on_both_backends!(
    no_secret_is_stored_in_the_clear,
    plain_rows_from_before_are_encrypted_on_the_first_start,
    a_wrong_or_missing_key_is_a_clear_start_up_error,
    a_ciphertext_moved_to_another_row_does_not_open,
    rotation_moves_every_secret_to_a_new_key_beside_a_running_server,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_file_is_created_owner_only_and_logged_without_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let db = fresh_database_url(Backend::Sqlite, dir.path());
    let server = HeraldProcess::start(&db, dir.path()).await;
    let key_file = dir.path().join("herald.db.key");
    let keys = key_lines(&key_file);
    assert_eq!(keys.len(), 1);
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "the key file is readable by its owner only"
        );
    }
    let log = server.stderr();
    assert!(log.contains("created the encryption key file"), "{log}");
    assert!(log.contains(&key_file.display().to_string()), "{log}");
    assert!(!log.contains(&keys[0]) && !server.stdout().contains(&keys[0]));
    server.stop();

    let again = HeraldProcess::start(&db, dir.path()).await;
    assert!(!again.stderr().contains("created the encryption key file"));
    assert_eq!(
        key_lines(&key_file),
        keys,
        "the same key is used from then on"
    );
    again.stop();
}
