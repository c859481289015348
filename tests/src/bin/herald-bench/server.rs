//! The processes a scenario runs: a real `herald serve` and the benchmark receiver, each a child
//! process that is killed when its handle is dropped (a failing scenario leaves nothing behind).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Deserialize;
use serde_json::{Value, json};

/// The binaries the bench runs: `herald` and `herald-bench-receiver`, next to `herald-bench`.
#[derive(Debug, Clone)]
pub struct Bins {
    pub herald: PathBuf,
    pub receiver: PathBuf,
}

impl Bins {
    pub fn find() -> anyhow::Result<Bins> {
        let dir = herald_testkit::target_profile_dir();
        let herald = std::env::var_os("HERALD_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| dir.join("herald"));
        let receiver = dir.join("herald-bench-receiver");
        for (bin, build) in [
            (&herald, "cargo build --release -p herald-server"),
            (&receiver, "cargo build --release -p herald-testkit --bins"),
        ] {
            if !bin.exists() {
                bail!(
                    "{} is missing: build it with `{build}` (drop --release for a debug bench)",
                    bin.display()
                );
            }
        }
        Ok(Bins { herald, receiver })
    }
}

/// A child process, killed and reaped on drop.
pub struct Proc {
    child: Child,
}

impl Proc {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the receiver counted; latency figures only from `stats`, not `count`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ReceiverStats {
    pub ok: u64,
    pub failed: u64,
    pub last_at_us: Option<u64>,
    #[serde(default)]
    pub latency_count: usize,
    #[serde(default)]
    pub latency_p50_us: u64,
    #[serde(default)]
    pub latency_p99_us: u64,
    #[serde(default)]
    pub latency_max_us: u64,
}

pub struct Receiver {
    proc: Proc,
    pub base: String,
    http: reqwest::Client,
}

impl Receiver {
    /// Starts a receiver; paths that begin with `fail_prefix` answer 500.
    pub fn start(bins: &Bins, fail_prefix: Option<&str>) -> anyhow::Result<Receiver> {
        let mut cmd = Command::new(&bins.receiver);
        if let Some(p) = fail_prefix {
            cmd.args(["--fail-prefix", p]);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("start {}", bins.receiver.display()))?;
        let stdout = child.stdout.take().context("receiver stdout")?;
        let proc = Proc { child };
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        let addr = line
            .trim()
            .strip_prefix("listening ")
            .with_context(|| format!("the receiver said {line:?}, not `listening ADDR`"))?;
        Ok(Receiver {
            proc,
            base: format!("http://{addr}"),
            http: reqwest::Client::new(),
        })
    }

    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Counts only: cheap enough to poll while a drain is under way.
    pub async fn count(&self) -> anyhow::Result<ReceiverStats> {
        Ok(self
            .http
            .get(self.url("/__count"))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?)
    }

    /// Counts and the latency percentiles.
    pub async fn stats(&self) -> anyhow::Result<ReceiverStats> {
        Ok(self
            .http
            .get(self.url("/__stats"))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?)
    }

    pub async fn reset(&self) -> anyhow::Result<()> {
        self.http
            .post(self.url("/__reset"))
            .send()
            .await?
            .error_for_status()?;
        Ok(())
    }

