//! A Herald server per test and a Terraform working directory wired to the built provider.

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// `$HERALD_BIN`; else `herald` in this test binary's own target directory (where it is when
/// this package builds in the same workspace as herald-server); else the main workspace's
/// `target/debug/herald`.
pub fn herald_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("HERALD_BIN") {
        return PathBuf::from(bin);
    }
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.join("herald")));
    match beside {
        Some(bin) if bin.is_file() => bin,
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/debug/herald"),
    }
}

/// The Terraform CLI: `$TERRAFORM`, else `terraform` on PATH.
pub fn terraform_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let bin = std::env::var_os("TERRAFORM")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("terraform"));
        let ok = Command::new(&bin)
            .arg("version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "the Terraform CLI (1.11 or later) is needed: put `terraform` on PATH or set TERRAFORM"
        );
        bin
    })
    .clone()
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// `herald serve` on a fresh SQLite file; killed on drop.
pub struct Herald {
    child: Child,
    pub endpoint: String,
    pub token: String,
    database_url: String,
    _dir: tempfile::TempDir,
}

impl Herald {
    pub fn start() -> Herald {
        Self::start_with(&[])
    }

    /// Like `start`, with more environment (such as a fast `HERALD_RETRY_SCHEDULE`).
    pub fn start_with(env: &[(&str, &str)]) -> Herald {
        let bin = herald_bin();
        assert!(
            bin.exists(),
            "herald binary not found at {} (set HERALD_BIN or run `cargo build -p herald-server` in the workspace)",
            bin.display()
        );
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let database_url = format!("sqlite://{}/h.db", dir.path().display());
        let mut child = Command::new(&bin)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            // Destinations in these tests point at loopback, which Herald refuses by default.
            .env("HERALD_ALLOW_NETWORKS", "127.0.0.0/8,::1/128")
            .env("HERALD_DATABASE_URL", &database_url)
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("herald starts");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let token_re = regex::Regex::new(r"hrld_[A-Za-z0-9_-]+").unwrap();
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(m) = token_re.find(&line) {
                    let _ = tx.send(m.as_str().to_owned());
                }
            }
        });
        let token = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("herald prints its first token");
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "herald did not listen on {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Herald {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
            token,
            database_url,
            _dir: dir,
        }
    }

    /// A new API token with this role (`admin` or `viewer`), made the way an operator makes
    /// one: `herald token create` against the same database.
    pub fn create_token(&self, name: &str, role: &str) -> String {
        let out = Command::new(herald_bin())
            .args(["token", "create", "--name", name, "--role", role])
            .env("HERALD_DATABASE_URL", &self.database_url)
            .stdin(Stdio::null())
            .output()
            .expect("herald token create runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "herald token create failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
            .lines()
            .last()
            .map(|l| l.trim().to_owned())
            .filter(|t| t.starts_with("hrld_"))
            .unwrap_or_else(|| panic!("no token on the last line of: {stdout}"))
    }

    /// Runs a GraphQL operation as the admin token; panics on GraphQL errors.
    pub fn graphql(&self, query: &str, variables: Value) -> Value {
        let body: Value = reqwest::blocking::Client::new()
            .post(format!("{}/graphql", self.endpoint))
            .bearer_auth(&self.token)
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .expect("herald answers")
            .json()
            .expect("a JSON answer");
        assert!(body.get("errors").is_none(), "GraphQL errors: {body}");
        body["data"].clone()
    }

    pub const FIELDS: &'static str = "id displayName url severities alertTypes customHeaders { name value } logTypes rateLimitPerMinute enabled autoDisableAfterFailures disabledReason signingSecret";

    pub fn destinations(&self) -> Vec<Value> {
        let q = format!(
            "{{ destinations(first: 100) {{ totalCount nodes {{ {} }} }} }}",
            Self::FIELDS
        );
        let data = self.graphql(&q, json!({}));
        data["destinations"]["nodes"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    pub fn destination_named(&self, name: &str) -> Value {
        self.destinations()
            .into_iter()
            .find(|d| d["displayName"] == name)
            .unwrap_or_else(|| panic!("no destination named {name:?}"))
    }

    pub fn create(&self, input: Value) -> Value {
        let q = format!(
            "mutation($input: CreateDestinationInput!) {{ createDestination(input: $input) {{ destination {{ {} }} }} }}",
            Self::FIELDS
        );
        self.graphql(&q, json!({ "input": input }))["createDestination"]["destination"].clone()
    }

    pub fn update(&self, input: Value) {
        self.graphql(
            "mutation($input: UpdateDestinationInput!) { updateDestination(input: $input) { destination { id } } }",
            json!({ "input": input }),
        );
    }

    pub fn delete(&self, id: &str) {
        self.graphql(
            "mutation($id: ID!) { deleteDestination(input: { id: $id }) { deletedId } }",
            json!({ "id": id }),
        );
    }
}

impl Drop for Herald {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The provider binary, copied once into a directory of its own: Terraform's dev_overrides take
/// the first `terraform-provider-herald*` file in the directory it names.
fn provider_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir =
            std::env::temp_dir().join(format!("tf-provider-herald-it-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let dest = dir.join("terraform-provider-herald");
        std::fs::copy(env!("CARGO_BIN_EXE_terraform-provider-herald"), &dest).unwrap();
        dir
    })
}

pub const PROVIDER_HEADER: &str = r#"
terraform {
  required_providers {
    herald = { source = "herald/herald" }
  }
}
provider "herald" {}
"#;

/// A Terraform working directory with its own CLI configuration.
pub struct Tf {
    pub dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

impl Tf {
    pub fn new(herald: Option<&Herald>) -> Tf {
        Self::with_installation(
            herald,
            &format!(
                "dev_overrides {{ \"herald/herald\" = \"{}\" }}\n  direct {{}}",
                provider_dir().display()
            ),
        )
    }

    /// A working directory whose CLI configuration installs providers as `installation` says
    /// (the body of `provider_installation`), such as a mirror.
    pub fn with_installation(herald: Option<&Herald>, installation: &str) -> Tf {
        let dir = tempfile::tempdir().unwrap();
        let rc = dir.path().join("terraform.rc");
        std::fs::write(
            &rc,
            format!("provider_installation {{\n  {installation}\n}}\ndisable_checkpoint = true\n"),
        )
        .unwrap();
        let mut env = vec![
            ("TF_CLI_CONFIG_FILE".to_string(), rc.display().to_string()),
            ("CHECKPOINT_DISABLE".into(), "1".into()),
            ("TF_IN_AUTOMATION".into(), "1".into()),
        ];
        if let Some(h) = herald {
            env.push(("HERALD_ENDPOINT".into(), h.endpoint.clone()));
            env.push(("HERALD_API_TOKEN".into(), h.token.clone()));
        }
        Tf { dir, env }
    }

    /// Writes main.tf: the provider header followed by `body`.
    pub fn config(&self, body: &str) {
        std::fs::write(
            self.dir.path().join("main.tf"),
            format!("{PROVIDER_HEADER}\n{body}"),
        )
        .unwrap();
    }

    pub fn env(&mut self, key: &str, value: &str) {
        self.env.push((key.to_owned(), value.to_owned()));
    }

    /// The environment every command here runs with.
    pub fn envs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.env.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Writes a file into the working directory as it is.
    pub fn file(&self, name: &str, content: &str) {
        std::fs::write(self.dir.path().join(name), content).unwrap();
    }

    pub fn run(&self, args: &[&str]) -> Run {
        let out: Output = Command::new(terraform_bin())
            .args(args)
            .arg("-no-color")
            .current_dir(self.dir.path())
            .env_remove("TF_LOG")
            .env_remove("HERALD_ENDPOINT")
            .env_remove("HERALD_API_TOKEN")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .output()
            .expect("terraform runs");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub fn ok(&self, args: &[&str]) -> Run {
        let r = self.run(args);
        assert_eq!(r.code, 0, "terraform {args:?} failed:\n{}", r.all());
        r
    }

    pub fn apply(&self) -> Run {
        self.ok(&["apply", "-auto-approve", "-input=false"])
    }

    /// `plan -detailed-exitcode`: 0 no changes, 2 changes.
    pub fn plan(&self) -> Run {
        let r = self.run(&["plan", "-detailed-exitcode", "-input=false"]);
        assert!(r.code == 0 || r.code == 2, "plan failed:\n{}", r.all());
        r
    }

    pub fn assert_empty_plan(&self) {
        let r = self.plan();
        assert_eq!(r.code, 0, "expected an empty plan:\n{}", r.all());
    }

    /// A resource's attribute values from `terraform show -json`.
    pub fn state(&self, address: &str) -> Value {
        let r = self.ok(&["show", "-json"]);
        let doc: Value = serde_json::from_str(&r.stdout).expect("show -json");
        doc["values"]["root_module"]["resources"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["address"] == address)
            .map(|r| r["values"].clone())
            .unwrap_or(Value::Null)
    }
}

/// Sorted strings of a JSON array, for comparing sets.
pub fn sorted(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_owned))
        .collect();
    out.sort();
    out
}

/// Terraform aligns the `=` of a block's attributes, so the padding changes with the longest
/// name: compare with runs of spaces folded to one.
pub fn squeezed(text: &str) -> String {
    text.split(' ')
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}
