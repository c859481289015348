//! The console at `/` in headless Chromium (Debian's), driven by `tests/browser/console.mjs`
//! with playwright-core, against a real `herald serve` and a real receiver.
//!
//! The script runs the operator's steps; when it needs the receiver to change (fail, then be
//! fixed) it prints `@@receiver failing` or `@@receiver fixed` and waits for `ok` on its stdin,
//! so the receiver is switched here, between two steps, with no control endpoint to add.
//! Screenshots go to `target/browser-screenshots/console/`; with `HERALD_UPDATE_DOCS_IMAGES=1`
//! the README's two images in `docs/images/` are taken again too.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use herald_testkit::{Receiver, Reply, target_profile_dir};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

use crate::process::{HeraldProcess, create_token};

/// The whole browser run, start to end; the script bounds itself a little sooner.
const LIMIT: Duration = Duration::from_secs(120);

/// What the failing receiver answers: the console must show it for every attempt.
const FAILING_BODY: &str = "receiver down: database locked";

fn browser_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("browser")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_in_a_real_browser() {
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists(),
        "/usr/bin/chromium is missing: apt-get install chromium (.ci/run does)"
    );
    assert!(
        browser_dir().join("node_modules/playwright-core").exists(),
        "playwright-core is missing: (cd tests/browser && npm ci) (.ci/run does)"
    );
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("herald.db").display());
    // Ten fast retries: a failing delivery ends FAILED in about a second.
    let server = HeraldProcess::start_with(
        &db,
        dir.path(),
        &[(
            "HERALD_RETRY_SCHEDULE",
            "50ms,50ms,50ms,50ms,50ms,50ms,50ms,50ms,50ms,50ms",
        )],
    )
    .await;
    let admin = create_token(&db, dir.path(), "console-admin", "admin");
    let viewer = create_token(&db, dir.path(), "console-viewer", "viewer");
    let receiver = Receiver::start().await;
    receiver.always(Reply::status(200, "success"));

    let shots = target_profile_dir()
        .parent()
        .unwrap()
        .join("browser-screenshots/console");
    let mut cmd = Command::new("node");
    cmd.arg("console.mjs")
        .current_dir(browser_dir())
        .env("HERALD_URL", &server.base_url)
        .env("ADMIN_TOKEN", &admin)
        .env("VIEWER_TOKEN", &viewer)
        .env("RECEIVER_URL", &receiver.url)
        .env("SCREENSHOT_DIR", &shots)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if std::env::var_os("HERALD_UPDATE_DOCS_IMAGES").is_some() {
        cmd.env(
            "DOCS_IMAGE_DIR",
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/images"),
        );
    }
    let mut child = cmd.spawn().expect("node is on the PATH (Node.js 20)");
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut stderr = child.stderr.take().unwrap();
    let errors = tokio::spawn(async move {
        let mut s = String::new();
        let _ = tokio::io::AsyncReadExt::read_to_string(&mut stderr, &mut s).await;
        s
    });

    let mut output = String::new();
    let run = async {
        while let Some(line) = stdout.next_line().await.unwrap() {
            if let Some(state) = line.strip_prefix("@@receiver ") {
                match state {
                    "failing" => receiver.always(Reply::status(500, FAILING_BODY)),
                    "fixed" => receiver.always(Reply::status(200, "success")),
                    other => panic!("the script asked for an unknown receiver state {other:?}"),
                }
                stdin.write_all(b"ok\n").await.unwrap();
                stdin.flush().await.unwrap();
            }
            println!("{line}");
            output.push_str(&line);
            output.push('\n');
        }
        child.wait().await.unwrap()
    };
    let status = tokio::time::timeout(LIMIT, run).await;
    let stderr = errors.await.unwrap_or_default();
    println!("screenshots: {}", shots.display());
    let status = status.unwrap_or_else(|_| {
        panic!(
            "the browser test ran over {LIMIT:?}\n{output}\n{stderr}\nherald: {}",
            server.stderr()
        )
    });
    assert!(
        status.success(),
        "console.mjs failed ({status})\n--- stdout\n{output}\n--- stderr\n{stderr}"
    );
    assert!(
        output.contains("requests to other hosts: 0"),
        "the page reached for other hosts\n{output}"
    );
}
