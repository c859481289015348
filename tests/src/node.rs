//! The Node.js receiver in `tests/node-receiver/`: a user's receiver written with Node's http
//! module and the stock `svix` and `standardwebhooks` verification libraries.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;

fn receiver_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("node-receiver")
}

static INSTALL: Mutex<()> = Mutex::new(());

/// Installs the receiver's locked dependencies from the npm registry if they are missing.
fn ensure_installed() {
    let _guard = INSTALL.lock().unwrap();
    let dir = receiver_dir();
    let packages = ["svix", "standardwebhooks", "graphql", "graphql17"];
    if packages
        .iter()
        .all(|p| dir.join("node_modules").join(p).exists())
    {
        return;
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(&dir)
        .status()
        .expect("npm is on the PATH (Node.js 20)");
    assert!(status.success(), "npm ci in {} failed", dir.display());
}

/// graphql-js's `getIntrospectionQuery()` with every option on, as GraphiQL sends it; `package`
/// is `graphql` (16, GraphiQL's) or `graphql17`.
pub fn introspection_query(package: &str) -> String {
    ensure_installed();
    let out = Command::new("node")
        .arg("introspection-query.js")
        .arg(package)
        .current_dir(receiver_dir())
        .output()
        .expect("node is on the PATH (Node.js 20)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

pub struct NodeReceiver {
    pub url: String,
    base: String,
    child: Child,
}

impl NodeReceiver {
    /// Starts the receiver on a free loopback port, verifying with `secret`.
    pub fn start(secret: &str) -> NodeReceiver {
        ensure_installed();
        let mut child = Command::new("node")
            .arg("receiver.js")
            .arg("0")
            .current_dir(receiver_dir())
            .env("WEBHOOK_SECRET", secret)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node is on the PATH");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port: u16 = line.trim().parse().expect("the receiver prints its port");
        let base = format!("http://127.0.0.1:{port}");
        NodeReceiver {
            url: format!("{base}/webhook"),
            base,
            child,
        }
    }

    /// What each library said about each request so far.
    pub async fn verifications(&self) -> serde_json::Value {
        reqwest::get(format!("{}/verifications", self.base))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

impl Drop for NodeReceiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