    /// Polls until `ok` reaches `expected` or `timeout` passes; returns the last count.
    pub async fn wait_for(
        &self,
        expected: u64,
        timeout: Duration,
    ) -> anyhow::Result<ReceiverStats> {
        let deadline = Instant::now() + timeout;
        loop {
            let c = self.count().await?;
            if c.ok >= expected || Instant::now() >= deadline {
                return Ok(c);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A GraphQL endpoint with the bench's admin token, on a pooled keep-alive client.
#[derive(Clone)]
pub struct Gql {
    pub http: reqwest::Client,
    pub endpoint: String,
    pub auth: String,
}

impl Gql {
    pub fn new(base: &str, token: &str) -> Gql {
        Gql {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()
                .expect("HTTP client"),
            endpoint: format!("{base}/graphql"),
            auth: format!("Bearer {token}"),
        }
    }

    /// One call; the `data`, or the errors as an error.
    pub async fn call(&self, query: &str, variables: Value) -> anyhow::Result<Value> {
        let body: Value = self
            .http
            .post(&self.endpoint)
            .header(reqwest::header::AUTHORIZATION, &self.auth)
            .json(&json!({"query": query, "variables": variables}))
            .send()
            .await?
            .json()
            .await?;
        if let Some(errors) = body.get("errors").filter(|e| !e.is_null()) {
            bail!("GraphQL errors: {errors}");
        }
        Ok(body["data"].clone())
    }

    /// A prepared request body; Ok when Herald answered 200 with no `errors`. Leaner than `call`
    /// (no JSON tree of the answer), so the load generator spends its CPU sending.
    pub async fn post_raw(&self, body: Vec<u8>) -> Result<(), String> {
        let resp = self
            .http
            .post(&self.endpoint)
            .header(reqwest::header::AUTHORIZATION, &self.auth)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| format!("reading the answer failed: {e}"))?;
        if !status.is_success() || bytes.windows(9).any(|w| w == b"\"errors\":") {
            let text = String::from_utf8_lossy(&bytes);
            return Err(format!(
                "{status}: {}",
                text.chars().take(300).collect::<String>()
            ));
        }
        Ok(())
    }

    pub async fn create_destination(
        &self,
        name: &str,
        url: &str,
        input: Value,
    ) -> anyhow::Result<String> {
        let mut input = input;
        input["displayName"] = json!(name);
        input["url"] = json!(url);
        let data = self
            .call(
                "mutation($i: CreateDestinationInput!) { createDestination(input: $i) { destination { id } } }",
                json!({"i": input}),
            )
            .await?;
        data["createDestination"]["destination"]["id"]
            .as_str()
            .map(str::to_owned)
            .context("createDestination answered no id")
    }
}

/// The environment every `herald` command of the bench gets.
fn configure(cmd: &mut Command, database_url: &str, env: &[(&str, &str)]) {
    cmd.env("HERALD_DATABASE_URL", database_url)
        .env("RUST_LOG", "warn")
        .env("HERALD_ALLOW_NETWORKS", "127.0.0.0/8")
        .env(
            "HERALD_ENCRYPTION_KEY",
            herald_testkit::test_encryption_key(),
        )
        .envs(std::env::vars().filter(|(k, _)| k.starts_with("HERALD_") && k != "HERALD_BIN"))
        .envs(env.iter().copied())
        .stdin(Stdio::null());
}

/// A running `herald serve` on its own database, with an admin token.
pub struct Herald {
    proc: Proc,
    pub gql: Gql,
    token: String,
    log: PathBuf,
}

impl Herald {
    /// Creates the token, starts the server and waits for `/healthz`. `env` adds or overrides
    /// variables (a retry schedule); HERALD_* variables of the bench's own environment are
    /// passed on, so an operator can try a setting without a rebuild.
    pub async fn start(
        bins: &Bins,
        database_url: &str,
        dir: &Path,
        env: &[(&str, &str)],
    ) -> anyhow::Result<Herald> {
        let mut create = Command::new(&bins.herald);
        create.args(["token", "create", "--name", "bench", "--role", "admin"]);
        configure(&mut create, database_url, env);
        let out = create.output().context("run herald token create")?;
        if !out.status.success() {
            bail!(
                "herald token create failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let token = String::from_utf8(out.stdout)?
            .lines()
            .last()
            .unwrap_or_default()
            .trim()
            .to_owned();
        Self::serve(bins, database_url, dir, env, &token).await
    }

    /// Starts the server on a database that already has `token`.
    pub async fn serve(
        bins: &Bins,
        database_url: &str,
        dir: &Path,
        env: &[(&str, &str)],
        token: &str,
    ) -> anyhow::Result<Herald> {
        let port = herald_testkit::free_port();
        let log = dir.join(format!("herald-{port}.log"));
        let mut cmd = Command::new(&bins.herald);
        cmd.arg("serve");
        configure(&mut cmd, database_url, env);
        cmd.env("HERALD_LISTEN", format!("127.0.0.1:{port}"))
            .stdout(Stdio::null())
            // Warnings go to a file: a retry storm logs every failed attempt, and the bench's own
            // output must stay one table. The tail is shown when the server fails.
            .stderr(std::fs::File::create(&log)?);
        let proc = Proc {
            child: cmd.spawn().context("start herald serve")?,
        };
        let base = format!("http://127.0.0.1:{port}");
        let mut herald = Herald {
            proc,
            gql: Gql::new(&base, token),
            token: token.to_owned(),
            log,
        };
        let started = Instant::now();
        let probe = reqwest::Client::new();
        loop {
            if let Some(status) = herald.proc.child.try_wait()? {
                bail!(
                    "herald serve exited ({status}) before it answered:\n{}",
                    herald.log_tail()
                );
            }
            if probe
                .get(format!("{base}/healthz"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return Ok(herald);
            }
            if started.elapsed() > Duration::from_secs(60) {
                bail!(
                    "herald did not answer /healthz within 60 s:\n{}",
                    herald.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    /// The last lines of the server's log, for an error message.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// SIGTERM and wait for the exit, so SQLite checkpoints its WAL and PostgreSQL sessions end
    /// before the database is written behind the server's back.
    pub fn stop(mut self) -> anyhow::Result<()> {
        let pid = self.pid();
        Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .context("kill -TERM")?;
        let deadline = Instant::now() + Duration::from_secs(40);
        while Instant::now() < deadline {
            if self.proc.child.try_wait()?.is_some() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("herald did not stop within 40 s of SIGTERM")
    }
}
