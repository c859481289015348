//! A `herald serve` child process on a free loopback port.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use herald_testkit::{free_port, herald_bin, test_encryption_key};

pub struct HeraldProcess {
    pub child: Child,
    pub base_url: String,
    pub stdout_path: PathBuf,
    pub stderr_path: PathBuf,
}

impl HeraldProcess {
    /// Starts `herald serve` on `database_url` and waits until `/healthz` answers.
    pub async fn start(database_url: &str, dir: &Path) -> HeraldProcess {
        Self::start_with(database_url, dir, &[]).await
    }

    /// Like `start`, with extra environment variables (retry schedule, lease, …); an empty value
    /// removes the variable.
    pub async fn start_with(database_url: &str, dir: &Path, env: &[(&str, &str)]) -> HeraldProcess {
        let port = free_port();
        let stdout_path = dir.join(format!("serve-{port}.out"));
        let stderr_path = dir.join(format!("serve-{port}.err"));
        let child = command(database_url, dir, env)
            .arg("serve")
            .env("HERALD_LISTEN", format!("127.0.0.1:{port}"))
            .env("RUST_LOG", "info")
            // The tests' receivers listen on loopback, which Herald refuses by default.
            .env("HERALD_ALLOW_NETWORKS", herald_testkit::LOOPBACK_NETWORKS)
            .envs(env.iter().copied().filter(|(_, v)| !v.is_empty()))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout_path).unwrap())
            .stderr(std::fs::File::create(&stderr_path).unwrap())
            .spawn()
            .expect("spawn herald serve");
        let mut p = HeraldProcess {
            child,
            base_url: format!("http://127.0.0.1:{port}"),
            stdout_path,
            stderr_path,
        };
        p.wait_healthy().await;
        p
    }

    async fn wait_healthy(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = reqwest::Client::new();
        loop {
            let health = client.get(format!("{}/healthz", self.base_url)).send();
            if health.await.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "herald serve exited with {status}: {}",
                    std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "herald serve did not become healthy"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout_path).unwrap_or_default()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Kills the server outright (SIGKILL): no draining, no last writes.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Sends SIGTERM and waits up to `limit` for the process to exit; returns its exit status
    /// (None if it was still running at `limit` and had to be killed) and how long it took.
    pub fn terminate(&mut self, limit: Duration) -> (Option<std::process::ExitStatus>, Duration) {
        let started = Instant::now();
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (Some(status), started.elapsed());
            }
            if started.elapsed() > limit {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return (None, started.elapsed());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the server the way an operator does (SIGTERM) and waits for it.
    pub fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for HeraldProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `herald` on `database_url` in `dir`. On PostgreSQL it gets the test encryption
/// key, as every replica must; `env` comes last (an empty value removes a variable).
fn command(database_url: &str, dir: &Path, env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(herald_bin());
    cmd.current_dir(dir)
        .env("HERALD_DATABASE_URL", database_url);
    if database_url.starts_with("postgres") {
        cmd.env("HERALD_ENCRYPTION_KEY", test_encryption_key());
    }
    for (k, v) in env {
        if v.is_empty() {
            cmd.env_remove(k);
        } else {
            cmd.env(k, v);
        }
    }
    cmd
}

/// Runs `herald ARGS` against `database_url` and returns its output.
pub fn herald(database_url: &str, dir: &Path, args: &[&str]) -> Output {
    herald_with(database_url, dir, &[], args)
}

/// Like `herald`, with extra environment variables; killed if it runs over a minute (a `serve`
/// expected to fail that starts instead must not hang the test).
pub fn herald_with(database_url: &str, dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let n: u64 = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    let out_path = dir.join(format!("cmd-{n}.out"));
    let err_path = dir.join(format!("cmd-{n}.err"));
    let mut child = command(database_url, dir, env)
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .expect("run herald");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let output = Output {
        status,
        stdout: std::fs::read(&out_path).unwrap_or_default(),
        stderr: std::fs::read(&err_path).unwrap_or_default(),
    };
    let _ = std::fs::remove_file(out_path);
    let _ = std::fs::remove_file(err_path);
    output
}

/// Every `hrld_…` token in `text`.
/// Runs SQL on the test's database the way an operator would (sqlite3 or psql); rows one per
/// line, columns separated by `|`.
pub fn sql(database_url: &str, statement: &str) -> String {
    if let Some(path) = database_url.strip_prefix("sqlite://") {
        let out = Command::new("sqlite3")
            .args(["-batch", "-cmd", ".timeout 10000", path, statement])
            .output()
            .expect("run sqlite3");
        assert!(
            out.status.success(),
            "sqlite3: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    } else {
        let database = database_url.rsplit('/').next().unwrap();
        herald_testkit::PgCluster::shared()
            .psql(database, statement)
            .unwrap()
    }
}

/// `herald token create --name NAME --role ROLE` beside any running server; returns the token.
pub fn create_token(database_url: &str, dir: &Path, name: &str, role: &str) -> String {
    let out = herald(
        database_url,
        dir,
        &["token", "create", "--name", name, "--role", role],
    );
    assert!(
        out.status.success(),
        "herald token create: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .last()
        .expect("the token is on the last line")
        .trim()
        .to_owned()
}

pub fn tokens_in(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
        .filter(|w| w.starts_with("hrld_"))
        .map(str::to_owned)
        .collect()
}
