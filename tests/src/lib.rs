//! What Herald's test suites share: a throwaway PostgreSQL cluster, the built binaries, free
//! loopback ports and a small GraphQL client. Kept free of Herald's own crates so the end-to-end
//! tests exercise only the binaries.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Context, bail};
use serde_json::{Value, json};

mod hostile;
mod node;
mod receiver;
mod tls;
pub use hostile::{HostileReceiver, Misbehaviour};
pub use node::{NodeReceiver, introspection_query};
pub use receiver::{Received, Receiver, Reply};
pub use tls::TestCa;

const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// `HERALD_ALLOW_NETWORKS` for a server whose test receivers listen on loopback.
pub const LOOPBACK_NETWORKS: &str = "127.0.0.0/8,::1/128";

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port")
}

/// The workspace's target directory, found from the running test binary
/// or benchmark binary, so it is right whatever `CARGO_TARGET_DIR` says.
pub fn target_profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().expect("the executable has a directory");
    // Test binaries live in target/<profile>/deps, other binaries in target/<profile>.
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.parent().expect("deps has a parent").to_path_buf()
    } else {
        dir.to_path_buf()
    }
}

/// The built `herald` binary (`HERALD_BIN` overrides).
pub fn herald_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("HERALD_BIN") {
        return p.into();
    }
    let bin = target_profile_dir().join("herald");
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build -p herald-server` (cargo test --workspace does)",
        bin.display()
    );
    bin
}

/// A PostgreSQL 15 cluster in a temporary directory, one per test process, started on first use.
/// Each test takes its own database from it. A watcher process stops the cluster and removes its
/// directory when the test process exits, however it exits (statics are never dropped, and a
/// panicking or killed test must not leave a postgres behind).
pub struct PgCluster {
    pub port: u16,
    next_db: AtomicU32,
    data: PathBuf,
    log: PathBuf,
    /// The server options it was started with, so `restart` brings it back the same way.
    opts: String,
    root: bool,
}

static CLUSTER: OnceLock<PgCluster> = OnceLock::new();

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Runs a PostgreSQL binary, as the `postgres` user when we are root (initdb and postgres refuse
/// to run as root).
fn pg_command(bin: &str, as_postgres: bool) -> Command {
    let path = format!("{PG_BIN}/{bin}");
    if as_postgres {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", &path]);
        c
    } else {
        Command::new(path)
    }
}

fn run(mut cmd: Command, what: &str) -> anyhow::Result<()> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

impl PgCluster {
    /// The process's cluster, started on first call. Panics with the reason when PostgreSQL cannot
    /// start: the PostgreSQL half of the suite is not optional.
    pub fn shared() -> &'static PgCluster {
        CLUSTER.get_or_init(|| PgCluster::start(false).expect("start a throwaway PostgreSQL 15"))
    }

    /// A cluster of its own. `durable` keeps fsync and synchronous commit on, as benchmark figures
    /// need; the test clusters turn them off.
    pub fn start(durable: bool) -> anyhow::Result<PgCluster> {
        let root = is_root();
        let dir = tempfile::Builder::new()
            .prefix("herald-pg-")
            .tempdir()?
            .keep();
        let data = dir.join("data");
        let sock = dir.join("sock");
        std::fs::create_dir_all(&sock)?;
        if root {
            run(
                {
                    let mut c = Command::new("chown");
                    c.args(["-R", "postgres:postgres"]).arg(&dir);
                    c
                },
                "chown",
            )?;
        }
        let mut initdb = pg_command("initdb", root);
        initdb.arg("-D").arg(&data).args([
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--locale=C.UTF-8",
        ]);
        run(initdb, "initdb")?;
        let port = free_port();
        // fsync off: test clusters hold throwaway data; benchmarks ask for a durable cluster.
        let speed = if durable {
            ""
        } else {
            " -c fsync=off -c synchronous_commit=off"
        };
        let opts = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections=300{speed}",
            sock.display()
        );
        let cluster = PgCluster {
            port,
            next_db: AtomicU32::new(0),
            data: data.clone(),
            log: dir.join("log"),
            opts,
            root,
        };
        cluster.restart()?;

        // The reaper: waits for this process to end, then stops the cluster and removes it.
        let stop = if root {
            format!("runuser -u postgres -- {PG_BIN}/pg_ctl")
        } else {
            format!("{PG_BIN}/pg_ctl")
        };
        let script = format!(
            "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; {stop} -D '{data}' -m immediate stop >/dev/null 2>&1; rm -rf '{dir}'",
            pid = std::process::id(),
            data = data.display(),
            dir = dir.display(),
        );
        Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("spawn the cluster reaper")?;
        Ok(cluster)
    }

    /// Stops the server (fast shutdown: sessions are ended, as when an operator stops it), keeping
    /// its data, as a database outage. Never on the shared cluster: other tests use it.
    pub fn stop(&self) -> anyhow::Result<()> {
        let mut ctl = pg_command("pg_ctl", self.root);
        ctl.arg("-D")
            .arg(&self.data)
            .args(["-m", "fast", "-w", "stop"]);
        run(ctl, "pg_ctl stop")
    }

    /// Starts the server on its port and data directory: the first start, or the end of an
    /// outage begun with `stop`.
    pub fn restart(&self) -> anyhow::Result<()> {
        let mut ctl = pg_command("pg_ctl", self.root);
        ctl.arg("-D")
            .arg(&self.data)
            .args(["-o", &self.opts, "-l"])
            .arg(&self.log)
            .args(["-w", "start"]);
        run(ctl, "pg_ctl start")
    }

    /// A new, empty database; returns its URL.
    pub fn create_database(&self) -> String {
        let n = self.next_db.fetch_add(1, Ordering::Relaxed);
        let name = format!("t{}_{n}", std::process::id());
        let mut psql = Command::new("psql");
        psql.args([
            "-h",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-U",
            "postgres",
        ])
        .args(["-v", "ON_ERROR_STOP=1", "-q", "-c"])
        .arg(format!("CREATE DATABASE {name}"));
        run(psql, "psql CREATE DATABASE").expect("create a test database");
        self.url(&name)
    }

    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Runs one SQL statement as the superuser.
    pub fn psql(&self, database: &str, sql: &str) -> anyhow::Result<String> {
        let out = Command::new("psql")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
            ])
            .args(["-d", database, "-v", "ON_ERROR_STOP=1", "-qAt", "-c", sql])
            .output()?;
        if !out.status.success() {
            bail!("psql: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }
}

/// A fixed encryption key (`HERALD_ENCRYPTION_KEY`) for test servers on PostgreSQL, where Herald
/// requires one; every test database is new, so one key for all of them is enough.
pub fn test_encryption_key() -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode([0x42u8; 32])
}

/// A new random encryption key, as `openssl rand -base64 32` makes one.
pub fn random_encryption_key() -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(rand::random::<[u8; 32]>())
}

/// The database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh, empty database on `backend`: a file in `dir` for SQLite, a new database in the shared
/// cluster for PostgreSQL.
pub fn fresh_database_url(backend: Backend, dir: &Path) -> String {
    match backend {
        Backend::Sqlite => format!("sqlite://{}", dir.join("herald.db").display()),
        Backend::Postgres => PgCluster::shared().create_database(),
    }
}

/// A GraphQL client that holds one bearer token.
#[derive(Clone)]
pub struct GraphqlClient {
    http: reqwest::Client,
    endpoint: String,
    token: Option<String>,
}

/// A GraphQL answer: the HTTP status and the JSON body.
#[derive(Debug, Clone)]
pub struct GqlResponse {
    pub status: u16,
    pub body: Value,
}

impl GqlResponse {
    /// `data`, after asserting there were no errors.
    pub fn data(&self) -> &Value {
        assert!(
            self.body.get("errors").is_none_or(Value::is_null),
            "unexpected GraphQL errors: {}",
            self.body
        );
        &self.body["data"]
    }

    /// The first error, after asserting there is one.
    pub fn error(&self) -> &Value {
        let errors = self.body["errors"]
            .as_array()
            .unwrap_or_else(|| panic!("expected GraphQL errors, got {}", self.body));
        &errors[0]
    }

    pub fn error_code(&self) -> &str {
        self.error()["extensions"]["code"].as_str().unwrap_or("")
    }
}

impl GraphqlClient {
    pub fn new(base_url: &str, token: Option<&str>) -> Self {
        GraphqlClient {
            http: reqwest::Client::new(),
            endpoint: format!("{base_url}/graphql"),
            token: token.map(str::to_owned),
        }
    }

    pub async fn query(&self, query: &str, variables: Value) -> GqlResponse {
        let mut req = self
            .http
            .post(&self.endpoint)
            .json(&json!({"query": query, "variables": variables}));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.expect("GraphQL request is answered");
        let status = resp.status().as_u16();
        let body = resp.json().await.expect("GraphQL answers JSON");
        GqlResponse { status, body }
    }
}

/// Declares each listed `async fn(Backend)` as two tests, `sqlite::name` and `postgres::name`, so
/// every store and API test runs on both databases.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Backend::Sqlite).await
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::Backend::Postgres).await
                }
            )+
        }
    };
}
